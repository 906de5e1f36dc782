namespace StratusLab.Server.Modules.Pdisk.Contracts;

/// <summary>
/// The six StratusLab disk types. An ORIGIN is an immutable source that copy-on-write snapshots are taken of;
/// a LIVE volume is such a snapshot (written by one VM); RAW volumes are plain data disks.
/// </summary>
public enum VolumeType
{
    MachineImageOrigin,
    MachineImageLive,
    DataImageOrigin,
    DataImageLive,
    DataImageRawReadonly,
    DataImageRawReadWrite,
}

/// <summary>Names and rules of <see cref="VolumeType"/> (pure).</summary>
public static class VolumeTypes
{
    /// <summary>The wire name, e.g. MACHINE_IMAGE_ORIGIN.</summary>
    public static string Name(VolumeType type) => type switch
    {
        VolumeType.MachineImageOrigin => "MACHINE_IMAGE_ORIGIN",
        VolumeType.MachineImageLive => "MACHINE_IMAGE_LIVE",
        VolumeType.DataImageOrigin => "DATA_IMAGE_ORIGIN",
        VolumeType.DataImageLive => "DATA_IMAGE_LIVE",
        VolumeType.DataImageRawReadonly => "DATA_IMAGE_RAW_READONLY",
        VolumeType.DataImageRawReadWrite => "DATA_IMAGE_RAW_READ_WRITE",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static IReadOnlyList<string> Names { get; } = Enum.GetValues<VolumeType>().Select(Name).ToList();

    /// <summary>Parses a wire name (case-insensitive).</summary>
    public static bool TryParse(string? text, out VolumeType type)
    {
        foreach (var candidate in Enum.GetValues<VolumeType>())
        {
            if (string.Equals(Name(candidate), text, StringComparison.OrdinalIgnoreCase))
            {
                type = candidate;
                return true;
            }
        }
        type = default;
        return false;
    }

    public static bool IsOrigin(VolumeType t) => t is VolumeType.MachineImageOrigin or VolumeType.DataImageOrigin;
    public static bool IsLive(VolumeType t) => t is VolumeType.MachineImageLive or VolumeType.DataImageLive;

    /// <summary>ORIGINs back snapshots and RAW_READONLY says so: both are only ever exposed read-only.</summary>
    public static bool IsReadOnly(VolumeType t) => IsOrigin(t) || t == VolumeType.DataImageRawReadonly;

    /// <summary>The LIVE type a snapshot of an ORIGIN gets.</summary>
    public static VolumeType LiveOf(VolumeType origin) => origin switch
    {
        VolumeType.MachineImageOrigin => VolumeType.MachineImageLive,
        VolumeType.DataImageOrigin => VolumeType.DataImageLive,
        _ => throw new ArgumentException($"{Name(origin)} is not an ORIGIN type"),
    };

    /// <summary>The ORIGIN type a rebased LIVE volume becomes.</summary>
    public static VolumeType OriginOf(VolumeType live) => live switch
    {
        VolumeType.MachineImageLive => VolumeType.MachineImageOrigin,
        VolumeType.DataImageLive => VolumeType.DataImageOrigin,
        _ => throw new ArgumentException($"{Name(live)} is not a LIVE type"),
    };
}

/// <summary>
/// A volume as other modules see it. <see cref="LocalPath"/> is the file or block device on the storage host;
/// <see cref="Turl"/> (transport URL) says how a hypervisor host reaches it: <c>file:///path</c> or
/// <c>iscsi://portal:port/iqn.2011-01.eu.stratuslab:&lt;uuid&gt;/1</c>; <see cref="Format"/> is raw or qcow2 as seen through it.
/// </summary>
public sealed record VolumeSummary(
    Guid Uuid,
    long OwnerId,
    VolumeType Type,
    string State,
    long SizeBytes,
    string Format,
    string LocalPath,
    string Turl,
    Guid? Origin,
    string? Identifier,
    string? Tag);

/// <summary>
/// A volume made from an image at an http(s) URL: the download is checked against <see cref="Bytes"/> and
/// <see cref="Sha1"/> (of the bytes as served, before any gunzip) when given; a gzip body is unpacked on the fly.
/// <see cref="Visibility"/> is private or public; <see cref="Sharing"/> local or iscsi (null: Pdisk:Sharing).
/// </summary>
public sealed record VolumeFromUrl(long OwnerId, string Url, long? Bytes, string? Sha1, VolumeType Type,
    string Visibility = "private", string? Identifier = null, string? Tag = null, string? Sharing = null);

/// <summary>
/// A volume made from an image file already on this host (e.g. one the image cache downloaded and verified):
/// <see cref="Format"/> is raw or qcow2 (checked against the file), the file must not depend on a backing file.
/// </summary>
public sealed record VolumeFromFile(long OwnerId, string Path, string Format, VolumeType Type,
    string Visibility = "private", string? Identifier = null, string? Tag = null, string? Sharing = null);

/// <summary>
/// A mount Compute records itself, without hot-plug: a volume used as an instance's boot disk (given to QEMU at start).
/// With <see cref="QuarantineWhenReleased"/> the volume goes to quarantine when the instance ends (a LIVE root disk).
/// </summary>
public sealed record VolumeMountRequest(Guid Uuid, long InstanceId, string Host, string Device, bool ReadOnly, bool QuarantineWhenReleased)
{
    /// <summary>
    /// The host does not open the volume itself but a copy of it (the boot disk of a VM on an SSH node comes from the node's
    /// cache): the turl stays this machine's and no node is let into its export.
    /// </summary>
    public bool Staged { get; init; }
}

/// <summary>One mount of a volume: which instance uses it, on which host, as which device (QMP device id or e.g. "vda").</summary>
public sealed record VolumeMountSummary(Guid Uuid, long InstanceId, string Host, string Device, bool ReadOnly, bool HotPlugged, string Turl, string Format)
{
    /// <summary>
    /// For a copy-on-write clone that an SSH node opens over iSCSI: its backing volume (the ORIGIN) as the node reaches
    /// it, to be given to QEMU as the qcow2's backing (the path in the clone's header is this machine's); else null.
    /// </summary>
    public string? BackingTurl { get; init; }
    public string? BackingFormat { get; init; }
}

/// <summary>
/// Persistent disks for other modules: Compute (boot disks, releasing mounts) and Images (the image cache keeps one
/// ORIGIN per Marketplace identifier and hands out LIVE copy-on-write snapshots of it).
/// Failures the caller can act on are Platform.Contracts domain exceptions (NotFoundException for an unknown volume,
/// ConflictException for conflicts, InvalidInputException for refused input, UnavailableException when a tool or host fails).
/// </summary>
public interface IVolumes
{
    /// <summary>The volume, or null when it does not exist (in any state, including quarantine).</summary>
    Task<VolumeSummary?> FindAsync(Guid uuid, CancellationToken ct = default);

