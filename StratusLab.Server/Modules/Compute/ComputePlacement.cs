using System.Text.Json;
using StratusLab.Server.Modules.Compute.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Compute's side of scheduling: pending instances out, host choices in.</summary>
public sealed class ComputePlacement(ComputeStore store, InstanceLifecycle lifecycle) : IPlacementTarget
{
    public async Task<IReadOnlyList<PendingInstance>> ListPendingAsync(CancellationToken ct = default)
    {
        var rows = await store.ListAsync(["PENDING"], null, int.MaxValue, 0);
        return rows.Select(r =>
        {
            var admin = JsonSerializer.Deserialize<AdminAttributes>(r.AdminJson, InstanceLifecycle.Json) ?? new AdminAttributes();
            return new PendingInstance(r.Id, r.Cpu, r.MemoryMib, admin.Requirements, admin.Policy, r.CreatedAt, r.SchedulingMessage);
        }).ToList();
    }

    public async Task<bool> PlaceAsync(long instanceId, string host, string driver, CancellationToken ct = default)
    {
        if (!await store.TransitionAsync(instanceId, [InstanceState.Pending], InstanceState.Pending,
                new { host, driver, now = DateTimeOffset.UtcNow }, "host = @host, driver = @driver, scheduling_message = NULL, placed_at = @now"))
            return false;
        lifecycle.Enqueue(instanceId);
        return true;
    }

    public Task SetSchedulingMessageAsync(long instanceId, string message, CancellationToken ct = default) =>
        lifecycle.SetSchedulingMessageAsync(instanceId, message);

    public Task FailPendingAsync(long instanceId, string reason, CancellationToken ct = default) =>
        lifecycle.FailPendingAsync(instanceId, reason);

    public async Task<IReadOnlyList<long>> ListPlacedAsync(CancellationToken ct = default) =>
        (await store.ListAsync(["PROLOG", "BOOT", "RUNNING", "SHUTDOWN", "STOPPED", "SUSPENDED", "EPILOG"], null, int.MaxValue, 0)).Select(r => r.Id).ToList();
}
