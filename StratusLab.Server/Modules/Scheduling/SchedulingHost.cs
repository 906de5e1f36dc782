using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>On start: registers the local host and drops allocations whose instance no longer holds a host.</summary>
internal sealed class SchedulingHost(HostMonitor monitor, SchedulingStore store, IInstanceDirectory instances, SchedulerSignal signal, ILogger<SchedulingHost> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        await monitor.RegisterLocalHostAsync();
        await monitor.MeasureAsync();
        var placed = (await instances.ListPlacedAsync(ct)).ToHashSet();
        foreach (var id in await store.AllocatedInstancesAsync())
        {
            if (placed.Contains(id)) continue;
            await store.ReleaseAsync(id);
            logger.LogInformation("Released the host capacity of instance {Id}: it no longer runs (or is PENDING again)", id);
        }
        signal.Wake();
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