    /// <summary>The ORIGIN (or other non-LIVE) volume registered under a Marketplace identifier, or null.</summary>
    Task<VolumeSummary?> FindByIdentifierAsync(string identifier, CancellationToken ct = default);

    /// <summary>
    /// Downloads (streamed, never held in memory), verifies and stores an image as a new volume owned by
    /// <see cref="VolumeFromUrl.OwnerId"/>. On any mismatch nothing is kept and a 422 says which check failed.
    /// An identifier already used by another non-LIVE volume is a 409.
    /// </summary>
    Task<VolumeSummary> CreateFromUrlAsync(VolumeFromUrl request, CancellationToken ct = default);

    /// <summary>
    /// Takes over an image file on this host as a new volume: the file is consumed (moved into place when on the same
    /// file system, else copied; with the lvm backend copied into a new LV) and is gone afterwards, also on failure.
    /// 422 when it is not a raw/qcow2 image of the given format or has a backing file; 409 for a taken identifier.
    /// </summary>
    Task<VolumeSummary> ImportFileAsync(VolumeFromFile request, CancellationToken ct = default);

    /// <summary>
    /// Copy-on-write snapshot of an ORIGIN for <paramref name="ownerId"/> (who must be able to see the origin):
    /// a LIVE volume with identifier <c>snapshot:&lt;origin&gt;</c>, charged to the owner's storage quota, shared the same
    /// way as the origin unless <paramref name="sharing"/> says local or iscsi. Constant time (no data copied).
    /// </summary>
    Task<VolumeSummary> CreateSnapshotAsync(Guid originUuid, long ownerId, string? tag = null, string? sharing = null, CancellationToken ct = default);

    /// <summary>
    /// Records that an instance uses the volume without hot-plugging it (a boot disk Compute passes to QEMU itself).
    /// Refused (409) when the volume is in quarantine, or already mounted read-write, or read-only by type and
    /// <see cref="VolumeMountRequest.ReadOnly"/> is false. Returns the mount with the turl and format to open.
    /// </summary>
    Task<VolumeMountSummary> MountAsync(VolumeMountRequest request, CancellationToken ct = default);

    /// <summary>
    /// Moves a recorded mount (a boot disk) of the instance to <see cref="VolumeMountRequest.Host"/> (a start on another
    /// host after an evacuation): the old host's node is withdrawn from the export first (its connections closed), then
    /// the new one is let in unless <see cref="VolumeMountRequest.Staged"/>. Returns the mount as the new host opens it.
    /// </summary>
    Task<VolumeMountSummary> RemountAsync(VolumeMountRequest request, CancellationToken ct = default);

    /// <summary>
    /// Fences a host that stopped answering away from the instance's writable volumes: its node's initiator leaves their
    /// export ACLs and its open iSCSI connections to them are closed, so a half-dead node cannot keep writing once another
    /// host opens them. The mounts stay recorded (a move follows). No-op for hosts that are not SSH nodes.
    /// </summary>
    Task FenceAsync(long instanceId, string host, CancellationToken ct = default);

    /// <summary>Every mount an instance holds (hot-plugged and recorded ones), e.g. to plug them again after a stop/start.</summary>
    Task<IReadOnlyList<VolumeMountSummary>> MountsOfAsync(long instanceId, CancellationToken ct = default);

    /// <summary>
    /// Releases every mount of an ended instance (hot-plugged disks are detached first when the VM still runs);
    /// volumes mounted with QuarantineWhenReleased go to quarantine. Idempotent. Compute calls it when a VM is
    /// gone for good; Pdisk's reconciler does it for instances that ended while the server was down.
    /// </summary>
    Task ReleaseMountsAsync(long instanceId, CancellationToken ct = default);

    /// <summary>
    /// Keeps the volume for Pdisk:QuarantineMinutes, then it is removed (quota given back then). A quarantined
    /// volume cannot be mounted; admins list and purge quarantine. 409 when it is mounted or has snapshots.
    /// </summary>
    Task QuarantineAsync(Guid uuid, CancellationToken ct = default);

    /// <summary>Removes the volume now (file or LV, iSCSI target, row) and gives its quota back; 409 naming its mounts or snapshots.</summary>
    Task DeleteAsync(Guid uuid, CancellationToken ct = default);
}
