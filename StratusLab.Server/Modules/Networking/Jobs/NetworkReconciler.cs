using Quartz;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Networking.Jobs;

/// <summary>
/// Releases the leases of instances that ended (their host side removed). At start-up it also makes each driver's
/// host side match the live NICs: missing taps, rules and dnsmasq are made again, those no live NIC owns are removed.
/// </summary>
internal sealed class NetworkReconciler(InstanceNetworking networking, IInstanceDirectory instances)
{
    public Task ReconcileAsync(bool atStartup, CancellationToken ct) => networking.ReconcileAsync(IsLiveAsync, atStartup, ct);

    async Task<bool> IsLiveAsync(long instanceId) => await instances.FindAsync(instanceId) is { Ended: false };
}

/// <summary>Start-up reconciliation, finished before the server takes requests.</summary>
internal sealed class NetworkingStartup(NetworkReconciler reconciler, ILogger<NetworkingStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        try { await reconciler.ReconcileAsync(atStartup: true, ct); }
        catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Network start-up reconciliation failed"); }
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}

/// <summary>Every Networking:ReconcileIntervalSeconds: leases whose clean-up failed, or whose instance ended unseen, are cleaned again.</summary>
[DisallowConcurrentExecution]
internal sealed class NetworkReconcileJob(NetworkReconciler reconciler, ILogger<NetworkReconcileJob> logger) : IJob
{
    public static readonly JobKey Key = new("network-reconcile", "networking");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        try { await reconciler.ReconcileAsync(atStartup: false, ct); }
        catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Network reconciliation failed"); }
    }
}
