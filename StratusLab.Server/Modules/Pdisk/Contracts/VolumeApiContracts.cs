namespace StratusLab.Server.Modules.Pdisk.Contracts;

// The REST API's records of /api/v1/volumes: the server returns them and the CLI reads them (one JSON shape).

/// <summary>One mount of a volume as the API shows it.</summary>
public sealed record MountView(long InstanceId, string Host, string Device, bool ReadOnly, bool HotPlugged, DateTimeOffset CreatedAt)
{
    /// <summary>The path the guest finds the disk at (see <see cref="GuestDevices"/>).</summary>
    public string GuestDevice => GuestDevices.Of(Device, HotPlugged);
}

/// <summary>
/// A volume as the API shows it. <c>size</c> is in GiB (rounded up), <c>bytes</c> exact; <c>count</c> is the number of
/// snapshots of an ORIGIN, else the number of mounts; <c>turl</c> says how a host reaches it.
/// </summary>
public sealed record VolumeView(
    string Uuid, string Owner, IReadOnlyList<long> Groups, string Visibility, string? Tag, long Size, long Bytes, string? Identifier,
    string Type, long Count, string State, string Backend, string Format, string Sharing, string Turl, string? Origin, string? Sha1,
    DateTimeOffset? QuarantinedAt, DateTimeOffset? QuarantineUntil, IReadOnlyList<MountView> Mounts, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>
/// Body of POST /volumes: either <c>size</c> (GiB, an empty volume) or <c>url</c> (an image to download, checked against
/// <c>bytes</c> and <c>sha1</c> when given). <c>type</c> defaults to DATA_IMAGE_RAW_READ_WRITE, <c>visibility</c> to private,
/// <c>sharing</c> to Pdisk:Sharing; <c>groups</c> are ids of groups whose members may read the volume.
/// </summary>
public sealed record CreateVolumeRequest(
    long? Size = null, string? Tag = null, string? Visibility = null, string? Type = null, string? Sharing = null,
    string? Url = null, long? Bytes = null, string? Sha1 = null, string? Identifier = null, IReadOnlyList<long>? Groups = null);

/// <summary>Body of PUT /volumes/{uuid}; absent fields are left as they are.</summary>
public sealed record UpdateVolumeRequest(string? Tag = null, string? Visibility = null, string? Type = null, IReadOnlyList<long>? Groups = null, string? Identifier = null);

/// <summary>Body of POST /volumes/{uuid}/snapshots.</summary>
public sealed record CreateSnapshotRequest(string? Tag = null, string? Sharing = null);

/// <summary>Body of POST /volumes/{uuid}/mounts: hot-plug into a running instance; <c>readOnly</c> defaults by type.</summary>
public sealed record AttachVolumeRequest(long InstanceId, bool? ReadOnly = null);

/// <summary>How a host reaches a volume.</summary>
public sealed record TurlView(string Uuid, string Turl, string Format, string Sharing);

/// <summary>Result of purging the quarantine.</summary>
public sealed record PurgeResult(IReadOnlyList<string> Purged);
