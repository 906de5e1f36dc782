using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk.Sharing;

/// <summary>A volume to expose to hypervisor hosts.</summary>
internal sealed record ShareRequest(Guid Uuid, string Path, bool ReadOnly);

/// <summary>An export of this server's that a sharing finds on the host (for reconciliation).</summary>
internal sealed record SharedExport(Guid Uuid, string? BackingPath, string Description);

/// <summary>How hypervisor hosts reach volumes: <c>local</c> (a path on this host) or <c>iscsi</c> (a tgt target per volume).</summary>
internal interface IVolumeSharing
{
    /// <summary>The configuration name: local or iscsi.</summary>
    string Name { get; }

    /// <summary>
    /// Makes sure the service behind the sharing runs, starting it when allowed; true when it had to be (re)started, so
    /// every export it held is gone. Throws a 503 naming the service when it cannot be brought back.
    /// </summary>
    Task<bool> EnsureRunningAsync(CancellationToken ct);

    /// <summary>Exposes the volume; doing it again for the same volume and path is a no-op.</summary>
    Task ShareAsync(ShareRequest share, CancellationToken ct);

    /// <summary>Withdraws the export (connected initiators lose the disk); a missing export is not an error.</summary>
    Task UnshareAsync(Guid uuid, CancellationToken ct);

    /// <summary>Makes the export read-only (ORIGIN, RAW_READONLY) or writable.</summary>
    Task SetReadOnlyAsync(Guid uuid, bool readOnly, CancellationToken ct);

    /// <summary>The transport URL a host opens the volume with.</summary>
    string TurlOf(Guid uuid, string path);

    /// <summary>The transport URL at another address of this machine's (where an SSH node reaches it).</summary>
    string TurlAt(Guid uuid, string portalAddress);

    /// <summary>Lets the initiator of this name (an SSH node's) log in to the volume's export; granting it again is a no-op.</summary>
    Task GrantAsync(Guid uuid, string initiatorName, CancellationToken ct);

    /// <summary>
    /// Withdraws <see cref="GrantAsync"/> and closes the initiator's open connections to the export (fencing: a node that
    /// stopped answering cannot keep writing); a grant, connection or export that is not there is not an error.
    /// </summary>
    Task RevokeAsync(Guid uuid, string initiatorName, CancellationToken ct);

    /// <summary>
    /// The exports of volumes of this server found on the host; <paramref name="owns"/> says whether a backing path is
    /// one of this server's (so exports of other servers sharing the same tgtd are left alone).
    /// </summary>
    Task<IReadOnlyList<SharedExport>> ListAsync(Func<string, bool> owns, CancellationToken ct);
}

/// <summary>The volume is a file or device on this host: hosts open it by path.</summary>
internal sealed class LocalSharing : IVolumeSharing
{
    public string Name => "local";
    public Task<bool> EnsureRunningAsync(CancellationToken ct) => Task.FromResult(false);
    public Task ShareAsync(ShareRequest share, CancellationToken ct) => Task.CompletedTask;
    public Task UnshareAsync(Guid uuid, CancellationToken ct) => Task.CompletedTask;
    public Task SetReadOnlyAsync(Guid uuid, bool readOnly, CancellationToken ct) => Task.CompletedTask;
    public string TurlOf(Guid uuid, string path) => new Uri(path).AbsoluteUri;
    public string TurlAt(Guid uuid, string portalAddress) => throw new InvalidOperationException("a local volume has no network address");
    public Task GrantAsync(Guid uuid, string initiatorName, CancellationToken ct) => throw new InvalidOperationException("a local volume admits no initiators");
    public Task RevokeAsync(Guid uuid, string initiatorName, CancellationToken ct) => Task.CompletedTask;
    public Task<IReadOnlyList<SharedExport>> ListAsync(Func<string, bool> owns, CancellationToken ct) => Task.FromResult<IReadOnlyList<SharedExport>>([]);
}
