using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk;

internal sealed partial class VolumeLifecycle
{
    /// <summary>
    /// Hot-plugs a volume into a running instance of the caller's (QMP blockdev-add + device_add through Compute).
    /// Read-only unless asked otherwise and allowed: ORIGIN and RAW_READONLY volumes, and others' public volumes,
    /// are only ever read-only; a read-write volume is mounted by one instance at a time.
    /// </summary>
    public async Task<MountRow> AttachAsync(Caller caller, string uuid, long instanceId, bool? readOnly, CancellationToken ct)
    {
        var instance = await instances.FindAsync(instanceId, ct);
        if (instance is null || (!caller.IsAdmin && instance.OwnerId != caller.UserId)) throw new NotFoundException($"Instance {instanceId}");
        var row = await VisibleAsync(caller, uuid);
        var typeReadOnly = VolumeTypes.IsReadOnly(row.TypeValue);
        if (readOnly == false && typeReadOnly)
            throw new InvalidInputException("readOnly", $"Volume {uuid} is {row.Type} and is only ever attached read-only; leave 'readOnly' out or set it to true.", unprocessable: true);
        if (readOnly == false && !CanManage(caller, row))
            throw new ForbiddenException($"Volume {uuid} is someone else's public volume: you may attach it read-only only.");
        var ro = readOnly ?? (typeReadOnly || !CanManage(caller, row));
        await ReleaseEndedMountsAsync(uuid, ct);
        // A dead tgtd is the host's fault: 503 naming it, or the volume exported again, before the hypervisor tries to open it.
        if (row.Sharing != "local") await EnsureExportsAsync(held: null, ct);

        using var _ = await LockAsync(uuid, ct);
        // On an SSH node: refused before anything is made when the node cannot open it; else its initiator is let in first.
        var node = await nodeAccess.ResolveAsync(instance.Host ?? "", uuid, row.Sharing, ct);
        var mountId = await InsertMountAsync(uuid, instanceId, instance.Host ?? Environment.MachineName, "", ro, hotPlugged: true, quarantineOnRelease: false, ct);
        try
        {
            row = (await store.GetAsync(uuid))!;
            if (node is not null) await GrantAsync(row, node, ct);
            var disk = new DiskAttachment(TurlFor(row, node), row.Format, ro);
            string device;
            try { device = await hotPlug.AttachAsync(instanceId, disk, ct); }
            catch (DomainException refused) when (refused.Kind == Rejection.Unprocessable && row.Sharing != "local")
            {
                // tgtd may have died since the check: its 503 beats a refusal blamed on the instance; exported again, one more try.
                if (!(await EnsureExportsAsync(held: uuid, ct)).Contains(uuid)) throw;
                device = await hotPlug.AttachAsync(instanceId, disk, ct);
            }
            await store.SetMountDeviceAsync(mountId, device);
            logger.LogInformation("Volume {Uuid} attached to instance {Instance} as {Device} ({Mode})", uuid, instanceId, device, ro ? "read-only" : "read-write");
        }
        catch (Exception e)
        {
            await store.DeleteMountAsync(mountId);
            if (node is not null) await RevokeUnlessMountedAsync(row, node.Node, CancellationToken.None);
            if (e is DomainException or OperationCanceledException) throw;
            throw new UnavailableException($"The hypervisor could not attach volume {uuid} to instance {instanceId}: {e.Message}");
        }
        return (await store.MountsOfVolumeAsync(uuid)).Single(m => m.Id == mountId);
    }

    /// <summary>The turl a host opens: this machine's, or the address an SSH node reaches it at.</summary>
    string TurlFor(VolumeRow row, NodePortal? node) => node is null ? TurlOf(row) : services.VolumeSharing(row.Sharing).TurlAt(row.Id, node.PortalAddress);

    async Task GrantAsync(VolumeRow row, NodePortal node, CancellationToken ct)
    {
        try { await services.VolumeSharing(row.Sharing).GrantAsync(row.Id, node.Initiator, ct); }
        catch (Exception e) when (e is ToolFailedException or ToolTimeoutException)
        {
            throw new UnavailableException($"Volume {row.Uuid} could not be opened to SSH node {node.Node} (initiator {node.Initiator}): {e.Message}");
        }
    }

