using System.Globalization;
using System.Xml.Linq;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// EBS-shaped volumes and snapshots over Pdisk's <see cref="IVolumeService"/>. A vol- id names a Pdisk volume; a snap- id
/// names a LIVE copy-on-write snapshot of an ORIGIN volume (only an immutable ORIGIN can back one), and CreateVolume
/// from it is another copy-on-write snapshot of the same ORIGIN (same content: a snapshot is never attached).
/// States: CREATING → creating; READY → available, or in-use while mounted; QUARANTINED and DELETING → deleting.
/// </summary>
internal sealed partial class Ec2Actions
{
    void RegisterVolumeActions()
    {
        Register("CreateVolume", CreateVolume);
        Register("DescribeVolumes", DescribeVolumes);
        Register("AttachVolume", AttachVolume);
        Register("DetachVolume", DetachVolume);
        Register("DeleteVolume", DeleteVolume);
        Register("CreateSnapshot", CreateSnapshot);
        Register("DescribeSnapshots", DescribeSnapshots);
        Register("DeleteSnapshot", DeleteSnapshot);
    }

    public static string VolumeStateOf(VolumeInfo v) => v.State switch
    {
        "CREATING" => "creating",
        "READY" => v.Mounts.Count > 0 ? "in-use" : "available",
        _ => "deleting",
    };

    static string Native(Guid uuid) => uuid.ToString("D");

    // ---- volumes -------------------------------------------------------------------------------------------

    async Task<IEnumerable<XElement>> CreateVolume(Ec2Request request, CancellationToken ct)
    {
        if (request.Get("AvailabilityZone") is { Length: > 0 } zone && zone != _options.Zone)
            throw new Ec2Exception("InvalidParameterValue", $"Invalid availability zone: [{zone}]. This server's only zone is '{_options.Zone}'.");
        var tags = Ec2NetworkingShapes.TagSpecifications(request, "volume");
        long? size = null;
        if (request.Get("Size") is { } sizeText)
        {
            if (!long.TryParse(sizeText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) || s < 1)
                throw Ec2Exception.InvalidParameterValue("Size", sizeText, "The size of a volume is a whole number of GiB, at least 1.");
            size = s;
        }
        VolumeInfo volume;
        if (request.Get("SnapshotId") is { Length: > 0 } snapshotId)
        {
            var snapshot = await SnapshotOfAsync(request, snapshotId, ct);
            if (size is { } wanted && wanted != snapshot.SizeGiB)
                throw Ec2Exception.InvalidParameterValue("Size", wanted.ToString(CultureInfo.InvariantCulture),
                    $"A volume made from snapshot {snapshotId} has the snapshot's size ({snapshot.SizeGiB} GiB): leave Size out (resizing is not supported).");
            // A copy (of a RAW volume) is itself an ORIGIN: new volumes are copy-on-write snapshots of it.
            var origin = snapshot.Origin ?? (VolumeTypes.IsOrigin(snapshot.Type) ? snapshot.Uuid
                : throw new Ec2Exception("IncorrectState", $"Snapshot {snapshotId} has no origin volume any more."));
            volume = await _volumes.SnapshotAsync(request.Caller, origin, null, null, ct);
        }
        else
        {
            volume = await _volumes.CreateAsync(request.Caller, size ?? throw Ec2Exception.MissingParameter("Size"), null, ct);
        }
        var awsId = await _ec2Store.IdForAsync(Ec2Kind.Volume, Native(volume.Uuid));
        if (tags.Count > 0) await _ec2Store.SetTagsAsync([awsId], tags);
        return [.. (await VolumeItemsAsync([volume], request.Get("SnapshotId")))[0].Elements()];
    }

