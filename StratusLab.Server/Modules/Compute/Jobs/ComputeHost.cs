using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Compute.Jobs;

/// <summary>On start: reconciles the store with what runs, decides KVM or TCG; then watches running VMs.</summary>
internal sealed class ComputeHost(InstanceLifecycle lifecycle, Drivers.QemuDriver qemu, Drivers.GuestPanics panics, ComputeOptions options, ILogger<ComputeHost> logger) : BackgroundService
{
    readonly TaskCompletionSource _reconciled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once start-up reconciliation is done.</summary>
    public Task Reconciled => _reconciled.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await lifecycle.ReconcileAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Start-up reconciliation failed");
        }
        _reconciled.TrySetResult();
        // A guest kernel panic (QMP GUEST_PANICKED) fails its instance at once, not at the next monitoring pass.
        _ = Task.Run(async () =>
        {
            await foreach (var id in panics.Reader.ReadAllAsync(stoppingToken))
            {
                try { await lifecycle.FailPanickedAsync(id, stoppingToken); }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested) { logger.LogError(e, "Handling the panic of instance {Id} failed", id); }
            }
        }, CancellationToken.None);
        if (options.Driver == "qemu")
        {
            // Decide KVM or TCG now, so the first VM does not wait for the probe.
            try { await qemu.AcceleratorAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError("QEMU is not usable: {Error}", e.Message); }
        }

        // A seconds-apart watch over live VMs, not a schedule to keep across restarts: Quartz's persistent store would
        // write SQLite at every tick, so this one loop stays a hosted service (persistent periodic jobs run on Quartz).
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.MonitorIntervalSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try { await lifecycle.MonitorAsync(stoppingToken); }
            // A VM whose QMP socket times out cancels its own query, not the server: log it and watch again next tick.
            catch (Exception e) when (!stoppingToken.IsCancellationRequested) { logger.LogError(e, "Monitoring pass failed"); }
        }
    }
}