    /// <summary>
    /// Withdraws the node's initiator from the volume's export once no mount of the volume on that host is left (a mount
    /// of a staged copy never let it in, so withdrawing is a no-op then). Failures are logged: the mount is gone either way.
    /// </summary>
    async Task RevokeUnlessMountedAsync(VolumeRow row, string host, CancellationToken ct)
    {
        if (row.Sharing == "local") return;
        if ((await store.MountsOfVolumeAsync(row.Uuid)).Any(m => m.Host == host)) return;
        try
        {
            if (await nodeAccess.InitiatorOfAsync(host, ct) is { } initiator)
                await services.VolumeSharing(row.Sharing).RevokeAsync(row.Id, initiator, ct);
        }
        catch (Exception e) when (e is ToolFailedException or ToolTimeoutException or DomainException)
        {
            logger.LogWarning("Volume {Uuid}: the initiator of host {Host} could not be withdrawn from its export: {Error}", row.Uuid, host, e.Message);
        }
    }

    /// <summary>The mount row, after the checks every new mount passes in one write transaction.</summary>
    async Task<long> InsertMountAsync(string uuid, long instanceId, string host, string device, bool readOnly, bool hotPlugged, bool quarantineOnRelease, CancellationToken ct) =>
        await store.Store.WriteAsync(async (c, tx) =>
        {
            var row = await store.GetAsync(uuid, c, tx) ?? throw new NotFoundException($"Volume {uuid}");
            if (row.State != VolumeStates.Ready)
                throw new ConflictException($"Volume {uuid} is {row.State}; only READY volumes can be attached.");
            if (!readOnly && VolumeTypes.IsReadOnly(row.TypeValue))
                throw new ConflictException($"Volume {uuid} is {row.Type}; it can only be mounted read-only.");
            var mounts = await store.MountsOfVolumeAsync(uuid, c, tx);
            if (mounts.FirstOrDefault(m => m.InstanceId == instanceId) is { } same)
                throw new ConflictException($"Volume {uuid} is already attached to instance {instanceId} (device {same.Device}).");
            if (mounts.FirstOrDefault(m => !m.ReadOnly || !readOnly) is { } other)
                throw new ConflictException($"Volume {uuid} is attached {(other.ReadOnly ? "read-only" : "read-write")} to instance {other.InstanceId}: " +
                    "a volume is written by one instance at a time and read by many only while nobody writes it. Detach it first.");
            return await store.InsertMountAsync(c, tx, uuid, instanceId, host, device, readOnly, hotPlugged, quarantineOnRelease);
        }, ct);

    /// <summary>Hot-unplugs a volume from an instance (the guest releases it first) and forgets the mount.</summary>
    public async Task DetachAsync(Caller caller, string uuid, long instanceId, CancellationToken ct)
    {
        var row = await VisibleAsync(caller, uuid);
        var mount = (await store.MountsOfVolumeAsync(uuid)).FirstOrDefault(m => m.InstanceId == instanceId)
            ?? throw new NotFoundException($"A mount of volume {uuid} on instance {instanceId}");
        var instance = await instances.FindAsync(instanceId, ct);
        if (!CanManage(caller, row) && instance?.OwnerId != caller.UserId)
            throw new ForbiddenException($"Only the owner of volume {uuid} or of instance {instanceId} may detach it.");
        using var _ = await LockAsync(uuid, ct);
        await ReleaseAsync(mount, ct);
    }

    async Task ReleaseAsync(MountRow mount, CancellationToken ct)
    {
        if (mount.HotPlugged && mount.Device.Length > 0)
        {
            try
            {
                await hotPlug.DetachAsync(mount.InstanceId, mount.Device, ct);
            }
            catch (Exception e) when (e is not (DomainException or OperationCanceledException))
            {
                throw new UnavailableException($"The hypervisor did not release volume {mount.VolumeUuid} from instance {mount.InstanceId}: {e.Message}. " +
                    "The guest may still use the disk; unmount it inside the guest and retry.");
            }
        }
        await store.DeleteMountAsync(mount.Id);
        if (await store.GetAsync(mount.VolumeUuid) is { } row) await RevokeUnlessMountedAsync(row, mount.Host, ct);
        logger.LogInformation("Volume {Uuid} released by instance {Instance}", mount.VolumeUuid, mount.InstanceId);
    }

