using System.Globalization;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Quartz;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Modules.Pdisk.Jobs;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Transfers;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Pdisk;

internal static class PdiskModule
{
    public static IServiceCollection AddPdiskModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("pdisk", legacyUserVersions: [5]);
        services.AddModuleOptions<PdiskOptions>(configuration, "Pdisk");
        services.AddSingleton(new PdiskRun(Guid.NewGuid().ToString("N")));
        services.AddSingleton<PdiskStore>();
        services.AddSingleton<Identity.Contracts.IQuotaHolder>(Contracts.PdiskQuota.Holder);
        services.AddSingleton<PdiskPaths>();
        services.TryAddSingleton<QemuImg>();
        services.AddHttpDownloader();
        services.AddSingleton<FileVolumeDriver>();
        services.AddSingleton<LvmVolumeDriver>();
        services.AddKeyedSingleton<IVolumeDriver>("file", (sp, _) => sp.GetRequiredService<FileVolumeDriver>());
        services.AddKeyedSingleton<IVolumeDriver>("lvm", (sp, _) => sp.GetRequiredService<LvmVolumeDriver>());
        services.AddKeyedSingleton<IVolumeSharing, LocalSharing>("local");
        services.AddKeyedSingleton<IVolumeSharing, IscsiSharing>("iscsi");
        services.AddSingleton<VolumeLifecycle>();
        services.AddSingleton<NodeAccess>();
        services.AddSingleton<IVolumes>(sp => sp.GetRequiredService<VolumeLifecycle>());
        services.AddSingleton<VolumeViews>();
        services.AddSingleton<VolumeService>();
        services.AddSingleton<IVolumeService>(sp => sp.GetRequiredService<VolumeService>());
        services.AddSingleton<PdiskReconciler>();
        services.AddHostedService<PdiskStartup>();
        return services;
    }

    public static Action<IQuartzBuilder> ConfigureJobs(IConfiguration configuration) => q =>
    {
        q.ScheduleJob<QuarantineJob>(
            t => t.WithIdentity("quarantine-purge", "pdisk").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromMinutes(1)).RepeatForever()),
            j => j.WithIdentity(QuarantineJob.Key));
        var every = TimeSpan.FromSeconds(HealthCheckSeconds(configuration));
        q.ScheduleJob<ExportHealthJob>(
            t => t.WithIdentity("export-health", "pdisk").StartAt(DateTimeOffset.UtcNow + every)
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(every).RepeatForever()),
            j => j.WithIdentity(ExportHealthJob.Key));
    };

    // Read before the options are validated: a value the validation refuses stops the server before Quartz starts.
    static int HealthCheckSeconds(IConfiguration configuration) =>
        int.TryParse(configuration["Pdisk:Iscsi:HealthCheckSeconds"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? seconds : new PdiskIscsiOptions().HealthCheckSeconds;

    /// <summary>The volume backends, registered as keyed services under these configuration names.</summary>
    public static readonly IReadOnlyList<string> Backends = ["file", "lvm"];

    /// <summary>The sharings, registered as keyed services under these configuration names.</summary>
    public static readonly IReadOnlyList<string> Sharings = ["local", "iscsi"];

    /// <summary>The volume driver configured under <paramref name="name"/> (Pdisk:Backend, or a volume's stored backend).</summary>
    public static IVolumeDriver VolumeDriver(this IServiceProvider services, string name) =>
        services.GetKeyedService<IVolumeDriver>(name)
        ?? throw new InvalidOperationException($"no volume driver named '{name}'; accepted values: {string.Join(", ", Backends)}");

    /// <summary>The sharing named <paramref name="name"/>; an unknown name is the caller's mistake (400 naming the accepted values).</summary>
    public static IVolumeSharing VolumeSharing(this IServiceProvider services, string name) =>
        services.GetKeyedService<IVolumeSharing>(name)
        ?? throw new InvalidInputException("sharing", $"'sharing' = '{Validate.Trim(name)}' is not accepted; accepted values: {string.Join(", ", Sharings)}.");
}
