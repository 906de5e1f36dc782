namespace StratusLab.Server.Modules.Scheduling.Contracts;

/// <summary>
/// Says when placing PENDING instances is worth trying again: a new PENDING instance, freed capacity, a host change.
/// Wakes coalesce: any number of Wake() calls before the next WaitAsync cause one pass.
/// </summary>
public interface ISchedulerSignal
{
    void Wake();

    /// <summary>Returns after the next Wake(), or after Scheduling:SafetyNetSeconds at the latest.</summary>
    Task WaitAsync(CancellationToken ct);
}

/// <summary>A PENDING instance asking for a host.</summary>
/// <param name="Requirements">Admin-set requirement expression over host attributes, if any.</param>
/// <param name="Policy">Admin-set placement policy for this instance, if any (else the site default).</param>
/// <param name="PendingSince">When the instance was created; past Scheduling:PendingTimeoutSeconds the scheduler gives up.</param>
public sealed record SchedulingRequest(long InstanceId, long Cpu, long MemoryMiB, string? Requirements, string? Policy, DateTimeOffset PendingSince);

/// <summary>
/// The scheduler's answer for one request: a host whose capacity is now reserved for the instance (give it back with
/// <see cref="IHostAllocations.ReleaseAsync"/>), or why no host fits; <see cref="GiveUp"/> when it waited too long.
/// </summary>
public sealed record SchedulingDecision(long InstanceId, string? Host, string? Driver, string? Reason, bool GiveUp)
{
    public bool Placed => Host is not null;
}

/// <summary>Chooses hosts for PENDING instances by the active policy, reserving their capacity atomically.</summary>
public interface IScheduler
{
    /// <summary>
    /// One decision per request, oldest first; requests whose instance already holds capacity get none.
    /// Two concurrent calls can never over-commit a host.
    /// </summary>
    Task<IReadOnlyList<SchedulingDecision>> PlaceAsync(IReadOnlyList<SchedulingRequest> requests, CancellationToken ct = default);

    /// <summary>
    /// Moves the capacity an instance holds on <paramref name="fromHost"/> to another host chosen as for a new placement
    /// (its requirements and policy apply; <paramref name="fromHost"/> is never chosen), in one write. The decision names
    /// the new host, or says why none fits; then the capacity stays where it was.
    /// </summary>
    Task<SchedulingDecision> RelocateAsync(SchedulingRequest request, string fromHost, CancellationToken ct = default);
}

/// <summary>Host capacity held by instances from placement until they end.</summary>
public interface IHostAllocations
{
    /// <summary>Gives an instance's capacity back (it ended, failed or was never started); wakes the scheduler.</summary>
    Task ReleaseAsync(long instanceId, CancellationToken ct = default);

    /// <summary>Puts an instance's capacity back on <paramref name="host"/> (undoes a relocation whose move could not be made).</summary>
    Task MoveAsync(long instanceId, string host, CancellationToken ct = default);
}

/// <summary>Checks what an instance request asks of placement, before anything is written.</summary>
public interface IPlacementRules
{
    /// <summary>Throws a 400 naming the field when the requirement expression or policy is invalid.</summary>
    void Validate(string? requirements, string? policy);

    /// <summary>Null when <paramref name="count"/> instances of this size could ever fit on the registered hosts (disabled ones included: they come back), else why not (with the numbers).</summary>
    Task<PlacementObstacle?> WhyNeverFitsAsync(long cpu, long memoryMiB, int count, CancellationToken ct = default);
}

/// <summary>A host's declared capacity, what its instances hold, and its last measured use.</summary>
public sealed record HostSummary(
    string Name, string Driver, bool Enabled, long Cpus, long MemoryMiB, long AllocatedCpus, long AllocatedMemoryMiB, long RunningVms,
    double CpuUsagePercent, long MemoryUsedMiB, DateTimeOffset? MonitoredAt, bool Local);

/// <summary>The registered hosts, for monitoring.</summary>
public interface IHostInventory
{
    Task<IReadOnlyList<HostSummary>> ListAsync(CancellationToken ct = default);