    public async Task<VolumeMountSummary> MountAsync(VolumeMountRequest request, CancellationToken ct = default)
    {
        var uuid = request.Uuid.ToString("D");
        if ((await store.GetAsync(uuid))?.Sharing is { } sharing && sharing != "local") await EnsureExportsAsync(held: null, ct);
        using var _ = await LockAsync(uuid, ct);
        var node = request.Staged || await store.GetAsync(uuid) is not { } found ? null : await nodeAccess.ResolveAsync(request.Host, uuid, found.Sharing, ct);
        var mountId = await InsertMountAsync(uuid, request.InstanceId, request.Host, request.Device, request.ReadOnly, hotPlugged: false, request.QuarantineWhenReleased, ct);
        var row = (await store.GetAsync(uuid))!;
        VolumeRow? backing = null;
        if (node is not null)
        {
            try
            {
                await GrantAsync(row, node, ct);
                backing = await MountBackingAsync(row, request.InstanceId, request.Device, request.Host, node, ct);
            }
            catch
            {
                await store.DeleteMountAsync(mountId);
                await RevokeUnlessMountedAsync(row, node.Node, CancellationToken.None);
                throw;
            }
        }
        return SummaryOf(request, row, node, backing);
    }

    VolumeMountSummary SummaryOf(VolumeMountRequest request, VolumeRow row, NodePortal? node, VolumeRow? backing) =>
        new(request.Uuid, request.InstanceId, request.Host, request.Device, request.ReadOnly, false, TurlFor(row, node), row.Format)
        {
            BackingTurl = backing is null ? null : TurlFor(backing, node),
            BackingFormat = backing?.Format,
        };

    static string BackingDevice(string device) => device + "-backing";

    /// <summary>
    /// A qcow2 clone (a LIVE snapshot of a file volume) opened by a node over iSCSI needs its backing volume too: the path
    /// in the clone's header is this machine's, so the node opens the ORIGIN's own export instead, read-only, recorded as a
    /// mount of the instance (device "vda-backing") so its ACL follows the same grant and revoke as every mount. An ORIGIN
    /// still shared 'local' is exported over iSCSI first (it is read-only, and only the image cache's clones stand on it).
    /// Null when the volume stands on nothing. Undoes its own mount when it fails.
    /// </summary>
    async Task<VolumeRow?> MountBackingAsync(VolumeRow row, long instanceId, string device, string host, NodePortal node, CancellationToken ct)
    {
        if (row.OriginUuid is not { } originUuid || row.Format != "qcow2") return null;
        var origin = await store.GetAsync(originUuid) ?? throw new ConflictException($"Volume {row.Uuid} stands on volume {originUuid}, which no longer exists.");
        if (origin.OriginUuid is not null)
            throw new ConflictException($"Volume {row.Uuid} stands on volume {origin.Uuid}, which stands on another volume: SSH node {node.Node} opens a chain of one backing volume only. " +
                "Boot it on a node in 'cache' boot mode or on this machine, or use a flattened copy.");
        if (origin.Sharing == "local")
        {
            using (await LockAsync(origin.Uuid, ct))
                origin = await ExportOverIscsiAsync(origin, ct);
        }
        var existing = (await store.MountsOfInstanceAsync(instanceId)).FirstOrDefault(m => m.VolumeUuid == origin.Uuid && m.Device == BackingDevice(device));
        long? made = null;
        if (existing is null) made = await InsertMountAsync(origin.Uuid, instanceId, host, BackingDevice(device), readOnly: true, hotPlugged: false, quarantineOnRelease: false, ct);
        else if (existing.Host != host) await store.SetMountHostAsync(existing.Id, host);
        try
        {
            var resolved = await nodeAccess.ResolveAsync(host, origin.Uuid, origin.Sharing, ct) ?? node;
            await GrantAsync(origin, resolved, ct);
        }
        catch
        {
            if (made is { } id) await store.DeleteMountAsync(id);
            await RevokeUnlessMountedAsync(origin, node.Node, CancellationToken.None);
            throw;
        }
        if (existing is not null && existing.Host != host) await RevokeUnlessMountedAsync(origin, existing.Host, ct);
        return origin;
    }