    async Task<IEnumerable<XElement>> DescribeVolumes(Ec2Request request, CancellationToken ct)
    {
        var ids = request.List("VolumeId");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "volumes", ids.Count > 0 ? "VolumeIds" : null);
        var filters = request.Filters();
        var volumes = await VisibleVolumesAsync(request, ct);
        var awsIds = await _ec2Store.IdsForAsync(Ec2Kind.Volume, volumes.Select(v => Native(v.Uuid)).ToList());
        if (ids.Count > 0)
        {
            if (ids.FirstOrDefault(id => Ec2Store.KindOf(id) != Ec2Kind.Volume) is { } malformed)
                throw new Ec2Exception("InvalidVolumeID.Malformed", $"Invalid id: \"{malformed}\" (expecting \"vol-...\" with 17 hex digits)");
            if (ids.FirstOrDefault(id => !awsIds.Values.Contains(id)) is { } unknown)
                throw new Ec2Exception("InvalidVolume.NotFound", $"The volume '{unknown}' does not exist.");
            volumes = volumes.Where(v => ids.Contains(awsIds[Native(v.Uuid)])).ToList();
        }
        var tags = await _ec2Store.TagsOfAsync(awsIds.Values.ToList());
        var instanceIds = await _ec2Store.IdsForAsync(Ec2Kind.Instance,
            volumes.SelectMany(v => v.Mounts).Select(m => NativeOf(m.InstanceId)).Distinct().ToList());
        var selected = volumes.Where(v => filters.All(f => Ec2NetworkingShapes.Matches(f, tags.GetValueOrDefault(awsIds[Native(v.Uuid)]), name => name switch
        {
            "volume-id" => [awsIds[Native(v.Uuid)]],
            "status" => [VolumeStateOf(v)],
            "size" => [v.SizeGiB.ToString(CultureInfo.InvariantCulture)],
            "availability-zone" => [_options.Zone],
            "attachment.instance-id" => v.Mounts.Select(m => instanceIds[NativeOf(m.InstanceId)]).ToList(),
            "attachment.status" => v.Mounts.Count > 0 ? ["attached"] : [],
            "encrypted" => ["false"],
            "volume-type" => ["standard"],
            _ => null,
        }))).ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        return
        [
            Set("volumeSet", await VolumeItemsAsync(page, null)),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    async Task<IEnumerable<XElement>> AttachVolume(Ec2Request request, CancellationToken ct)
    {
        var volumeId = request.Require("VolumeId");
        var instanceId = request.Require("InstanceId");
        var volume = await VolumeOfAsync(request, volumeId, ct);
        var instance = (await NativeInstanceIdsAsync([instanceId]))[instanceId];
        var mount = await _volumes.AttachAsync(request.Caller, volume.Uuid, instance, null, ct);
        return
        [
            E("volumeId", volumeId), E("instanceId", instanceId), E("device", request.Get("Device") ?? mount.Device),
            E("status", "attached"), E("attachTime", mount.CreatedAt),
        ];
    }

    async Task<IEnumerable<XElement>> DetachVolume(Ec2Request request, CancellationToken ct)
    {
        var volumeId = request.Require("VolumeId");
        var volume = await VolumeOfAsync(request, volumeId, ct);
        long instance;
        if (request.Get("InstanceId") is { Length: > 0 } instanceId)
            instance = (await NativeInstanceIdsAsync([instanceId]))[instanceId];
        else if (volume.Mounts.Count == 1)
            instance = volume.Mounts[0].InstanceId;
        else
            throw new Ec2Exception("IncorrectState", volume.Mounts.Count == 0
                ? $"Volume '{volumeId}' is not attached to any instance."
                : $"Volume '{volumeId}' is attached to {volume.Mounts.Count} instances; give InstanceId.");
        var mount = volume.Mounts.FirstOrDefault(m => m.InstanceId == instance)
            ?? throw new Ec2Exception("IncorrectState", $"Volume '{volumeId}' is not attached to instance '{request.Get("InstanceId")}'.");
        await _volumes.DetachAsync(request.Caller, volume.Uuid, instance, ct);
        var awsInstance = await _ec2Store.IdForAsync(Ec2Kind.Instance, NativeOf(instance));
        return
        [
            E("volumeId", volumeId), E("instanceId", awsInstance), E("device", request.Get("Device") ?? mount.Device),
            E("status", "detaching"), E("attachTime", mount.CreatedAt),
        ];
    }

    async Task<IEnumerable<XElement>> DeleteVolume(Ec2Request request, CancellationToken ct)
    {
        var volumeId = request.Require("VolumeId");
        var volume = await VolumeOfAsync(request, volumeId, ct);
        if (volume.Mounts.Count > 0)
        {
            var attached = await _ec2Store.IdsForAsync(Ec2Kind.Instance, volume.Mounts.Select(m => NativeOf(m.InstanceId)).ToList());
            throw new Ec2Exception("VolumeInUse", $"Volume '{volumeId}' is attached to {string.Join(", ", attached.Values)}; detach it first (DetachVolume).");
        }
        await _volumes.DeleteAsync(request.Caller, volume.Uuid, ct);
        return [E("return", true)];
    }

    /// <summary>
    /// The volumes DescribeVolumes lists: as in AWS, the caller's own (every one for an administrator), except those that are
    /// EC2 snapshots. Others' public volumes are left out of listings but can still be named by id.
    /// </summary>
    async Task<List<VolumeInfo>> VisibleVolumesAsync(Ec2Request request, CancellationToken ct)
    {
        var all = (await AllVolumesAsync(request, ct)).Where(v => request.Caller.IsAdmin || v.OwnerId == request.Caller.UserId).ToList();
        var snapshots = await _ec2Store.KnownIdsAsync(Ec2Kind.Snapshot, all.Select(v => Native(v.Uuid)).ToList());
        return all.Where(v => !snapshots.ContainsKey(Native(v.Uuid))).ToList();
    }

    async Task<List<VolumeInfo>> AllVolumesAsync(Ec2Request request, CancellationToken ct)
    {
        var all = new List<VolumeInfo>();
        for (var offset = 0; ; offset += 1000)
        {
            var page = await _volumes.ListAsync(request.Caller, 1000, offset, ct);
            all.AddRange(page);
            if (page.Count < 1000) break;
        }
        return all;
    }

    /// <summary>The volume behind a vol- id the caller may see (else InvalidVolumeID.Malformed / InvalidVolume.NotFound).</summary>
    async Task<VolumeInfo> VolumeOfAsync(Ec2Request request, string volumeId, CancellationToken ct)
    {
        if (Ec2Store.KindOf(volumeId) != Ec2Kind.Volume)
            throw new Ec2Exception("InvalidVolumeID.Malformed", $"Invalid id: \"{volumeId}\" (expecting \"vol-...\" with 17 hex digits)");
        var native = await NativeIdAsync(volumeId, Ec2Kind.Volume, "InvalidVolume", "volume");
        try { return await _volumes.GetAsync(request.Caller, Guid.Parse(native), ct); }
        catch (NotFoundException) { throw new Ec2Exception("InvalidVolume.NotFound", $"The volume '{volumeId}' does not exist."); }
    }

    async Task<IReadOnlyList<XElement>> VolumeItemsAsync(IReadOnlyList<VolumeInfo> volumes, string? snapshotId)
    {
        var awsIds = await _ec2Store.IdsForAsync(Ec2Kind.Volume, volumes.Select(v => Native(v.Uuid)).ToList());
        var tags = await _ec2Store.TagsOfAsync(awsIds.Values.ToList());
        var instanceIds = await _ec2Store.IdsForAsync(Ec2Kind.Instance, volumes.SelectMany(v => v.Mounts).Select(m => NativeOf(m.InstanceId)).Distinct().ToList());
        return volumes.Select(v =>
        {
            var id = awsIds[Native(v.Uuid)];
            return Item(
                E("volumeId", id), E("size", v.SizeGiB), E("snapshotId", snapshotId ?? ""), E("availabilityZone", _options.Zone),
                E("status", VolumeStateOf(v)), E("createTime", v.CreatedAt), E("volumeType", "standard"), E("encrypted", false),
                E("multiAttachEnabled", false),
                Set("attachmentSet", v.Mounts.Select(m => Item(
                    E("volumeId", id), E("instanceId", instanceIds[NativeOf(m.InstanceId)]), E("device", m.Device),
                    E("status", "attached"), E("attachTime", m.CreatedAt), E("deleteOnTermination", false)))),
                Ec2NetworkingShapes.TagSet(Ns, tags.GetValueOrDefault(id)?.ToList() ?? []));
        }).ToList();
    }

    // ---- snapshots -----------------------------------------------------------------------------------------

    async Task<IEnumerable<XElement>> CreateSnapshot(Ec2Request request, CancellationToken ct)
    {
        var volumeId = request.Require("VolumeId");
        var tags = Ec2NetworkingShapes.TagSpecifications(request, "snapshot");
        var description = request.Get("Description");
        if (description is { Length: > 255 })
            throw Ec2Exception.InvalidParameterValue("Description", description[..20] + "...", "A description is at most 255 characters.");
        var volume = await VolumeOfAsync(request, volumeId, ct);
        // An ORIGIN is immutable: a copy-on-write snapshot of it stays as taken, in constant time. Any other volume (a RAW
        // data disk) changes, so its snapshot is a point-in-time copy made by Pdisk (refused while attached read-write).
        VolumeInfo snapshot;
        if (VolumeTypes.IsOrigin(volume.Type))
            snapshot = await _volumes.SnapshotAsync(request.Caller, volume.Uuid, null, null, ct);
        else
        {
            try { snapshot = await _volumes.CopyAsync(request.Caller, volume.Uuid, null, ct); }
            catch (ConflictException e) when (!e.Message.StartsWith("Quota", StringComparison.Ordinal))
            {
                throw new Ec2Exception("IncorrectState", $"Volume '{volumeId}' cannot be snapshotted now: {e.Message}");
            }
        }
        var awsId = await _ec2Store.IdForAsync(Ec2Kind.Snapshot, Native(snapshot.Uuid));
        if (!VolumeTypes.IsOrigin(volume.Type)) await _ec2Store.SetSnapshotSourceAsync(awsId, volumeId);
        if (tags.Count > 0) await _ec2Store.SetTagsAsync([awsId], tags);
        if (description is { Length: > 0 }) await _ec2Store.SetDescriptionAsync(awsId, description);
        return [.. (await SnapshotItemsAsync(request, [snapshot]))[0].Elements()];
    }

    async Task<IEnumerable<XElement>> DescribeSnapshots(Ec2Request request, CancellationToken ct)
    {
        var ids = request.List("SnapshotId");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "snapshots", ids.Count > 0 ? "SnapshotIds" : null);
        var owners = request.List("Owner");
        var filters = request.Filters();
        var snapshots = (await VisibleSnapshotsAsync(request, ct)).Where(v => request.Caller.IsAdmin || v.OwnerId == request.Caller.UserId).ToList();
        var awsIds = await _ec2Store.KnownIdsAsync(Ec2Kind.Snapshot, snapshots.Select(v => Native(v.Uuid)).ToList());
        if (ids.Count > 0)
        {
            if (ids.FirstOrDefault(id => Ec2Store.KindOf(id) != Ec2Kind.Snapshot) is { } malformed)
                throw new Ec2Exception("InvalidSnapshotID.Malformed", $"Invalid id: \"{malformed}\" (expecting \"snap-...\" with 17 hex digits)");
            if (ids.FirstOrDefault(id => !awsIds.Values.Contains(id)) is { } unknown)
                throw new Ec2Exception("InvalidSnapshot.NotFound", $"The snapshot '{unknown}' does not exist.");
            snapshots = snapshots.Where(v => ids.Contains(awsIds[Native(v.Uuid)])).ToList();
        }
        if (owners.Count > 0)
            snapshots = snapshots.Where(v => owners.Any(o => o == "self" ? v.OwnerId == request.Caller.UserId : o == Ec2NetworkingShapes.AccountOf(v.OwnerId))).ToList();
        var tags = await _ec2Store.TagsOfAsync(awsIds.Values.ToList());
        var origins = await _ec2Store.IdsForAsync(Ec2Kind.Volume, snapshots.Where(v => v.Origin is not null).Select(v => Native(v.Origin!.Value)).Distinct().ToList());
        var descriptions = await _ec2Store.DescriptionsOfAsync(awsIds.Values.ToList());
        var sources = await _ec2Store.SnapshotSourcesAsync(awsIds.Values.ToList());
        var selected = snapshots.Where(v => filters.All(f => Ec2NetworkingShapes.Matches(f, tags.GetValueOrDefault(awsIds[Native(v.Uuid)]), name => name switch
        {
            "snapshot-id" => [awsIds[Native(v.Uuid)]],
            "volume-id" => sources.TryGetValue(awsIds[Native(v.Uuid)], out var source) ? [source] : v.Origin is { } o ? [origins[Native(o)]] : [],
            "status" => ["completed"],
            "owner-id" => [Ec2NetworkingShapes.AccountOf(v.OwnerId)],
            "volume-size" => [v.SizeGiB.ToString(CultureInfo.InvariantCulture)],
            "description" => [descriptions.GetValueOrDefault(awsIds[Native(v.Uuid)]) ?? ""],
            "progress" => ["100%"],
            "encrypted" => ["false"],
            _ => null,
        }))).ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        return
        [
            Set("snapshotSet", await SnapshotItemsAsync(request, page)),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    async Task<IEnumerable<XElement>> DeleteSnapshot(Ec2Request request, CancellationToken ct)
    {
        var snapshot = await SnapshotOfAsync(request, request.Require("SnapshotId"), ct);
        await _volumes.DeleteAsync(request.Caller, snapshot.Uuid, ct);
        return [E("return", true)];
    }

    /// <summary>The visible Pdisk volumes that are EC2 snapshots.</summary>
    async Task<List<VolumeInfo>> VisibleSnapshotsAsync(Ec2Request request, CancellationToken ct)
    {
        var all = await AllVolumesAsync(request, ct);
        var snapshots = await _ec2Store.KnownIdsAsync(Ec2Kind.Snapshot, all.Select(v => Native(v.Uuid)).ToList());
        return all.Where(v => snapshots.ContainsKey(Native(v.Uuid))).ToList();
    }

    /// <summary>The LIVE volume behind a snap- id the caller may see (else InvalidSnapshotID.Malformed / InvalidSnapshot.NotFound).</summary>
    async Task<VolumeInfo> SnapshotOfAsync(Ec2Request request, string snapshotId, CancellationToken ct)
    {
        if (Ec2Store.KindOf(snapshotId) != Ec2Kind.Snapshot)
            throw new Ec2Exception("InvalidSnapshotID.Malformed", $"Invalid id: \"{snapshotId}\" (expecting \"snap-...\" with 17 hex digits)");
        var native = await NativeIdAsync(snapshotId, Ec2Kind.Snapshot, "InvalidSnapshot", "snapshot");
        try { return await _volumes.GetAsync(request.Caller, Guid.Parse(native), ct); }
        catch (NotFoundException) { throw new Ec2Exception("InvalidSnapshot.NotFound", $"The snapshot '{snapshotId}' does not exist."); }
    }

    async Task<IReadOnlyList<XElement>> SnapshotItemsAsync(Ec2Request request, IReadOnlyList<VolumeInfo> snapshots)
    {
        var awsIds = await _ec2Store.IdsForAsync(Ec2Kind.Snapshot, snapshots.Select(v => Native(v.Uuid)).ToList());
        var tags = await _ec2Store.TagsOfAsync(awsIds.Values.ToList());
        var descriptions = await _ec2Store.DescriptionsOfAsync(awsIds.Values.ToList());
        var origins = await _ec2Store.IdsForAsync(Ec2Kind.Volume, snapshots.Where(v => v.Origin is not null).Select(v => Native(v.Origin!.Value)).Distinct().ToList());
        var sources = await _ec2Store.SnapshotSourcesAsync(awsIds.Values.ToList());
        return snapshots.Select(v =>
        {
            var id = awsIds[Native(v.Uuid)];
            return Item(
                E("snapshotId", id), E("volumeId", sources.TryGetValue(id, out var source) ? source : v.Origin is { } o ? origins[Native(o)] : ""), E("status", "completed"),
                E("startTime", v.CreatedAt), E("progress", "100%"), E("ownerId", Ec2NetworkingShapes.AccountOf(v.OwnerId)),
                E("volumeSize", v.SizeGiB), E("description", descriptions.GetValueOrDefault(id) ?? ""), E("encrypted", false),
                E("storageTier", "standard"),
                Ec2NetworkingShapes.TagSet(Ns, tags.GetValueOrDefault(id)?.ToList() ?? []));
        }).ToList();
    }
}