    /// <summary>Drains a host (no new instances) or lets it take instances again; false when there is no such host.</summary>
    Task<bool> SetEnabledAsync(string host, bool enabled, CancellationToken ct = default);
}

/// <summary>Why a request can never be placed: <see cref="Resource"/> is "cpu", "memory", "count" or "hosts".</summary>
public sealed record PlacementObstacle(string Resource, string Reason);

/// <summary>
/// A host reached over SSH (driver ssh): how to reach it, the directory it keeps its VMs in (node-side, never the
/// server's data dir), and what the last probe said. <see cref="State"/> is OK or ERROR (with <see cref="Reason"/>).
/// </summary>
public sealed record NodeInfo(string Name, Platform.Host.SshTarget Ssh, string Root, string State, string? Reason, string Accelerator, long MissedProbes, DateTimeOffset? ProbedAt)
{
    /// <summary>The node's own iSCSI initiator name (IQN): its QEMU logs in with it, and Pdisk's target ACLs name it.</summary>
    public string? IscsiInitiator { get; init; }

    /// <summary>Whether the last probe found QEMU's iSCSI block driver on the node (Debian package qemu-block-extra).</summary>
    public bool IscsiDriver { get; init; }

    /// <summary>How the node gets its VMs' boot disks: <see cref="NodeBootDisks.Cache"/> (default) or <see cref="NodeBootDisks.Iscsi"/>.</summary>
    public string BootDisks { get; init; } = NodeBootDisks.Cache;
}

/// <summary>
/// The boot disk modes of an SSH node. <see cref="Cache"/>: the image is copied to the node once and each VM gets a
/// node-local CoW overlay (copied back at stop). <see cref="Iscsi"/>: the boot volume (the image cache's CoW clone, with
/// its ORIGIN as backing, or a persistent volume) stays on the front-end and the node's QEMU opens it over iSCSI.
/// </summary>
public static class NodeBootDisks
{
    public const string Cache = "cache";
    public const string Iscsi = "iscsi";
}

/// <summary>The SSH nodes and their probed state.</summary>
public interface INodeDirectory
{
    /// <summary>The node of this host name, or null when the host is not an SSH node (or does not exist).</summary>
    Task<NodeInfo?> FindNodeAsync(string host, CancellationToken ct = default);

    Task<IReadOnlyList<NodeInfo>> ListNodesAsync(CancellationToken ct = default);
}

/// <summary>
/// A host that stands for another cloud (driver cloud): its URL, kind (stratuslab: REST with a bearer token; ec2: EC2
/// Query with an access key), the credentials opened for the cloud driver only (stored sealed; the API shows only that
/// they exist), and what the last probe said. <see cref="State"/> is OK or ERROR (with <see cref="Reason"/>).
/// </summary>
public sealed record PeerInfo(string Name, Uri Url, string Kind, string? Region, string? KeyId, string Secret, string State, string? Reason, long MissedProbes);

/// <summary>The peer clouds and their probed state.</summary>
public interface IPeerDirectory
{
    /// <summary>The peer of this host name, or null when the host is not a peer cloud (or does not exist).</summary>
    Task<PeerInfo?> FindPeerAsync(string host, CancellationToken ct = default);
}

/// <summary>
/// An instance on a peer cloud that ended on this site while the peer did not answer: its termination there is retried
/// until the peer confirms it, so nothing is left running (and billed) there unseen.
/// </summary>
public sealed record PendingRemoteDeletion(string RemoteId, long InstanceId, string Reason, long Attempts, string? LastError, DateTimeOffset Since, DateTimeOffset? LastAttemptAt);

/// <summary>The remote terminations a peer cloud host is still owed (implemented by the module that runs instances there, Compute).</summary>
public interface IPendingRemoteDeletions
{
    Task<IReadOnlyList<PendingRemoteDeletion>> ListAsync(string host, CancellationToken ct = default);

    /// <summary>Drops what <paramref name="host"/> is owed (the host is deleted; the admin terminates those instances there by hand).</summary>
    Task ForgetAsync(string host, CancellationToken ct = default);
}