    /// <summary>A read-only volume shared 'local' becomes shared 'iscsi' (exported now, and again by the health check).</summary>
    async Task<VolumeRow> ExportOverIscsiAsync(VolumeRow origin, CancellationToken ct)
    {
        var current = await store.GetAsync(origin.Uuid) ?? throw new NotFoundException($"Volume {origin.Uuid}");
        if (current.Sharing != "local") return current;
        if (!VolumeTypes.IsReadOnly(current.TypeValue))
            throw new ConflictException($"Volume {current.Uuid}, which a boot disk stands on, is writable and shared 'local'; SSH nodes open backing volumes over iSCSI only. " +
                "Snapshot a volume shared 'iscsi' instead, or boot on a node in 'cache' boot mode.");
        var sharing = services.VolumeSharing("iscsi");
        await services.VolumeDriver(current.Backend).PrepareBlockExportAsync(current.Location, ct);
        await ShareAsync(sharing, new ShareRequest(current.Id, current.Path, ReadOnly: true), held: current.Uuid, ct);
        await store.SetSharingAsync(current.Uuid, sharing.Name);
        logger.LogInformation("Volume {Uuid} (a backing volume) is now shared over iSCSI, for SSH nodes that boot its clones over iSCSI", current.Uuid);
        return (await store.GetAsync(current.Uuid))!;
    }

    public async Task<VolumeMountSummary> RemountAsync(VolumeMountRequest request, CancellationToken ct = default)
    {
        var uuid = request.Uuid.ToString("D");
        if ((await store.GetAsync(uuid))?.Sharing is { } sharing && sharing != "local") await EnsureExportsAsync(held: null, ct);
        using var _ = await LockAsync(uuid, ct);
        var row = await store.GetAsync(uuid) ?? throw new NotFoundException($"Volume {uuid}");
        var mount = (await store.MountsOfVolumeAsync(uuid)).FirstOrDefault(m => m.InstanceId == request.InstanceId)
            ?? throw new NotFoundException($"A mount of volume {uuid} by instance {request.InstanceId}");
        var node = request.Staged ? null : await nodeAccess.ResolveAsync(request.Host, uuid, row.Sharing, ct);
        if (mount.Host != request.Host)
        {
            // The old host goes first: when it stopped answering, it must not write once the new one opens the disk.
            await store.SetMountHostAsync(mount.Id, request.Host);
            await RevokeUnlessMountedAsync(row, mount.Host, ct);
        }
        VolumeRow? backing = null;
        if (node is not null)
        {
            await GrantAsync(row, node, ct);
            backing = await MountBackingAsync(row, request.InstanceId, mount.Device, request.Host, node, ct);
        }
        else if ((await store.MountsOfInstanceAsync(request.InstanceId)).FirstOrDefault(m => m.Device == BackingDevice(mount.Device)) is { } stale)
        {
            // Opened here or staged now: the backing comes from the clone's header, so the node's backing mount goes.
            await store.DeleteMountAsync(stale.Id);
            if (await store.GetAsync(stale.VolumeUuid) is { } origin) await RevokeUnlessMountedAsync(origin, stale.Host, ct);
        }
        return SummaryOf(request with { Device = mount.Device, ReadOnly = mount.ReadOnly }, row, node, backing);
    }

