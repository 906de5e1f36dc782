using System.Net;
using System.Text.Json;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Pdisk.Sharing;

/// <summary>How an SSH node opens a volume's target: the portal address it reaches this machine at, and its own initiator name.</summary>
internal sealed record NodePortal(string Node, string Initiator, string PortalAddress);

/// <summary>
/// Volumes on SSH nodes: a node opens a volume's iSCSI target with QEMU's own initiator, at the address of this machine
/// that the route to the node leaves from (<c>ip route get NODE</c>: derived, not configured per node), which must be one
/// of Pdisk:Iscsi:ListenAddresses; it logs in with its own initiator name, which the target's ACL names while it mounts it.
/// </summary>
internal sealed class NodeAccess(INodeDirectory nodes, ICommandRunner runner, PdiskOptions options)
{
    /// <summary>The node of a host name, or null when the host is not an SSH node.</summary>
    public Task<NodeInfo?> NodeOfAsync(string host, CancellationToken ct) => host.Length == 0 ? Task.FromResult<NodeInfo?>(null) : nodes.FindNodeAsync(host, ct);

    /// <summary>
    /// How the node of <paramref name="host"/> opens the volume, or null when the host is not an SSH node. Refuses (409)
    /// what cannot work, saying what to change: a volume not shared over iSCSI, a node without QEMU's iSCSI driver, an
    /// address tgtd does not listen on.
    /// </summary>
    public async Task<NodePortal?> ResolveAsync(string host, string uuid, string sharing, CancellationToken ct)
    {
        if (await NodeOfAsync(host, ct) is not { } node) return null;
        if (sharing != "iscsi")
            throw new ConflictException($"Volume {uuid} is shared '{sharing}' (a path on this machine), which SSH node {node.Name} cannot open. " +
                "Use a volume created with sharing 'iscsi' (or Pdisk:Sharing = iscsi) on nodes, or run the instance on this machine.");
        if (!node.IscsiDriver)
            throw new ConflictException($"QEMU on SSH node {node.Name} has no iSCSI block driver, so it cannot open volume {uuid}. " +
                "Install the Debian package qemu-block-extra on the node, then probe it again (POST /api/v1/hosts/" + node.Name + "/probe).");
        if (node.IscsiInitiator is not { Length: > 0 } initiator)
            throw new ConflictException($"SSH node {node.Name} has no iSCSI initiator name recorded; remove the host and add it again.");
        var portal = await SourceAddressTowardsAsync(node, ct);
        var listening = options.Iscsi.ListenAddresses.Append(options.Iscsi.PortalAddress).Select(a => IPAddress.Parse(a)).ToList();
        if (!listening.Contains(IPAddress.Parse(portal)))
            throw new ConflictException($"SSH node {node.Name} reaches this machine at {portal}, where the iSCSI target service does not listen " +
                $"(it listens on {string.Join(", ", listening)}). Add {portal} to Pdisk:Iscsi:ListenAddresses and restart the server.");
        return new NodePortal(node.Name, initiator, portal);
    }

    /// <summary>The initiator name of the node of <paramref name="host"/>, or null (not a node); no checks (for revoking access).</summary>
    public async Task<string?> InitiatorOfAsync(string host, CancellationToken ct) => (await NodeOfAsync(host, ct))?.IscsiInitiator;

    /// <summary>This machine's address on the route to the node (the kernel's choice of source address).</summary>
    async Task<string> SourceAddressTowardsAsync(NodeInfo node, CancellationToken ct)
    {
        if (!IPAddress.TryParse(node.Ssh.Address, out var address))
        {
            try { address = (await Dns.GetHostAddressesAsync(node.Ssh.Address, ct)).First(); }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
            {
                throw new UnavailableException($"The address of SSH node {node.Name} ({node.Ssh.Address}) does not resolve: {e.Message}");
            }
        }
        ToolResult route;
        try { route = await runner.RunAsync(new ToolCommand("ip", ["-j", "route", "get", address.ToString()]) { Timeout = TimeSpan.FromSeconds(10) }, ct); }
        catch (ToolFailedException e)
        {
            throw new UnavailableException($"No route from this machine to SSH node {node.Name} ({address}): {e.StandardError.Trim()}");
        }
        return ParseRouteSource(route.StandardOutput)
            ?? throw new UnavailableException($"'ip route get {address}' names no source address towards SSH node {node.Name}: {route.StandardOutput.Trim()}");
    }

    /// <summary>The <c>prefsrc</c> of <c>ip -j route get</c>'s answer, or null (pure).</summary>
    public static string? ParseRouteSource(string json)
    {
        using var doc = JsonDocument.Parse(json);
        foreach (var route in doc.RootElement.EnumerateArray())
            if (route.TryGetProperty("prefsrc", out var src) && src.GetString() is { Length: > 0 } s) return s;
        return null;
    }
}
