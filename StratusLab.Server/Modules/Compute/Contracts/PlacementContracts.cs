namespace StratusLab.Server.Modules.Compute.Contracts;

/// <summary>A PENDING instance waiting for a host.</summary>
/// <param name="Requirements">Admin-set requirement expression over host attributes, if any.</param>
/// <param name="Policy">Admin-set placement policy for this instance, if any (else the site default).</param>
public sealed record PendingInstance(long Id, long Cpu, long MemoryMiB, string? Requirements, string? Policy, DateTimeOffset CreatedAt, string? SchedulingMessage);

/// <summary>What the scheduler needs from Compute: the pending instances, and to hand each one to its host.</summary>
public interface IPlacementTarget
{
    Task<IReadOnlyList<PendingInstance>> ListPendingAsync(CancellationToken ct = default);

    /// <summary>Binds the instance to a host and starts its PROLOG; false when it is no longer PENDING.</summary>
    Task<bool> PlaceAsync(long instanceId, string host, string driver, CancellationToken ct = default);

    /// <summary>Records why no host fits (shown as schedulingMessage).</summary>
    Task SetSchedulingMessageAsync(long instanceId, string message, CancellationToken ct = default);

    /// <summary>Ends a PENDING instance FAILED (pending timeout) with the reason.</summary>
    Task FailPendingAsync(long instanceId, string reason, CancellationToken ct = default);

    /// <summary>Ids of instances that still hold a host (not DONE or FAILED and past PENDING), for reconciling allocations.</summary>
    Task<IReadOnlyList<long>> ListPlacedAsync(CancellationToken ct = default);
}