    public async Task FenceAsync(long instanceId, string host, CancellationToken ct = default)
    {
        if (await nodeAccess.InitiatorOfAsync(host, ct) is not { } initiator) return;
        foreach (var mount in (await store.MountsOfInstanceAsync(instanceId)).Where(m => !m.ReadOnly && m.Host == host))
        {
            if (await store.GetAsync(mount.VolumeUuid) is not { } row || row.Sharing == "local") continue;
            using (await LockAsync(mount.VolumeUuid, ct))
            {
                try { await services.VolumeSharing(row.Sharing).RevokeAsync(row.Id, initiator, ct); }
                catch (Exception e) when (e is ToolFailedException or ToolTimeoutException)
                {
                    throw new UnavailableException($"Volume {row.Uuid} could not be fenced from host {host} (initiator {initiator}): {e.Message}; " +
                        "nothing was moved. Check the iSCSI target service (tgtd) and evacuate again.");
                }
            }
            logger.LogWarning("Volume {Uuid} of instance {Instance}: host {Host} fenced off (initiator {Initiator} out of the ACL, its connections closed)", row.Uuid, instanceId, host, initiator);
        }
    }

    public async Task<IReadOnlyList<VolumeMountSummary>> MountsOfAsync(long instanceId, CancellationToken ct = default)
    {
        var list = new List<VolumeMountSummary>();
        var host = (await instances.FindAsync(instanceId, ct))?.Host;
        foreach (var mount in await store.MountsOfInstanceAsync(instanceId))
        {
            var row = await store.GetAsync(mount.VolumeUuid);
            if (row is null) continue;
            var m = mount;
            // The instance moved (evacuated, or started on another host after a stop): its mounts follow it, and so do the nodes let into the exports.
            // Boot disks (vda, and a node's vda-backing) move with RemountAsync, which knows whether the new host opens them or a copy.
            if (host is { Length: > 0 } && host != m.Host && !m.Device.StartsWith("vda", StringComparison.Ordinal))
            {
                using (await LockAsync(m.VolumeUuid, ct))
                {
                    var node = await nodeAccess.ResolveAsync(host, m.VolumeUuid, row.Sharing, ct);
                    if (node is not null) await GrantAsync(row, node, ct);
                    await store.SetMountHostAsync(m.Id, host);
                    await RevokeUnlessMountedAsync(row, m.Host, ct);
                }
                m = (await store.MountsOfVolumeAsync(m.VolumeUuid)).Single(x => x.Id == m.Id);
            }
            // A volume a node opens itself is reached at the node's address of this machine (a node's staged boot disk is not in here: Compute keeps its own record).
            var turl = row.Sharing != "local" && await nodeAccess.NodeOfAsync(m.Host, ct) is not null
                ? TurlFor(row, await nodeAccess.ResolveAsync(m.Host, m.VolumeUuid, row.Sharing, ct))
                : TurlOf(row);
            list.Add(new VolumeMountSummary(row.Id, m.InstanceId, m.Host, m.Device, m.ReadOnly, m.HotPlugged, turl, row.Format));
        }
        return list;
    }

    public async Task ReleaseMountsAsync(long instanceId, CancellationToken ct = default)
    {
        foreach (var mount in await store.MountsOfInstanceAsync(instanceId))
        {
            using (await LockAsync(mount.VolumeUuid, ct))
            {
                try { await ReleaseAsync(mount, ct); }
                catch (DomainException e)
                {
                    // The VM is gone or going: the mount is released whatever the hypervisor says.
                    logger.LogWarning("Instance {Instance} ended; detaching volume {Uuid} reported: {Error}", instanceId, mount.VolumeUuid, e.Detail);
                    await store.DeleteMountAsync(mount.Id);
                }
            }
            if (mount.QuarantineOnRelease)
            {
                try { await QuarantineAsync(Guid.Parse(mount.VolumeUuid), ct); }
                catch (DomainException e) { logger.LogWarning("Volume {Uuid} of ended instance {Instance} was not quarantined: {Error}", mount.VolumeUuid, instanceId, e.Detail); }
            }
        }
    }

    /// <summary>Mounts of instances that have ended (DONE, FAILED or gone) are stale: release them before acting on the volume.</summary>
    async Task ReleaseEndedMountsAsync(string uuid, CancellationToken ct)
    {
        foreach (var mount in await store.MountsOfVolumeAsync(uuid))
        {
            var instance = await instances.FindAsync(mount.InstanceId, ct);
            if (instance is null || instance.Ended)
                await ReleaseMountsAsync(mount.InstanceId, ct);
        }
    }
}
