using Quartz;
using StratusLab.Server.Modules.Scheduling.Contracts;

namespace StratusLab.Server.Modules.Scheduling;

internal static class SchedulingModule
{
    public static IServiceCollection AddSchedulingModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("scheduling", legacyUserVersions: [3]);
        var policy = configuration["Scheduling:Policy"] ?? "packing";
        try { Policy.Parse(policy); }
        catch (Exception e) when (e is ArgumentException or Expressions.ExpressionException)
        {
            throw new Platform.Configuration.ConfigurationException(
                $"Scheduling:Policy = '{policy}' is not accepted; accepted values: packing, striping, load-aware, or rank:<expression> ({e.Message}).");
        }
        services.AddSingleton<SchedulingStore>();
        services.AddSingleton<SchedulerSignal>();
        services.AddSingleton<ISchedulerSignal>(sp => sp.GetRequiredService<SchedulerSignal>());
        services.AddSingleton<PlacementRules>();
        services.AddSingleton<IPlacementRules>(sp => sp.GetRequiredService<PlacementRules>());
        services.AddSingleton<IHostAllocations>(sp => sp.GetRequiredService<PlacementRules>());
        services.AddSingleton<HostMonitor>();
        services.AddHostedService<SchedulingHost>();
        services.AddSingleton<Contracts.IScheduler, Scheduler>();
        return services;
    }

    public static void ConfigureJobs(IQuartzBuilder q) =>
        q.ScheduleJob<HostMonitorJob>(
            t => t.WithIdentity("host-monitor", "scheduling").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromSeconds(30)).RepeatForever()),
            j => j.WithIdentity(HostMonitorJob.Key));
}
