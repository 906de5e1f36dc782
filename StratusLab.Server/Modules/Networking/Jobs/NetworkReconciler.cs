using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Networking.Jobs;

/// <summary>
/// On start: leases of instances that ended are released (their host side removed), and each driver's host side is made
/// to match the live NICs: missing taps, rules and dnsmasq are made again, those no live NIC owns are removed.
/// Then periodically: leases whose clean-up failed are cleaned again.
/// </summary>
public sealed class NetworkReconciler(InstanceNetworking networking, IInstanceDisks instances, ServerOptions options, ILogger<NetworkReconciler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var atStartup = true;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Networking.ReconcileIntervalSeconds));
        do
        {
            try { await networking.ReconcileAsync(IsLiveAsync, atStartup, stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Network reconciliation failed"); }
            atStartup = false;
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    async Task<bool> IsLiveAsync(long instanceId)
    {
        var instance = await instances.FindAsync(instanceId);
        return instance is not null && instance.State is not (InstanceState.Done or InstanceState.Failed);
    }
}
