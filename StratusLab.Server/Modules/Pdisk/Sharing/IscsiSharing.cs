using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk.Sharing;

/// <summary>
/// One tgt target per volume, named iqn.2011-01.eu.stratuslab:&lt;uuid&gt;, LUN 1 backed by the volume's file or LV,
/// bound to the initiator addresses of the cloud's hosts (Pdisk:Iscsi:Initiators). tgtd is started when it is not
/// running; targets ids are the lowest free ones, taken under a process-wide lock and retried when another
/// process took the same id first.
/// </summary>
internal sealed class IscsiSharing(ICommandRunner runner, PdiskOptions options, ILogger<IscsiSharing> logger) : IVolumeSharing
{
    // One lock for every server in the process (tests run several): tid allocation is read-then-create.
    static readonly SemaphoreSlim Gate = new(1, 1);

    public string Name => "iscsi";

    string Portal => options.Iscsi.PortalAddress;
    int Port => options.Iscsi.Port;

    IReadOnlyList<string> Initiators => options.Iscsi.Initiators.Count > 0 ? options.Iscsi.Initiators : [Portal];

    public string TurlOf(Guid uuid, string path) => TgtAdm.Turl(Portal, Port, uuid);

    public string TurlAt(Guid uuid, string portalAddress) => TgtAdm.Turl(portalAddress, Port, uuid);

    // A control port other than tgt's default lets this server drive its own tgtd beside another one (tgtadm -C N talks to tgtd -C N).
    IReadOnlyList<string> ControlArguments => options.Iscsi.ControlPort > 0 ? TgtAdm.ControlPort(options.Iscsi.ControlPort) : [];

    Task<ToolResult> TgtAdmAsync(IReadOnlyList<string> args, CancellationToken ct) =>
        runner.RunAsync(new ToolCommand(TgtAdm.Tool, [.. ControlArguments, .. args]) { Timeout = TimeSpan.FromSeconds(30) }, ct);

    /// <summary>The targets tgtd has, or null when tgtd is not running.</summary>
    async Task<IReadOnlyList<TgtTarget>?> ShowAsync(CancellationToken ct)
    {
        try
        {
            return TgtAdm.ParseTargets((await TgtAdmAsync(TgtAdm.ShowTargets(), ct)).StandardOutput);
        }
        catch (ToolFailedException e) when (TgtAdm.IsDaemonDown(e.StandardError))
        {
            return null;
        }
    }

    /// <summary>
    /// The targets of a running tgtd, and whether it had to be started for them. tgtd daemonizes; a second one exits at
    /// once, so a race with another starter is harmless. 503 naming the iSCSI target service when it cannot run.
    /// </summary>
    async Task<(IReadOnlyList<TgtTarget> Targets, bool Started)> EnsureDaemonAsync(CancellationToken ct)
    {
        var (targets, started) = await EnsureStartedAsync(ct);
        await EnsurePortalsAsync(ct);
        return (targets, started);
    }

    /// <summary>
    /// Every address of Pdisk:Iscsi:ListenAddresses is a portal of tgtd (added to a running tgtd too, which needs no
    /// restart). Failing to add one is the host's fault: a 503 naming the address.
    /// </summary>
    async Task EnsurePortalsAsync(CancellationToken ct)
    {
        if (options.Iscsi.ListenAddresses.Count == 0) return;
        var portals = TgtAdm.ParsePortals((await TgtAdmAsync(TgtAdm.ShowPortals(), ct)).StandardOutput);
        foreach (var address in options.Iscsi.ListenAddresses)
        {
            var portal = TgtAdm.Portal(address, Port);
            if (portals.Contains(portal, StringComparer.Ordinal)) continue;
            try
            {
                await TgtAdmAsync(TgtAdm.NewPortal(address, Port), ct);
                logger.LogInformation("tgtd listens on {Portal} too (Pdisk:Iscsi:ListenAddresses)", portal);
            }
            catch (ToolFailedException e) when (!TgtAdm.IsAlreadyExists(e.StandardError))
            {
                throw ServiceDown($"tgtd could not listen on {portal} (Pdisk:Iscsi:ListenAddresses): {e.StandardError.Trim()}. Check that the address is one of this machine's");
            }
        }
    }

