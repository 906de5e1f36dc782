using Quartz;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Modules.Pdisk.Jobs;
using StratusLab.Server.Modules.Pdisk.Sharing;

namespace StratusLab.Server.Modules.Pdisk;

public static class PdiskModule
{
    public static IServiceCollection AddPdiskModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("pdisk", legacyUserVersions: [5]);
        services.AddSingleton<PdiskStore>();
        services.AddSingleton<PdiskPaths>();
        services.AddSingleton<FileVolumeDriver>();
        services.AddSingleton<LvmVolumeDriver>();
        services.AddSingleton<IVolumeDriver>(sp => sp.GetRequiredService<FileVolumeDriver>());
        services.AddSingleton<IVolumeDriver>(sp => sp.GetRequiredService<LvmVolumeDriver>());
        services.AddSingleton<VolumeDriverRegistry>();
        services.AddSingleton<IVolumeSharing, LocalSharing>();
        services.AddSingleton<IVolumeSharing, IscsiSharing>();
        services.AddSingleton<VolumeSharingRegistry>();
        services.AddSingleton<VolumeLifecycle>();
        services.AddSingleton<IVolumes>(sp => sp.GetRequiredService<VolumeLifecycle>());
        services.AddSingleton<VolumeViews>();
        services.AddSingleton<PdiskReconciler>();
        services.AddHostedService<PdiskStartup>();
        return services;
    }

    public static void ConfigureJobs(IQuartzBuilder q) =>
        q.ScheduleJob<QuarantineJob>(
            t => t.WithIdentity("quarantine-purge", "pdisk").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromMinutes(1)).RepeatForever()),
            j => j.WithIdentity(QuarantineJob.Key));
}
