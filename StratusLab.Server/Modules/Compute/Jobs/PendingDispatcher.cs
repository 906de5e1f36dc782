using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Scheduling.Contracts;

namespace StratusLab.Server.Modules.Compute.Jobs;

/// <summary>
/// Hands PENDING instances to hosts: when Scheduling signals that it is worth trying (a new instance, freed
/// capacity, a host change; or its safety-net interval), asks it for placements and starts PROLOG on each chosen host.
/// Compute calls Scheduling; Scheduling never calls back.
/// </summary>
internal sealed class PendingDispatcher(
    ComputeStore store,
    InstanceLifecycle lifecycle,
    IScheduler scheduler,
    ISchedulerSignal signal,
    IHostAllocations allocations,
    ILogger<PendingDispatcher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try { await DispatchAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Placing PENDING instances failed"); }
            await signal.WaitAsync(stoppingToken);
        }
    }

    /// <summary>One pass over every PENDING instance, oldest first.</summary>
    public async Task DispatchAsync(CancellationToken ct)
    {
        var pending = await store.ListAsync([InstanceState.Pending], null);
        if (pending.Count == 0) return;
        var decisions = await scheduler.PlaceAsync(pending.Select(p =>
            new SchedulingRequest(p.Id, p.Cpu, p.MemoryMib, p.Admin.Requirements, p.Admin.Policy, p.CreatedAt)).ToList(), ct);
        var messages = pending.ToDictionary(p => p.Id, p => p.SchedulingMessage);
        foreach (var decision in decisions)
        {
            if (decision.Placed)
            {
                if (await store.PlaceAsync(decision.InstanceId, decision.Host!, decision.Driver!) is null)
                    await allocations.ReleaseAsync(decision.InstanceId, ct);
                else
                    lifecycle.Enqueue(decision.InstanceId);
            }
            else if (decision.GiveUp)
                await lifecycle.FailPendingAsync(decision.InstanceId, decision.Reason!);
            else if (decision.Reason != messages[decision.InstanceId])
                await lifecycle.SetSchedulingMessageAsync(decision.InstanceId, decision.Reason!);
        }
    }
}
