using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Pdisk;

internal sealed partial class VolumeLifecycle
{
    readonly SemaphoreSlim _exportsGate = new(1, 1);

    /// <summary>
    /// The health check of the sharings that export volumes (tgtd for iscsi), run periodically and before every export,
    /// attach and mount of such a volume: the service is started when it is down, and every READY volume the store says
    /// is shared through it but that it does not export (all of them after a restart) is exported again. Volumes another
    /// operation holds right now are left to it (and to the next check); <paramref name="held"/> is one the caller holds.
    /// Throws the sharing's 503 naming the service when it cannot be brought back.
    /// </summary>
    public async Task<IReadOnlyList<string>> EnsureExportsAsync(string? held, CancellationToken ct)
    {
        var ready = (await store.ListAllAsync(VolumeStates.Ready)).Where(r => r.Sharing != "local").ToList();
        var names = ready.Select(r => r.Sharing).Append(options.Sharing).Where(n => n != "local").Distinct().ToList();
        if (names.Count == 0) return [];
        var reexported = new List<string>();
        await _exportsGate.WaitAsync(ct);
        try
        {
            foreach (var name in names)
            {
                var sharing = services.VolumeSharing(name);
                if (await sharing.EnsureRunningAsync(ct))
                    logger.LogWarning("The {Sharing} sharing's service was down and has been restarted; exporting its volumes again", name);
                var exported = (await sharing.ListAsync(OwnsPath, ct)).Select(e => e.Uuid.ToString("D")).ToHashSet(StringComparer.Ordinal);
                foreach (var row in ready.Where(r => r.Sharing == name && !exported.Contains(r.Uuid)))
                {
                    using var gate = row.Uuid == held ? null : TryLockNow(row.Uuid);
                    if (gate is null && row.Uuid != held) continue;
                    // Re-read under the lock: a deletion or quarantine that finished meanwhile withdrew the export on purpose.
                    var current = await store.GetAsync(row.Uuid);
                    if (current is not { State: VolumeStates.Ready } || current.Sharing != name) continue;
                    try
                    {
                        await services.VolumeDriver(current.Backend).PrepareBlockExportAsync(current.Location, ct);
                        await sharing.ShareAsync(new ShareRequest(current.Id, current.Path, VolumeTypes.IsReadOnly(current.TypeValue)), ct);
                        // The SSH nodes that mount it are let in again (a new export names no initiator but the configured ones).
                        foreach (var host in (await store.MountsOfVolumeAsync(current.Uuid)).Select(m => m.Host).Distinct())
                            if (await nodeAccess.InitiatorOfAsync(host, ct) is { } initiator) await sharing.GrantAsync(current.Id, initiator, ct);
                        reexported.Add(current.Uuid);
                    }
                    catch (Exception e) when (e is ToolFailedException or IOException)
                    {
                        logger.LogError("Volume {Uuid} could not be exported again over {Sharing}: {Error}", current.Uuid, name, e.Message);
                    }
                }
            }
        }
        finally
        {
            _exportsGate.Release();
        }
        if (reexported.Count > 0)
            logger.LogWarning("Exported {Count} volume(s) again that their sharing had lost: {Volumes}", reexported.Count, string.Join(", ", reexported));
        return reexported;
    }

    bool OwnsPath(string path) => PdiskModule.Backends.Select(services.VolumeDriver).Any(d => d.Owns(path));
}
