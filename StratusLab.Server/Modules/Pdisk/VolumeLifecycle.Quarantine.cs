using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk;

internal sealed partial class VolumeLifecycle
{
    /// <summary>
    /// Keeps a released volume (the LIVE root disk of a finished VM) for Pdisk:QuarantineMinutes: unexported,
    /// not mountable, still counted in its owner's quota, then removed by the quarantine job.
    /// </summary>
    public async Task QuarantineAsync(Guid uuid, CancellationToken ct = default)
    {
        var id = uuid.ToString("D");
        using var _ = await LockAsync(id, ct);
        var now = clock.GetUtcNow();
        // The store keeps milliseconds: both times are cut there, so their difference is exactly the period.
        now = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMillisecond));
        var until = now.AddMinutes(options.QuarantineMinutes);
        var row = await store.Store.WriteAsync(async (c, tx) =>
        {
            var current = await store.GetAsync(id, c, tx) ?? throw new NotFoundException($"Volume {id}");
            if (current.State != VolumeStates.Ready)
                throw new ConflictException($"Volume {id} is {current.State}; only READY volumes go to quarantine.");
            var mounts = await store.MountsOfVolumeAsync(id, c, tx);
            if (mounts.Count > 0) throw MountedConflict(id, mounts, "quarantine it");
            var snapshots = await store.SnapshotsOfAsync(id, c, tx);
            if (snapshots.Count > 0) throw SnapshotsConflict(id, snapshots, "go to quarantine");
            if (!await store.QuarantineAsync(id, now, until, c, tx))
                throw new ConflictException($"Volume {id} stopped being READY; only READY volumes go to quarantine.");
            return current;
        }, ct);
        await SafelyAsync(() => services.VolumeSharing(row.Sharing).UnshareAsync(uuid, CancellationToken.None), $"withdraw the export of quarantined volume {id}");
        logger.LogInformation("Volume {Uuid} in quarantine until {Until:O}", id, until);
    }

    /// <summary>An administrator's release: a quarantined volume is READY again (exported again, mountable), as it was.</summary>
    public async Task ReleaseQuarantineAsync(Guid uuid, CancellationToken ct = default)
    {
        var id = uuid.ToString("D");
        using var _ = await LockAsync(id, ct);
        var row = await store.Store.WriteAsync(async (c, tx) =>
        {
            var current = await store.GetAsync(id, c, tx) ?? throw new NotFoundException($"Volume {id}");
            if (current.State != VolumeStates.Quarantined || !await store.ReleaseQuarantineAsync(id, c, tx))
                throw new ConflictException($"Volume {id} is {current.State}, not in quarantine; only quarantined volumes are released.");
            return current;
        }, ct);
        var sharing = services.VolumeSharing(row.Sharing);
        try { await ShareAsync(sharing, new ShareRequest(row.Id, row.Path, VolumeTypes.IsReadOnly(row.TypeValue)), held: null, ct); }
        catch
        {
            // Not exported again: back to quarantine as it was, rather than a READY volume nobody can mount.
            await store.Store.WriteAsync((c, tx) => store.QuarantineAsync(id, row.QuarantinedAt ?? clock.GetUtcNow(), row.QuarantineUntil ?? clock.GetUtcNow(), c, tx), CancellationToken.None);
            throw;
        }
        logger.LogInformation("Volume {Uuid} released from quarantine", id);
    }

    /// <summary>
    /// An unclaimed clone made for an instance (see <see cref="Jobs.PdiskReconciler"/>) goes to quarantine and is purged at once:
    /// no instance ever mounted it, so it holds nothing to keep; purging gives its quota back and frees its origin.
    /// False when it is no orphan any more (mounted meanwhile, busy, gone) or <paramref name="currentRun"/> made it after <paramref name="cutoff"/>.
    /// </summary>
    public async Task<bool> QuarantineOrphanCloneAsync(string uuid, string currentRun, DateTimeOffset cutoff, CancellationToken ct)
    {
        using (var gate = TryLockNow(uuid))
        {
            if (gate is null) return false; // a mount or deletion is working on it
            var now = clock.GetUtcNow();
            now = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMillisecond));
            var row = await store.Store.WriteAsync(async (c, tx) =>
            {
                var current = await store.GetAsync(uuid, c, tx);
                if (current is not { State: VolumeStates.Ready, PendingMountRun: { } madeBy }) return null;
                if (madeBy == currentRun && current.CreatedAt > cutoff) return null;
                if ((await store.MountsOfVolumeAsync(uuid, c, tx)).Count > 0 || (await store.SnapshotsOfAsync(uuid, c, tx)).Count > 0) return null;
                return await store.QuarantineAsync(uuid, now, now, c, tx) ? current : null;
            }, ct);
            if (row is null) return false;
            await SafelyAsync(() => services.VolumeSharing(row.Sharing).UnshareAsync(row.Id, CancellationToken.None), $"withdraw the export of orphan clone {uuid}");
            logger.LogWarning("Volume {Uuid}, a clone of {Origin} made for an instance of user {Owner} at {Created:O}, was never mounted: quarantined and purged",
                uuid, row.OriginUuid, row.OwnerId, row.CreatedAt);
        }
        await PurgeAsync(uuid, ct);
        return true;
    }

    /// <summary>Removes a quarantined volume now (admins, or the job once its time is up).</summary>
    public async Task PurgeAsync(string uuid, CancellationToken ct)
    {
        using var _ = await LockAsync(uuid, ct);
        var row = await store.Store.WriteAsync(async (c, tx) =>
        {
            var current = await store.GetAsync(uuid, c, tx);
            if (current is null || current.State != VolumeStates.Quarantined)
                throw new NotFoundException($"Quarantined volume {uuid}");
            if (!await store.TransitionAsync(uuid, VolumeStates.Quarantined, VolumeStates.Deleting, c, tx))
                throw new NotFoundException($"Quarantined volume {uuid}");
            return current;
        }, ct);
        await DestroyAsync(row, ct);
    }

    /// <summary>Purges every quarantined volume whose time is up (all of them with <paramref name="all"/>), and retries interrupted deletions.</summary>
    public async Task<IReadOnlyList<string>> PurgeQuarantineAsync(bool all, CancellationToken ct)
    {
        var purged = new List<string>();
        var due = all ? await store.ListAllAsync(VolumeStates.Quarantined) : await store.ExpiredQuarantineAsync(clock.GetUtcNow());
        foreach (var row in due)
        {
            try
            {
                await PurgeAsync(row.Uuid, ct);
                purged.Add(row.Uuid);
            }
            catch (DomainException e) { logger.LogWarning("Purging volume {Uuid} failed: {Error}", row.Uuid, e.Detail); }
        }
        foreach (var row in await store.ListAllAsync(VolumeStates.Deleting))
        {
            using var _ = await LockAsync(row.Uuid, ct);
            // A deletion in progress held the lock: only what is still DELETING after it is retried.
            if ((await store.GetAsync(row.Uuid))?.State != VolumeStates.Deleting) continue;
            try { await DestroyAsync(row, ct); }
            catch (DomainException e) { logger.LogWarning("Removing volume {Uuid} failed again: {Error}", row.Uuid, e.Detail); }
        }
        return purged;
    }
}
