using Quartz;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Modules.Scheduling.Contracts;

namespace StratusLab.Server.Modules.Scheduling;

internal static class SchedulingModule
{
    public static IServiceCollection AddSchedulingModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("scheduling", legacyUserVersions: [3]);
        services.AddModuleOptions<SchedulingOptions>(configuration, "Scheduling");
        services.AddSingleton<SchedulingStore>();
        services.AddSingleton<SchedulerSignal>();
        services.AddSingleton<ISchedulerSignal>(sp => sp.GetRequiredService<SchedulerSignal>());
        services.AddSingleton<PlacementRules>();
        services.AddSingleton<IPlacementRules>(sp => sp.GetRequiredService<PlacementRules>());
        services.AddSingleton<IHostAllocations>(sp => sp.GetRequiredService<PlacementRules>());
        services.AddSingleton<HostMonitor>();
        services.AddSingleton<IHostInventory, HostInventory>();
        services.AddSingleton<IHostAdministration, HostAdministration>();
        services.AddHostedService<SchedulingHost>();
        services.AddSingleton<NodeMonitor>();
        services.AddSingleton<INodeDirectory>(sp => sp.GetRequiredService<NodeMonitor>());
        services.AddHostedService(sp => sp.GetRequiredService<NodeMonitor>());
        services.AddSingleton<Contracts.IScheduler, Scheduler>();
        Platform.Http.PeerClient.Register(services);
        services.AddSingleton<PeerMonitor>();
        services.AddSingleton<IPeerDirectory>(sp => sp.GetRequiredService<PeerMonitor>());
        services.AddHostedService(sp => sp.GetRequiredService<PeerMonitor>());
        return services;
    }

    public static void ConfigureJobs(IQuartzBuilder q) =>
        q.ScheduleJob<HostMonitorJob>(
            t => t.WithIdentity("host-monitor", "scheduling").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromSeconds(30)).RepeatForever()),
            j => j.WithIdentity(HostMonitorJob.Key));
}
