using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
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
        var mountId = await InsertMountAsync(uuid, instanceId, instance.Host ?? Environment.MachineName, "", ro, hotPlugged: true, quarantineOnRelease: false, ct);
        try
        {
            row = (await store.GetAsync(uuid))!;
            var disk = new DiskAttachment(TurlOf(row), row.Format, ro);
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
            if (e is DomainException or OperationCanceledException) throw;
            throw new UnavailableException($"The hypervisor could not attach volume {uuid} to instance {instanceId}: {e.Message}");
        }
        return (await store.MountsOfVolumeAsync(uuid)).Single(m => m.Id == mountId);
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
        logger.LogInformation("Volume {Uuid} released by instance {Instance}", mount.VolumeUuid, mount.InstanceId);
    }

    public async Task<VolumeMountSummary> MountAsync(VolumeMountRequest request, CancellationToken ct = default)
    {
        var uuid = request.Uuid.ToString("D");
        if ((await store.GetAsync(uuid))?.Sharing is { } sharing && sharing != "local") await EnsureExportsAsync(held: null, ct);
        using var _ = await LockAsync(uuid, ct);
        await InsertMountAsync(uuid, request.InstanceId, request.Host, request.Device, request.ReadOnly, hotPlugged: false, request.QuarantineWhenReleased, ct);
        var row = (await store.GetAsync(uuid))!;
        return new VolumeMountSummary(request.Uuid, request.InstanceId, request.Host, request.Device, request.ReadOnly, false, TurlOf(row), row.Format);
    }

    public async Task<IReadOnlyList<VolumeMountSummary>> MountsOfAsync(long instanceId, CancellationToken ct = default)
    {
        var list = new List<VolumeMountSummary>();
        foreach (var m in await store.MountsOfInstanceAsync(instanceId))
        {
            var row = await store.GetAsync(m.VolumeUuid);
            if (row is null) continue;
            list.Add(new VolumeMountSummary(row.Id, m.InstanceId, m.Host, m.Device, m.ReadOnly, m.HotPlugged, TurlOf(row), row.Format));
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
