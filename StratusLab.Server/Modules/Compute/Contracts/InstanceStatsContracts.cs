namespace StratusLab.Server.Modules.Compute.Contracts;

/// <summary>
/// Cumulative resource counters of one running VM, read from the hypervisor: CPU seconds and resident memory of the
/// QEMU process (/proc), block I/O (QMP query-blockstats), network bytes as the guest sees them (per tap device; null
/// for user-mode NICs, whose slirp stack has no counters), and the guest's memory through the virtio balloon. <see cref="Simulated"/>: made up by the simulated driver
/// from the time since start (deterministic, plausible, not measured).
/// </summary>
public sealed record InstanceCounters(
    double CpuSeconds, long? MemoryRssBytes, long? DiskReadBytes, long? DiskWriteBytes, long? DiskReadOps, long? DiskWriteOps,
    long? NetRxBytes, long? NetTxBytes, bool Simulated)
{
    /// <summary>The guest's memory as the virtio balloon leaves it (QMP query-balloon "actual"); null without a balloon device.</summary>
    public long? BalloonBytes { get; init; }
    /// <summary>Memory the guest kernel manages (virtio-balloon stat-total-memory); null until its balloon driver reports.</summary>
    public long? GuestMemoryTotalBytes { get; init; }
    /// <summary>Memory the guest could use without swapping (stat-available-memory, MemAvailable); null until its balloon driver reports.</summary>
    public long? GuestMemoryAvailableBytes { get; init; }
    /// <summary>The virtual size of the VM's disks (QMP query-block, CD-ROMs left out); null when the hypervisor cannot say.</summary>
    public long? DiskCapacityBytes { get; init; }
}

/// <summary>
/// An instance as monitoring and accounting see it at one moment: who owns it, what it was given, its state, and, when
/// its VM runs, the counters (null when the VM does not run or the hypervisor did not answer in time).
/// </summary>
public sealed record InstanceSnapshot(
    long Id, string Name, long OwnerId, long GroupId, string Image, string? InstanceType, long Cpu, long MemoryMiB,
    string State, string? Host, string Driver, DateTimeOffset CreatedAt, DateTimeOffset? StartedAt, DateTimeOffset? EndedAt,
    InstanceCounters? Counters);

/// <summary>A lifecycle change of an instance (state names as the API spells them: RUNNING, ...).</summary>
public sealed record InstanceStateChange(long InstanceId, string State, DateTimeOffset Time);

/// <summary>
/// What monitoring needs from Compute, pulled (Compute never calls the monitor): snapshots with hypervisor counters,
/// counts per state, and the stream of state changes.
/// </summary>
public interface IInstanceStats
{
    /// <summary>Every instance that has not ended, plus those that ended at or after <paramref name="endedSince"/>; counters for those whose VM runs.</summary>
    Task<IReadOnlyList<InstanceSnapshot>> SnapshotAsync(DateTimeOffset endedSince, CancellationToken ct = default);

    /// <summary>How many instances are in each state (every state named, zero included).</summary>
    Task<IReadOnlyDictionary<string, long>> CountByStateAsync(CancellationToken ct = default);

    /// <summary>State changes from now on, until <paramref name="ct"/> is cancelled (a slow reader loses the oldest).</summary>
    IAsyncEnumerable<InstanceStateChange> WatchAsync(CancellationToken ct);
}
