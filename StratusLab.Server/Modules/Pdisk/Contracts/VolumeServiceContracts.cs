using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Pdisk.Contracts;

/// <summary>One mount of a volume: the instance using it, the host, the guest device (a QMP device id for hot-plugged disks).</summary>
public sealed record VolumeMountInfo(long InstanceId, string Host, string Device, bool ReadOnly, bool HotPlugged, DateTimeOffset CreatedAt)
{
    /// <summary>The path the guest finds the disk at (see <see cref="GuestDevices"/>).</summary>
    public string GuestDevice => GuestDevices.Of(Device, HotPlugged);
}

/// <summary>
/// Where a guest finds a mounted volume. Disks given at boot are vda (a boot volume), vdb, vdc... in order. A hot-plugged
/// disk's kernel name depends on what the guest already has, so it carries its device id as its virtio serial and udev
/// names it /dev/disk/by-id/virtio-&lt;id&gt; (without udev: the vdX whose /sys/block/vdX/serial is the id).
/// </summary>
public static class GuestDevices
{
    public static string Of(string device, bool hotPlugged) => hotPlugged ? $"/dev/disk/by-id/virtio-{device}" : $"/dev/{device}";
}

/// <summary>
/// A volume as a user sees it through any front door. <see cref="SizeGiB"/> is rounded up, <see cref="Bytes"/> exact;
/// <see cref="State"/> is CREATING, READY, QUARANTINED or DELETING; <see cref="Origin"/> is the ORIGIN a LIVE snapshot is made from.
/// </summary>
public sealed record VolumeInfo(
    Guid Uuid, long OwnerId, string Owner, VolumeType Type, string State, long SizeGiB, long Bytes, string? Tag, string Visibility,
    Guid? Origin, IReadOnlyList<VolumeMountInfo> Mounts, DateTimeOffset CreatedAt);

/// <summary>
/// Pdisk's user-facing application service: the permissions, validation and quotas every front door (REST, EC2, ...)
/// shares. Refusals are Platform.Contracts domain exceptions: NotFoundException for a volume or instance the caller
/// cannot see, InvalidInputException for refused input, ConflictException for a wrong state (mounted, has snapshots)
/// or an exceeded quota (message starting with "Quota"), ForbiddenException when the caller may see but not change it.
/// </summary>
public interface IVolumeService
{
    /// <summary>A new empty private DATA_IMAGE_RAW_READ_WRITE volume of <paramref name="sizeGiB"/> GiB (1..Pdisk:MaxVolumeGiB) owned by the caller.</summary>
    Task<VolumeInfo> CreateAsync(Caller caller, long sizeGiB, string? tag = null, CancellationToken ct = default);

    /// <summary>
    /// A new private DATA_IMAGE_RAW_READ_WRITE volume owned by the caller from the image at <paramref name="url"/> (raw or
    /// qcow2, optionally gzip; at most Pdisk:MaxUrlDownloadBytes), downloaded before it returns; <paramref name="bytes"/> and
    /// <paramref name="sha1"/> check it when given. A failed download or check keeps nothing (422 naming 'url', 'bytes' or 'sha1').
    /// </summary>
    Task<VolumeInfo> CreateFromUrlAsync(Caller caller, string url, string? tag = null, long? bytes = null, string? sha1 = null, CancellationToken ct = default);

    /// <summary>
    /// A new private DATA_IMAGE_RAW_READ_WRITE volume owned by the caller from <paramref name="body"/> (raw or qcow2,
    /// optionally gzip), streamed to disk as it arrives, never held in memory; at most Pdisk:MaxUploadBytes (413, nothing kept).
    /// </summary>
    Task<VolumeInfo> UploadAsync(Caller caller, Stream body, long? contentLength, string? tag = null, long? bytes = null, string? sha1 = null, CancellationToken ct = default);

    /// <summary>
    /// Administrators only (ForbiddenException): puts a READY volume in quarantine now (unexported, not mountable, kept for
    /// Pdisk:QuarantineMinutes, then removed); ConflictException while it is mounted or has snapshots.
    /// </summary>
    Task<VolumeInfo> QuarantineAsync(Caller caller, Guid uuid, CancellationToken ct = default);

    /// <summary>Administrators only (ForbiddenException): a quarantined volume is READY again; ConflictException when it is not in quarantine.</summary>
    Task<VolumeInfo> ReleaseAsync(Caller caller, Guid uuid, CancellationToken ct = default);

    /// <summary>Quarantined volumes with when they go (administrators only: ForbiddenException).</summary>
    Task<IReadOnlyList<VolumeInfo>> ListQuarantineAsync(Caller caller, CancellationToken ct = default);

    /// <summary>The volumes the caller may see (own, public, their groups'; admins all), oldest first.</summary>
    Task<IReadOnlyList<VolumeInfo>> ListAsync(Caller caller, int limit = 1000, int offset = 0, CancellationToken ct = default);

    /// <summary>One volume the caller may see (404 otherwise).</summary>
    Task<VolumeInfo> GetAsync(Caller caller, Guid uuid, CancellationToken ct = default);

    /// <summary>Removes a volume of the caller's now; 409 while it is mounted or has snapshots.</summary>
    Task DeleteAsync(Caller caller, Guid uuid, CancellationToken ct = default);

    /// <summary>
    /// A copy-on-write snapshot (a LIVE volume owned by the caller) of an ORIGIN volume the caller can see; other types
    /// are refused (422) because only an immutable ORIGIN can back a snapshot.
    /// </summary>
    Task<VolumeInfo> SnapshotAsync(Caller caller, Guid originUuid, string? tag = null, string? sharing = null, CancellationToken ct = default);

    /// <summary>A point-in-time copy of a READY volume the caller can see (any type, RAW included) as a new DATA_IMAGE_ORIGIN owned by the
    /// caller, counted in its storage quota. ConflictException while the volume is attached read-write or not READY.</summary>
    Task<VolumeInfo> CopyAsync(Caller caller, Guid uuid, string? tag = null, CancellationToken ct = default);

    /// <summary>Hot-plugs the volume into a running instance of the caller's; returns the mount with the guest device.</summary>
    Task<VolumeMountInfo> AttachAsync(Caller caller, Guid uuid, long instanceId, bool? readOnly = null, CancellationToken ct = default);

    /// <summary>Detaches the volume from the instance (hot-unplug when it still runs).</summary>
    Task DetachAsync(Caller caller, Guid uuid, long instanceId, CancellationToken ct = default);

    /// <summary>The mounts of a volume the caller may see.</summary>
    Task<IReadOnlyList<VolumeMountInfo>> MountsAsync(Caller caller, Guid uuid, CancellationToken ct = default);
}