    async Task<(IReadOnlyList<TgtTarget> Targets, bool Started)> EnsureStartedAsync(CancellationToken ct)
    {
        if (await ShowAsync(ct) is { } targets) return (targets, false);
        if (!options.Iscsi.StartTgtd)
            throw ServiceDown("tgtd is not running and Pdisk:Iscsi:StartTgtd is false, so the server may not start it; start it (systemctl start tgt)");
        logger.LogWarning("The iSCSI target service (tgtd) is not running; starting it on portal {Portal}:{Port}", Portal, Port);
        string? failure = null;
        try
        {
            await runner.RunAsync(new ToolCommand(TgtAdm.Daemon, [.. ControlArguments, .. TgtAdm.StartDaemon(Portal, Port)]) { Timeout = TimeSpan.FromSeconds(20) }, ct);
        }
        catch (ToolFailedException e)
        {
            failure = e.Message;
            logger.LogWarning("tgtd did not start ({Error}); waiting in case another process started it", e.Message);
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (await ShowAsync(ct) is { } started) return (started, true);
            await Task.Delay(100, ct);
        }
        throw ServiceDown($"tgtd is down and could not be restarted{(failure is null ? "" : $" ({failure})")}. Check that the tgt package is installed, " +
            "that the server runs as root and that nothing else holds the portal; meanwhile use sharing 'local'");
    }

    /// <summary>503: the iSCSI target service is down (the host's fault, not the request's).</summary>
    static UnavailableException ServiceDown(string reason)
    {
        var error = new UnavailableException($"The iSCSI target service (tgtd) is not available: {reason}. " +
            "Volumes shared over iSCSI cannot be exported or attached until it runs again; the server checks it periodically and then exports every such volume again.")
        {
            Title = "iSCSI target service unavailable",
        };
        error.Extensions["service"] = "tgtd";
        return error;
    }

    static DomainException Unavailable(string detail) => new(Rejection.Unavailable, "iSCSI sharing is not available: " + detail, "sharing");

    public async Task<bool> EnsureRunningAsync(CancellationToken ct)
    {
        await Gate.WaitAsync(ct);
        try { return (await EnsureDaemonAsync(ct)).Started; }
        finally { Gate.Release(); }
    }

    public async Task ShareAsync(ShareRequest share, CancellationToken ct)
    {
        var iqn = TgtAdm.IqnOf(share.Uuid);
        await Gate.WaitAsync(ct);
        try
        {
            var (targets, _) = await EnsureDaemonAsync(ct);
            var existing = targets.FirstOrDefault(t => t.Name == iqn);
            if (existing is not null)
            {
                if (existing.BackingPath == share.Path && existing.Luns.Any(l => l.Lun == TgtAdm.DataLun && l.ReadOnly == share.ReadOnly)) return;
                await DeleteAsync(existing.Tid, ct);
                targets = targets.Where(t => t.Tid != existing.Tid).ToList();
            }
            var tid = await CreateTargetAsync(iqn, targets, ct);
            try
            {
                await TgtAdmAsync(TgtAdm.NewLun(tid, share.Path), ct);
                if (share.ReadOnly) await TgtAdmAsync(TgtAdm.SetReadOnly(tid, true), ct);
                foreach (var (name, value) in TgtAdm.ThroughputParameters) await TgtAdmAsync(TgtAdm.SetParameter(tid, name, value), ct);
                foreach (var initiator in Initiators) await TgtAdmAsync(TgtAdm.Bind(tid, initiator), ct);
            }
            catch
            {
                await DeleteAsync(tid, CancellationToken.None);
                throw;
            }
            logger.LogInformation("Volume {Uuid} exported as iSCSI target {Tid} {Iqn} from {Path}", share.Uuid, tid, iqn, share.Path);
        }
        finally
        {
            Gate.Release();
        }
    }

