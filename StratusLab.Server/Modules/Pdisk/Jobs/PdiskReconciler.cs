using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk.Jobs;

/// <summary>What one reconciliation pass did and found.</summary>
internal sealed record ReconcileReport(
    IReadOnlyList<string> UndoneCreations,
    IReadOnlyList<string> FinishedDeletions,
    IReadOnlyList<string> RemovedOrphans,
    IReadOnlyList<string> Reexported,
    IReadOnlyList<string> ReleasedMounts,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> OrphanClones);

/// <summary>
/// Makes the host match the store. On start: creations a crash interrupted are undone, deletions finished,
/// files, LVs and iSCSI targets of this server that the store does not know are removed, staged transfers
/// deleted; volumes whose iSCSI target vanished (tgtd restarted) are exported again; mounts of ended
/// instances are released; clones made for instances that no mount claimed (a crash in PROLOG) are quarantined and
/// purged; volumes the store knows but the host lacks are reported (logged and returned).
/// Run later (by an admin), it leaves alone what may be in progress (CREATING rows, staged files, clones of this run
/// younger than Pdisk:UnmountedCloneMinutes).
/// </summary>
internal sealed class PdiskReconciler(
    PdiskStore store,
    VolumeLifecycle volumes,
    IServiceProvider services,
    IInstanceDirectory instances,
    PdiskOptions options,
    PdiskRun run,
    TimeProvider clock,
    ILogger<PdiskReconciler> logger)
{
    static readonly SemaphoreSlim Gate = new(1, 1);

    /// <summary>The periodic part: clones made for instances that no mount claimed in time are quarantined and purged.</summary>
    public async Task<IReadOnlyList<string>> QuarantineOrphanClonesAsync(CancellationToken ct)
    {
        await Gate.WaitAsync(ct);
        try { return await OrphanClonesAsync(ct); }
        finally { Gate.Release(); }
    }

    /// <summary>
    /// A clone made for an instance's boot disk is claimed by the instance's mount in PROLOG, moments later. Unclaimed,
    /// it is an orphan once the run that made it has ended (the PROLOG died with it) or after Pdisk:UnmountedCloneMinutes:
    /// it would count against its owner's storage quota and pin its origin against eviction forever.
    /// </summary>
    async Task<IReadOnlyList<string>> OrphanClonesAsync(CancellationToken ct)
    {
        var cutoff = clock.GetUtcNow().AddMinutes(-options.UnmountedCloneMinutes);
        var orphans = new List<string>();
        foreach (var clone in await store.UnmountedClonesAsync())
        {
            if (clone.PendingMountRun == run.Id && clone.CreatedAt > cutoff) continue;
            await Try(async () =>
            {
                if (await volumes.QuarantineOrphanCloneAsync(clone.Uuid, run.Id, cutoff, ct))
                    orphans.Add($"volume {clone.Uuid} (clone of {clone.OriginUuid} for user {clone.OwnerId}, made {clone.CreatedAt:O}, never mounted)");
            }, $"quarantine the unmounted clone {clone.Uuid}");
        }
        return orphans;
    }

    public async Task<ReconcileReport> ReconcileAsync(bool atStartup, CancellationToken ct)
    {
        await Gate.WaitAsync(ct);
        try { return await PassAsync(atStartup, ct); }
        finally { Gate.Release(); }
    }

    async Task<ReconcileReport> PassAsync(bool atStartup, CancellationToken ct)
    {
        List<string> undone = [], finished = [], orphans = [], reexported = [], released = [], missing = [], orphanClones = [];

        foreach (var row in await store.ListAllAsync())
        {
            if (row.State == VolumeStates.Creating && atStartup)
            {
                await Try(() => volumes.DestroyAsync(row, ct), $"undo the interrupted creation of volume {row.Uuid}");
                undone.Add($"volume {row.Uuid} ({row.Path}): its creation was interrupted");
            }
            else if (row.State == VolumeStates.Deleting)
            {
                await Try(() => volumes.DestroyAsync(row, ct), $"finish deleting volume {row.Uuid}");
                finished.Add($"volume {row.Uuid} ({row.Path})");
            }
        }

        var rows = await store.ListAllAsync();
        var known = rows.Select(r => r.Uuid).ToHashSet(StringComparer.Ordinal);
        var found = new HashSet<string>(StringComparer.Ordinal);
        foreach (var driver in PdiskModule.Backends.Select(services.VolumeDriver))
        {
            IReadOnlyList<StoredItem> items;
            try { items = await driver.ListAsync(ct); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Pdisk reconciliation: cannot list the {Backend} backend: {Error}", driver.Name, e.Message);
                continue;
            }
            foreach (var item in items)
            {
                found.Add(item.Path);
                var ours = item.Uuid is { } uuid && known.Contains(uuid.ToString("D"));
                if (ours || (item.Uuid is null && !atStartup)) continue;
                await Try(() => item.Uuid is null && driver.Name == "file"
                    ? Task.Run(() => File.Delete(item.Path), ct)
                    : driver.RemoveAsync(new VolumeLocation(item.Path, "raw", 0), ct), $"remove {item.Path}");
                orphans.Add($"{driver.Name}: {item.Path}");
            }
        }

        bool Owns(string path) => PdiskModule.Backends.Select(services.VolumeDriver).Any(d => d.Owns(path));
        var exported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sharing in PdiskModule.Sharings.Select(services.VolumeSharing))
        {
            IReadOnlyList<SharedExport> exports;
            try { exports = await sharing.ListAsync(Owns, ct); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Pdisk reconciliation: cannot list {Sharing} exports: {Error}", sharing.Name, e.Message);
                continue;
            }
            foreach (var export in exports)
            {
                var row = rows.FirstOrDefault(r => r.Uuid == export.Uuid.ToString("D"));
                var wanted = row is not null && row.Sharing == sharing.Name && row.State is VolumeStates.Ready or VolumeStates.Creating;
                if (wanted)
                {
                    exported.Add(row!.Uuid);
                    continue;
                }
                await Try(() => sharing.UnshareAsync(export.Uuid, ct), $"remove {export.Description}");
                orphans.Add($"{sharing.Name}: {export.Description} ({export.BackingPath})");
            }
        }

        foreach (var row in rows.Where(r => r.State is VolumeStates.Ready or VolumeStates.Quarantined))
        {
            var driver = services.VolumeDriver(row.Backend);
            var present = driver.Name == "file" ? driver.Exists(row.Location) : found.Contains(row.Path) || driver.Exists(row.Location);
            if (!present)
            {
                missing.Add($"volume {row.Uuid}: {row.Path} is missing on the host");
                logger.LogWarning("Pdisk reconciliation: volume {Uuid} is in the store but {Path} is missing on the host", row.Uuid, row.Path);
                continue;
            }
            if (row.State == VolumeStates.Ready && row.Sharing != "local" && !exported.Contains(row.Uuid))
            {
                await Try(async () =>
                {
                    await driver.PrepareBlockExportAsync(row.Location, ct);
                    await services.VolumeSharing(row.Sharing).ShareAsync(new ShareRequest(row.Id, row.Path, Contracts.VolumeTypes.IsReadOnly(row.TypeValue)), ct);
                    reexported.Add($"volume {row.Uuid} over {row.Sharing}");
                }, $"export volume {row.Uuid} again");
            }
        }

        foreach (var mount in await store.AllMountsAsync())
        {
            var instance = await instances.FindAsync(mount.InstanceId, ct);
            var ended = instance is null || instance.Ended;
            var interrupted = atStartup && mount.HotPlugged && mount.Device.Length == 0;
            if (!ended && !interrupted) continue;
            if (ended) await Try(() => volumes.ReleaseMountsAsync(mount.InstanceId, ct), $"release the mounts of instance {mount.InstanceId}");
            else await store.DeleteMountAsync(mount.Id);
            released.Add($"volume {mount.VolumeUuid} on instance {mount.InstanceId}");
        }

        orphanClones.AddRange(await OrphanClonesAsync(ct));

        var report = new ReconcileReport(undone, finished, orphans, reexported, released, missing, orphanClones);
        if (undone.Count + finished.Count + orphans.Count + reexported.Count + released.Count + orphanClones.Count > 0)
            logger.LogInformation("Pdisk reconciliation: {Undone} creation(s) undone, {Finished} deletion(s) finished, {Orphans} orphan(s) removed, " +
                "{Reexported} export(s) made again, {Released} mount(s) released, {Missing} volume(s) missing, {OrphanClones} unmounted clone(s) quarantined",
                undone.Count, finished.Count, orphans.Count, reexported.Count, released.Count, missing.Count, orphanClones.Count);
        return report;
    }

    async Task Try(Func<Task> action, string what)
    {
        try { await action(); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError("Pdisk reconciliation could not {What}: {Error}", what, e.Message);
        }
    }
}

/// <summary>Runs the start-up reconciliation before the server takes requests.</summary>
internal sealed class PdiskStartup(PdiskReconciler reconciler, ILogger<PdiskStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        try { await reconciler.ReconcileAsync(atStartup: true, ct); }
        catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Pdisk start-up reconciliation failed"); }
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
