using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Compute.Jobs;
using StratusLab.Server.Modules.Context.Contracts;
using Microsoft.Extensions.DependencyInjection.Extensions;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Compute;

internal static class ComputeModule
{
    public static IServiceCollection AddComputeModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("compute", legacyUserVersions: [2, 6]);
        services.AddModuleOptions<ComputeOptions>(configuration, "Compute");
        ComputeStore.RegisterColumnTypes();
        services.AddSingleton<ComputeStore>();
        services.AddSingleton<Identity.Contracts.IQuotaHolder>(Contracts.ComputeQuota.Holder);
        services.AddSingleton<InstanceEvents>();
        services.AddSingleton<InstanceViews>();
        services.AddSingleton<InstanceRequests>();
        services.AddSingleton<IInstances, InstanceService>();
        services.AddSingleton<IInstanceStats, InstanceStats>();
        services.AddSingleton<SimulatedFaults>();
        services.AddSingleton<Console.ConsoleLogs>();
        services.AddSingleton<GuestPanics>();
        services.AddHypervisorDriver<QemuDriver>("qemu");
        services.AddHypervisorDriver<SimulatedDriver>("simulated");
        services.TryAddSingleton<Platform.Host.QemuImg>();
        services.AddHypervisorDriver<SshQemuDriver>("ssh");
        Platform.Http.PeerClient.Register(services);
        services.AddHypervisorDriver<CloudDriver>("cloud");
        services.AddSingleton<Scheduling.Contracts.IPendingRemoteDeletions, RemoteDeletionLedger>();
        services.AddHostedService<RemoteDeletionJob>();
        services.AddSingleton<GuestInstances>();
        services.AddSingleton<IGuestInstances>(sp => sp.GetRequiredService<GuestInstances>());
        services.AddSingleton<InstanceDisks>();
        services.AddSingleton<Pdisk.Contracts.IInstanceHotPlug>(sp => sp.GetRequiredService<InstanceDisks>());
        services.AddSingleton<Platform.Contracts.IInstanceDirectory, InstanceDirectory>();
        services.AddSingleton<InstanceLifecycle>();
        services.AddHostedService(sp => sp.GetRequiredService<InstanceLifecycle>());
        services.AddHostedService<PendingDispatcher>();
        services.AddHostedService<ReadinessProbe>();
        services.AddSingleton<ComputeHost>();
        services.AddHostedService(sp => sp.GetRequiredService<ComputeHost>());
        return services;
    }
}