    async Task<int> CreateTargetAsync(string iqn, IReadOnlyList<TgtTarget> targets, CancellationToken ct)
    {
        var tried = new List<int>();
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var tid = TgtAdm.LowestFreeTid(targets, tried);
            try
            {
                await TgtAdmAsync(TgtAdm.NewTarget(tid, iqn), ct);
                return tid;
            }
            catch (ToolFailedException e) when (TgtAdm.IsAlreadyExists(e.StandardError))
            {
                // Another process took this tid (or made this very target) since we looked.
                tried.Add(tid);
                targets = await ShowAsync(ct) ?? [];
                if (targets.FirstOrDefault(t => t.Name == iqn) is { } made)
                    throw new InvalidOperationException($"the iSCSI target {iqn} was created concurrently as tid {made.Tid}");
            }
        }
        throw Unavailable($"no free iSCSI target id found after 20 attempts (tgtd has {targets.Count} targets).");
    }

    async Task DeleteAsync(int tid, CancellationToken ct)
    {
        try { await TgtAdmAsync(TgtAdm.DeleteTarget(tid), ct); }
        catch (ToolFailedException e) when (TgtAdm.IsNotFound(e.StandardError)) { }
    }

    public async Task UnshareAsync(Guid uuid, CancellationToken ct)
    {
        var iqn = TgtAdm.IqnOf(uuid);
        await Gate.WaitAsync(ct);
        try
        {
            var targets = await ShowAsync(ct);
            if (targets?.FirstOrDefault(t => t.Name == iqn) is { } target)
            {
                await DeleteAsync(target.Tid, ct);
                logger.LogInformation("iSCSI target {Tid} {Iqn} removed", target.Tid, iqn);
            }
        }
        finally
        {
            Gate.Release();
        }
    }

    public async Task GrantAsync(Guid uuid, string initiatorName, CancellationToken ct)
    {
        var iqn = TgtAdm.IqnOf(uuid);
        await Gate.WaitAsync(ct);
        try
        {
            var target = (await EnsureDaemonAsync(ct)).Targets.FirstOrDefault(t => t.Name == iqn)
                ?? throw Unavailable($"volume {uuid} is not exported (its target {iqn} is missing); the export health check makes it again, retry in a moment.");
            if (target.Acl.Contains(initiatorName, StringComparer.Ordinal)) return;
            await TgtAdmAsync(TgtAdm.BindInitiatorName(target.Tid, initiatorName), ct);
            logger.LogInformation("iSCSI target {Tid} {Iqn} lets in initiator {Initiator}", target.Tid, iqn, initiatorName);
        }
        finally
        {
            Gate.Release();
        }
    }

    public async Task RevokeAsync(Guid uuid, string initiatorName, CancellationToken ct)
    {
        var iqn = TgtAdm.IqnOf(uuid);
        await Gate.WaitAsync(ct);
        try
        {
            if ((await ShowAsync(ct))?.FirstOrDefault(t => t.Name == iqn) is not { } target) return;
            if (target.Acl.Contains(initiatorName, StringComparer.Ordinal))
            {
                await TgtAdmAsync(TgtAdm.UnbindInitiatorName(target.Tid, initiatorName), ct);
                logger.LogInformation("iSCSI target {Tid} {Iqn} no longer lets in initiator {Initiator}", target.Tid, iqn, initiatorName);
            }
            // Fencing: the ACL only stops new logins; a session still open (a node that stopped answering but may still run
            // its QEMU) is closed too, so it cannot keep writing once another host opens the disk.
            var connections = TgtAdm.ParseConnections((await TgtAdmAsync(TgtAdm.ShowConnections(target.Tid), ct)).StandardOutput);
            foreach (var connection in connections.Where(c => c.Initiator == initiatorName))
            {
                try { await TgtAdmAsync(TgtAdm.DeleteConnection(target.Tid, connection.Session, connection.Connection), ct); }
                catch (ToolFailedException e) when (TgtAdm.IsNotFound(e.StandardError)) { continue; }
                logger.LogWarning("iSCSI target {Tid} {Iqn}: closed the connection of initiator {Initiator} from {Address} (session {Session})",
                    target.Tid, iqn, initiatorName, connection.Address, connection.Session);
            }
        }
        finally
        {
            Gate.Release();
        }
    }

    public async Task SetReadOnlyAsync(Guid uuid, bool readOnly, CancellationToken ct)
    {
        var iqn = TgtAdm.IqnOf(uuid);
        var target = (await ShowAsync(ct))?.FirstOrDefault(t => t.Name == iqn);
        if (target is not null) await TgtAdmAsync(TgtAdm.SetReadOnly(target.Tid, readOnly), ct);
    }

    public async Task<IReadOnlyList<SharedExport>> ListAsync(Func<string, bool> owns, CancellationToken ct)
    {
        var targets = await ShowAsync(ct);
        if (targets is null) return [];
        return targets
            .Where(t => TgtAdm.UuidOf(t.Name) is not null && t.BackingPath is { } path && owns(path))
            .Select(t => new SharedExport(TgtAdm.UuidOf(t.Name)!.Value, t.BackingPath, $"iSCSI target {t.Tid} {t.Name}"))
            .ToList();
    }
}
