using System.Collections.Concurrent;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Transfers;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>
/// What a new volume is, apart from its data. <paramref name="ForInstance"/>: a clone made for an instance's boot disk,
/// an orphan if no mount claims it (see <see cref="PdiskStore.UnmountedClonesAsync"/>).
/// </summary>
internal sealed record VolumeSpec(long OwnerId, VolumeType Type, string Visibility, IReadOnlyList<long> Groups, string? Tag, string? Identifier, string Sharing,
    bool ForInstance = false);

/// <summary>This run of the server (a new id at every start): clones it made and did not mount yet are not orphans.</summary>
internal sealed record PdiskRun(string Id);

/// <summary>
/// Volumes through their lifecycle: CREATING (row first, then the data, then the export) → READY → QUARANTINED →
/// DELETING → gone. Every multi-step operation undoes its steps on failure; one lock per volume serializes
/// the operations on it, and the store's write transactions make the checks (mounts, snapshots) atomic.
/// </summary>
internal sealed partial class VolumeLifecycle(
    PdiskStore store,
    IServiceProvider services,
    PdiskPaths paths,
    IQuotaLedger quotas,
    IUserDirectory users,
    IInstanceHotPlug hotPlug,
    IInstanceDirectory instances,
    NodeAccess nodeAccess,
    QemuImg qemuImg,
    HttpDownloader downloader,
    PdiskOptions options,
    PdiskRun run,
    TimeProvider clock,
    ILogger<VolumeLifecycle> logger) : IVolumes
{
    public const long GiB = 1L << 30;

    readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new();
    // Volumes whose creation is in progress; a CREATING row not in here was left by a failure whose undo failed too (disk full).
    readonly ConcurrentDictionary<string, byte> _creating = new();

    /// <summary>The storage quota a volume of this many bytes takes, in whole GiB.</summary>
    public static long QuotaGibOf(long bytes) => (bytes + GiB - 1) / GiB;

    async Task<IDisposable> LockAsync(string uuid, CancellationToken ct)
    {
        var gate = _locks.GetOrAdd(uuid, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        return new Releaser(gate);
    }

    /// <summary>The volume's lock if nobody holds it now, else null (for background work that must not wait behind an operation).</summary>
    IDisposable? TryLockNow(string uuid)
    {
        var gate = _locks.GetOrAdd(uuid, _ => new SemaphoreSlim(1, 1));
        return gate.Wait(0) ? new Releaser(gate) : null;
    }

    sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        int _released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) gate.Release();
        }
    }

    // ---- access --------------------------------------------------------------------------------------

    /// <summary>Owners and admins always; everyone when public; members of the volume's groups.</summary>
    public static bool CanSee(Caller caller, VolumeRow row) =>
        AccessRules.CanSee(caller, OwnershipOf(row)) || row.Groups.Any(caller.InGroup);

    /// <summary>Only owners and admins change, delete, rebase or write a volume.</summary>
    public static bool CanManage(Caller caller, VolumeRow row) => AccessRules.Can(caller, OwnershipOf(row), Operation.Manage);

    static Ownership OwnershipOf(VolumeRow row) =>
        new(row.OwnerId, -1, row.Visibility == "public" ? Permissions.Public : Permissions.Private);

    public async Task<VolumeRow> VisibleAsync(Caller caller, string uuid)
    {
        var row = await store.GetAsync(uuid);
        if (row is null || !CanSee(caller, row)) throw new NotFoundException($"Volume {uuid}");
        return row;
    }

    public async Task<VolumeRow> ManageableAsync(Caller caller, string uuid)
    {
        var row = await VisibleAsync(caller, uuid);
        if (!CanManage(caller, row))
            throw new ForbiddenException($"Volume {uuid} is someone else's {row.Visibility} volume: you may read it, but only its owner or an administrator may change it.");
        return row;
    }

    async Task<Caller> CallerOfAsync(long userId)
    {
        var user = await users.FindAsync(userId) ?? throw new NotFoundException($"User {userId}");
        return new Caller(user.Id, user.Name, user.Role == IdentityClaims.AdminRole, user.PrimaryGroupId, []);
    }

    // ---- views for other modules -----------------------------------------------------------------------

    public string TurlOf(VolumeRow row) => services.VolumeSharing(row.Sharing).TurlOf(row.Id, row.Path);

    VolumeSummary Summarize(VolumeRow row) => new(row.Id, row.OwnerId, row.TypeValue, row.State, row.SizeBytes, row.Format, row.Path,
        TurlOf(row), row.OriginUuid is null ? null : Guid.Parse(row.OriginUuid), row.Identifier, row.Tag);

    public async Task<VolumeSummary?> FindAsync(Guid uuid, CancellationToken ct = default) =>
        await store.GetAsync(uuid.ToString("D")) is { } row ? Summarize(row) : null;

    public async Task<VolumeSummary?> FindByIdentifierAsync(string identifier, CancellationToken ct = default) =>
        await store.FindByIdentifierAsync(identifier) is { } row ? Summarize(row) : null;

    // ---- provisioning ----------------------------------------------------------------------------------

    /// <summary>
    /// The common steps of every new volume, each undone if a later one fails: quota, row (CREATING), data
    /// (<paramref name="make"/>), export, READY. <paramref name="plan"/> gives the location before it exists.
    /// </summary>
    async Task<VolumeRow> ProvisionAsync(VolumeSpec spec, long sizeBytes, string? sha1, string? originUuid,
        Func<Guid, VolumeLocation> plan, Func<Guid, CancellationToken, Task<VolumeLocation>> make, CancellationToken ct)
    {
        var uuid = Guid.NewGuid();
        var id = uuid.ToString("D");
        var driver = services.VolumeDriver(originUuid is null ? options.Backend : (await store.GetAsync(originUuid))!.Backend);
        var sharing = services.VolumeSharing(spec.Sharing);
        var quotaGib = QuotaGibOf(sizeBytes);
        // Declared before the undo stack, so the volume counts as being created until its undo has run.
        using var creating = Creating(id);
        await using var undo = new UndoStack(logger);

        var planned = plan(uuid);
        var now = clock.GetUtcNow();
        // The quota is taken in the transaction that writes the row, and given back in the one that removes it: a crash keeps both or neither.
        await store.Store.WriteAsync(async (c, tx) =>
        {
            await quotas.ReserveAsync(tx, spec.OwnerId, new ResourceAmount(0, 0, 0, quotaGib));
            if (spec.Identifier is { } identifier && !identifier.StartsWith("snapshot:", StringComparison.Ordinal)
                && await store.FindByIdentifierAsync(identifier, c, tx) is { } taken)
                throw IdentifierTaken(identifier, taken.Uuid);
            if (originUuid is not null && (await store.GetAsync(originUuid, c, tx))?.State != VolumeStates.Ready)
                throw new ConflictException($"Volume {originUuid} is no longer READY (it is being deleted or in quarantine); it cannot be snapshotted.");
            await store.InsertAsync(c, tx, new VolumeRow
            {
                Uuid = id, OwnerId = spec.OwnerId, GroupsJson = PdiskStore.GroupsJsonOf(spec.Groups), Visibility = spec.Visibility, Tag = spec.Tag,
                SizeBytes = sizeBytes, QuotaGib = quotaGib, Identifier = spec.Identifier, Type = VolumeTypes.Name(spec.Type), State = VolumeStates.Creating,
                Backend = driver.Name, Format = planned.Format, Path = planned.Path, OriginUuid = originUuid, Sharing = sharing.Name, Sha1 = sha1,
                PendingMountRun = spec.ForInstance ? run.Id : null, CreatedAt = now, UpdatedAt = now,
            });
        }, ct);
        undo.Add("delete the volume row and give the storage quota back", () => DeleteRowAsync(id, spec.OwnerId, quotaGib, CancellationToken.None));

        VolumeLocation location;
        try
        {
            location = await make(uuid, ct);
        }
        catch (Exception e)
        {
            // The driver may have made part of it (an LV without data): remove whatever is there.
            await SafelyAsync(() => driver.RemoveAsync(planned, CancellationToken.None), $"remove the partial volume {planned.Path}");
            if (e is ToolFailedException or IOException) throw BackendFailed(driver.Name, "make the volume", e);
            throw;
        }
        undo.Add("remove the volume's data", () => driver.RemoveAsync(location, CancellationToken.None));

        if (sharing.Name != "local")
        {
            try { await driver.PrepareBlockExportAsync(location, ct); }
            catch (IOException e) { throw BackendFailed(driver.Name, "prepare the volume for export", e); }
            await ShareAsync(sharing, new ShareRequest(uuid, location.Path, VolumeTypes.IsReadOnly(spec.Type)), held: originUuid, ct);
            undo.Add("withdraw the export", () => sharing.UnshareAsync(uuid, CancellationToken.None));
        }

        if (!await store.MarkReadyAsync(id, location))
            throw new ConflictException($"Volume {id} stopped being CREATING while it was made (removed by reconciliation?); nothing was kept.");
        undo.Commit();
        logger.LogInformation("Volume {Uuid} created: {Type}, {Bytes} bytes, {Backend} {Format} at {Path}, shared {Sharing}",
            id, spec.Type, location.SizeBytes, driver.Name, location.Format, location.Path, sharing.Name);
        return (await store.GetAsync(id))!;
    }

    IDisposable Creating(string uuid)
    {
        _creating[uuid] = 0;
        return new CreationScope(_creating, uuid);
    }

    sealed class CreationScope(ConcurrentDictionary<string, byte> creating, string uuid) : IDisposable
    {
        public void Dispose() => creating.TryRemove(uuid, out _);
    }

    /// <summary>
    /// Removes volumes left CREATING by a failed creation whose undo failed too (the store refused writes: disk full): their
    /// data, row and quota go as at start-up reconciliation. Creations in progress are left alone. Returns the volumes removed.
    /// </summary>
    public async Task<IReadOnlyList<string>> FinishStrandedCreationsAsync(CancellationToken ct)
    {
        var removed = new List<string>();
        foreach (var row in await store.ListAllAsync(VolumeStates.Creating))
        {
            if (_creating.ContainsKey(row.Uuid)) continue;
            using var _ = await LockAsync(row.Uuid, ct);
            if (_creating.ContainsKey(row.Uuid) || (await store.GetAsync(row.Uuid))?.State != VolumeStates.Creating) continue;
            try
            {
                await DestroyAsync(row, ct);
                removed.Add(row.Uuid);
                logger.LogWarning("Volume {Uuid} was left CREATING by a failed creation whose undo failed; removed now", row.Uuid);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Removing volume {Uuid}, left CREATING by a failed creation, failed again: {Error}", row.Uuid, e.Message);
            }
        }
        return removed;
    }

    /// <summary>
    /// Exports a volume, after making sure the sharing's service runs and holds every other export it should (a restarted
    /// tgtd has none). <paramref name="held"/> is a volume whose lock the caller holds.
    /// </summary>
    async Task ShareAsync(IVolumeSharing sharing, ShareRequest share, string? held, CancellationToken ct)
    {
        await EnsureExportsAsync(held, ct);
        try { await sharing.ShareAsync(share, ct); }
        catch (ToolFailedException e) { throw new DomainException(Rejection.Unavailable, $"Exporting the volume over {sharing.Name} failed: {e.Message}", "sharing"); }
    }

    static UnavailableException BackendFailed(string backend, string what, Exception e) =>
        new($"The {backend} backend could not {what}: {e.Message}");

    static ConflictException IdentifierTaken(string identifier, string uuid)
    {
        var error = new ConflictException($"The identifier '{identifier}' already belongs to volume {uuid}; use that volume (snapshot it), or delete it first.");
        error.Extensions["volume"] = uuid;
        return error;
    }

    async Task SafelyAsync(Func<Task> action, string what)
    {
        try { await action(); }
        catch (Exception e) { logger.LogError(e, "Could not {What}; reconciliation on the next start removes it", what); }
    }

    /// <summary>A new empty volume of <paramref name="sizeBytes"/>.</summary>
    public async Task<VolumeRow> CreateEmptyAsync(VolumeSpec spec, long sizeBytes, CancellationToken ct)
    {
        var driver = services.VolumeDriver(options.Backend);
        return await ProvisionAsync(spec, sizeBytes, null, null, uuid => driver.LocationOf(uuid, sizeBytes), (uuid, t) => driver.CreateAsync(uuid, sizeBytes, t), ct);
    }

    /// <summary>Other modules snapshot for an instance's boot disk: the clone is an orphan until the instance's mount claims it.</summary>
    public async Task<VolumeSummary> CreateSnapshotAsync(Guid originUuid, long ownerId, string? tag = null, string? sharing = null, CancellationToken ct = default) =>
        Summarize(await SnapshotAsync(await CallerOfAsync(ownerId), originUuid.ToString("D"), tag, sharing, ct, forInstance: true));

    /// <summary>A LIVE copy-on-write snapshot of an ORIGIN the caller can see, owned by the caller.</summary>
    public async Task<VolumeRow> SnapshotAsync(Caller caller, string originUuid, string? tag, string? sharing, CancellationToken ct, bool forInstance = false)
    {
        var origin = await VisibleAsync(caller, originUuid);
        if (!VolumeTypes.IsOrigin(origin.TypeValue))
            throw new InvalidInputException("uuid", $"Volume {originUuid} is {origin.Type}: only MACHINE_IMAGE_ORIGIN and DATA_IMAGE_ORIGIN volumes can be snapshotted. " +
                (VolumeTypes.IsLive(origin.TypeValue) ? "Rebase it first to make it an ORIGIN." : "Change its type to an ORIGIN type first (update-volume --type)."), unprocessable: true);
        using var _ = await LockAsync(originUuid, ct);
        origin = (await store.GetAsync(originUuid))!;
        if (origin.State != VolumeStates.Ready)
            throw new ConflictException($"Volume {originUuid} is {origin.State}; only READY volumes can be snapshotted.");
        var driver = services.VolumeDriver(origin.Backend);
        var spec = new VolumeSpec(caller.UserId, VolumeTypes.LiveOf(origin.TypeValue), "private", [], tag, "snapshot:" + originUuid, sharing ?? origin.Sharing, forInstance);
        var snapshotFormat = driver.Name == "file" ? "qcow2" : "raw";
        return await ProvisionAsync(spec, origin.SizeBytes, null, originUuid,
            uuid => driver.LocationOf(uuid, origin.SizeBytes, snapshotFormat),
            (uuid, t) => driver.SnapshotAsync(uuid, origin.Location, t), ct);
    }

    // ---- changes ---------------------------------------------------------------------------------------

    /// <summary>Tag, visibility, groups, identifier and (between non-LIVE types, when not mounted) type.</summary>
    public async Task<VolumeRow> UpdateAsync(Caller caller, string uuid, string? tag, string? visibility, IReadOnlyList<long>? groups,
        VolumeType? type, string? identifier, CancellationToken ct)
    {
        await ManageableAsync(caller, uuid);
        using var _ = await LockAsync(uuid, ct);
        var row = await store.GetAsync(uuid) ?? throw new NotFoundException($"Volume {uuid}");
        var readOnlyBefore = VolumeTypes.IsReadOnly(row.TypeValue);
        await store.Store.WriteAsync(async (c, tx) =>
        {
            if (type is { } t && t != row.TypeValue)
            {
                if (VolumeTypes.IsLive(t) || VolumeTypes.IsLive(row.TypeValue))
                    throw new InvalidInputException("type", $"Volume {uuid} cannot become {VolumeTypes.Name(t)}: LIVE volumes are made by snapshotting an ORIGIN, and a LIVE volume becomes an ORIGIN by rebase.", unprocessable: true);
                var mounts = await store.MountsOfVolumeAsync(uuid, c, tx);
                if (mounts.Count > 0) throw MountedConflict(uuid, mounts, "change its type");
                if (VolumeTypes.IsOrigin(row.TypeValue) && !VolumeTypes.IsOrigin(t) && await store.SnapshotsOfAsync(uuid, c, tx) is { Count: > 0 } snapshots)
                    throw SnapshotsConflict(uuid, snapshots, "stop being an ORIGIN");
            }
            if (identifier is not null && identifier != row.Identifier && await store.FindByIdentifierAsync(identifier, c, tx) is { } taken)
                throw IdentifierTaken(identifier, taken.Uuid);
            if (!await store.UpdateAttributesAsync(uuid, tag, visibility, groups, type, identifier, c, tx)) throw new NotFoundException($"Volume {uuid}");
        }, ct);
        var updated = (await store.GetAsync(uuid))!;
        if (VolumeTypes.IsReadOnly(updated.TypeValue) != readOnlyBefore && updated.State == VolumeStates.Ready)
            await services.VolumeSharing(updated.Sharing).SetReadOnlyAsync(updated.Id, VolumeTypes.IsReadOnly(updated.TypeValue), ct);
        return updated;
    }

    /// <summary>Makes a LIVE volume independent of its origin: it becomes the matching ORIGIN type.</summary>
    public async Task<VolumeRow> RebaseAsync(Caller caller, string uuid, CancellationToken ct)
    {
        await ManageableAsync(caller, uuid);
        using var _ = await LockAsync(uuid, ct);
        var row = await store.GetAsync(uuid) ?? throw new NotFoundException($"Volume {uuid}");
        if (!VolumeTypes.IsLive(row.TypeValue))
            throw new InvalidInputException("uuid", $"Volume {uuid} is {row.Type}: only LIVE volumes (snapshots) can be rebased; it is already independent.", unprocessable: true);
        if (row.State != VolumeStates.Ready) throw new ConflictException($"Volume {uuid} is {row.State}; only READY volumes can be rebased.");
        var mounts = await store.MountsOfVolumeAsync(uuid);
        if (mounts.Count > 0) throw MountedConflict(uuid, mounts, "rebase it");

        var driver = services.VolumeDriver(row.Backend);
        var sharing = services.VolumeSharing(row.Sharing);
        var newType = VolumeTypes.OriginOf(row.TypeValue);
        // The export is withdrawn while the data moves, and made again (read-only: it is an ORIGIN now) afterwards.
        await sharing.UnshareAsync(row.Id, ct);
        var location = row.Location;
        try
        {
            location = await driver.FlattenAsync(row.Id, row.Location, ct);
            if (!await store.MarkRebasedAsync(uuid, newType, location))
                throw new ConflictException($"Volume {uuid} stopped being READY while it was rebased.");
        }
        catch (ToolFailedException e)
        {
            throw BackendFailed(driver.Name, "rebase the volume", e);
        }
        finally
        {
            if (sharing.Name != "local")
            {
                await driver.PrepareBlockExportAsync(location, CancellationToken.None);
                var current = (await store.GetAsync(uuid))!;
                await ShareAsync(sharing, new ShareRequest(row.Id, location.Path, VolumeTypes.IsReadOnly(current.TypeValue)), held: uuid, CancellationToken.None);
            }
        }
        logger.LogInformation("Volume {Uuid} rebased: now an independent {Type}", uuid, newType);
        return (await store.GetAsync(uuid))!;
    }

    // ---- removal -----------------------------------------------------------------------------------

    public Task DeleteAsync(Guid uuid, CancellationToken ct = default) => DeleteAsync(uuid.ToString("D"), allowQuarantined: false, ct);

    /// <summary>Removes a volume now; 409 (naming them) while it has mounts or snapshots.</summary>
    public async Task DeleteAsync(string uuid, bool allowQuarantined, CancellationToken ct)
    {
        var row = await store.GetAsync(uuid) ?? throw new NotFoundException($"Volume {uuid}");
        await ReleaseEndedMountsAsync(uuid, ct);
        using (await LockAsync(uuid, ct))
        {
            row = await store.Store.WriteAsync(async (c, tx) =>
            {
                var current = await store.GetAsync(uuid, c, tx) ?? throw new NotFoundException($"Volume {uuid}");
                switch (current.State)
                {
                    case VolumeStates.Creating:
                        throw new ConflictException($"Volume {uuid} is still being created; delete it once it is READY.");
                    case VolumeStates.Quarantined when !allowQuarantined:
                        throw new ConflictException($"Volume {uuid} is in quarantine until {current.QuarantineUntil:O} and is removed then; an administrator can purge it now (DELETE /api/v1/volumes/quarantine/{uuid}).");
                }
                var mounts = await store.MountsOfVolumeAsync(uuid, c, tx);
                if (mounts.Count > 0) throw MountedConflict(uuid, mounts, "delete it");
                var snapshots = await store.SnapshotsOfAsync(uuid, c, tx);
                if (snapshots.Count > 0) throw SnapshotsConflict(uuid, snapshots, "be deleted");
                if (!await store.TransitionAsync(uuid, current.State, VolumeStates.Deleting, c, tx))
                    throw new ConflictException($"Volume {uuid} changed state while it was being deleted; try again.");
                return current;
            }, ct);
            await DestroyAsync(row, ct);
        }
    }

    /// <summary>Withdraws the export, removes the data and the row, gives the quota back. On failure the row stays DELETING and is retried.</summary>
    internal async Task DestroyAsync(VolumeRow row, CancellationToken ct)
    {
        try
        {
            await services.VolumeSharing(row.Sharing).UnshareAsync(row.Id, ct);
            await services.VolumeDriver(row.Backend).RemoveAsync(row.Location, ct);
        }
        catch (Exception e) when (e is ToolFailedException or IOException)
        {
            logger.LogError("Removing volume {Uuid} failed ({Error}); it stays DELETING and removal is retried", row.Uuid, e.Message);
            throw new UnavailableException($"Volume {row.Uuid} could not be removed from the host ({e.Message}); it is marked DELETING and removal is retried every minute.");
        }
        await DeleteRowAsync(row.Uuid, row.OwnerId, row.QuotaGib, CancellationToken.None);
        _locks.TryRemove(row.Uuid, out _);
        logger.LogInformation("Volume {Uuid} removed ({Path})", row.Uuid, row.Path);
    }

    /// <summary>Removes the row (and its mounts) and gives its storage quota back in one transaction; a row already gone gives nothing back.</summary>
    Task DeleteRowAsync(string uuid, long ownerId, long quotaGib, CancellationToken ct) =>
        store.Store.WriteAsync(async (c, tx) =>
        {
            if (await store.DeleteAsync(uuid, c, tx) == 1 && quotaGib > 0)
                await quotas.ReleaseAsync(tx, ownerId, new ResourceAmount(0, 0, 0, quotaGib));
        }, ct);

    static ConflictException MountedConflict(string uuid, IReadOnlyList<MountRow> mounts, string action)
    {
        var list = string.Join(", ", mounts.Select(m => $"instance {m.InstanceId} (device {(m.Device.Length == 0 ? "being attached" : m.Device)} on {m.Host})"));
        var error = new ConflictException($"Volume {uuid} is mounted by {list}; detach it first (stratuslab detach-volume -i <instance> {uuid}) to {action}.");
        error.Extensions["mounts"] = mounts.Select(m => new { instanceId = m.InstanceId, device = m.Device, host = m.Host }).ToList();
        return error;
    }

    static ConflictException SnapshotsConflict(string uuid, IReadOnlyList<string> snapshots, string action)
    {
        var error = new ConflictException($"Volume {uuid} is the origin of {snapshots.Count} snapshot(s): {string.Join(", ", snapshots)}; " +
            $"delete or rebase them first for it to {action}.");
        error.Extensions["snapshots"] = snapshots;
        return error;
    }
}
