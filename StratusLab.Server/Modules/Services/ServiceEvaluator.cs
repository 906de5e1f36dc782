using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Services;

/// <summary>
/// The service manager's loop: a pass every Services:EvaluateIntervalSeconds evaluates the rules; a lifecycle change of a member
/// (seen through IInstances.WatchAsync, not by polling) or a new or scaled service triggers a pass at once that only brings roles
/// to their cardinality. A failing pass is logged and the loop goes on.
/// </summary>
internal sealed class ServiceEvaluator(ServiceManager manager, IInstances instances, ServicesOptions options, ILogger<ServiceEvaluator> logger) : BackgroundService
{
    /// <summary>Watching needs to see every member, whoever owns it; it only wakes the loop, never acts.</summary>
    static readonly Caller Watcher = new(0, "services", IsAdmin: true, PrimaryGroupId: 0, GroupIds: []);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = Task.Run(() => WatchAsync(stoppingToken), CancellationToken.None);
        var interval = TimeSpan.FromSeconds(options.EvaluateIntervalSeconds);
        var nextTick = DateTimeOffset.UtcNow;
        while (!stoppingToken.IsCancellationRequested)
        {
            var evaluate = DateTimeOffset.UtcNow >= nextTick;
            if (evaluate) nextTick = DateTimeOffset.UtcNow + interval;
            try { await manager.ReconcileAllAsync(evaluate, stoppingToken); }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { break; }
            catch (Exception e) { logger.LogError(e, "Service manager pass failed"); }
            var wait = nextTick - DateTimeOffset.UtcNow;
            try { if (wait > TimeSpan.Zero) await manager.WaitForWakeAsync(wait, stoppingToken); }
            catch (OperationCanceledException) { break; }
        }
    }

    async Task WatchAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await foreach (var change in instances.WatchAsync(Watcher, ct))
                    if (manager.IsMember(change.Id)) manager.Wake();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                logger.LogWarning(e, "Watching instance changes failed; retrying in 1 s (the evaluation ticks go on meanwhile)");
                try { await Task.Delay(1000, ct); } catch (OperationCanceledException) { return; }
            }
        }
    }
}
