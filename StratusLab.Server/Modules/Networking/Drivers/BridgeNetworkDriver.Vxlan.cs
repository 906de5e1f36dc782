using System.Globalization;
using System.Text;
using System.Text.Json;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Networking.Drivers;

/// <summary>An entry of a VXLAN device ('bridge -j fdb show') with a destination: all-zeros MAC, where broadcast and unknown frames are copied to; else where frames for that MAC go.</summary>
internal sealed record FdbPeer(string Mac, string Destination);

/// <summary>
/// Bridge networks across SSH nodes. A NIC on a node gets, on that node (over SSH, argument arrays), the network's bridge
/// (no address), a unicast VXLAN device on it (<see cref="VxlanPrefix"/>, the network's VNI, UDP 4789, the node's address
/// as local end, no learning) with one all-zeros flooding entry per peer (head-end replication to the front-end and every
/// other node with a NIC of the network) and one entry per NIC on another node (its MAC to that node: frames for a guest
/// go to its node alone, only broadcast and unknown ones to every peer), the NIC's tap and its security-group chains. The front-end keeps the gateway,
/// dnsmasq, NAT and PAT, with the matching VXLAN device on its bridge flooding to every such node. A node's bridge and
/// VXLAN go with its last NIC of the network; the flooding lists follow nodes joining and leaving.
/// </summary>
internal sealed partial class BridgeNetworkDriver
{
    public const string VxlanPrefix = "slvx-";
    public const int VxlanPort = 4789;

    /// <summary>Bytes VXLAN adds to each frame on an IPv4 underlay (outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8).</summary>
    public const int VxlanOverhead = 50;

    const string ZeroMac = "00:00:00:00:00:00";
    static readonly TimeSpan NodeCommandTimeout = TimeSpan.FromSeconds(30);

    public static string VxlanName(long networkId) => VxlanPrefix + networkId.ToString(CultureInfo.InvariantCulture);

    /// <summary>Runs a tool here (<paramref name="node"/> null) or on the node over SSH; a node-side failure names the node and what failed.</summary>
    async Task<ToolResult> RunAtAsync(NodeSite? node, IReadOnlyList<string> command, CancellationToken ct, string? stdin = null, IReadOnlyList<int>? accepted = null)
    {
        if (node is null)
            return await runner.RunAsync(new ToolCommand(command[0], command.Skip(1).ToList()) { Timeout = TimeSpan.FromSeconds(15), StandardInput = stdin, AcceptedExitCodes = accepted ?? [] }, ct);
        if (node.Ssh is null || ssh is null)
            throw new NetworkUnavailableException($"node {node.Name} is no longer a host of this server, so its bridge cannot be changed");
        try
        {
            return await ssh.RunAsync(node.Ssh, command, NodeCommandTimeout, ct, stdin, accepted);
        }
        catch (ToolFailedException e)
        {
            throw new NetworkUnavailableException($"'{string.Join(' ', command.Take(6))}' failed on node {node.Name}: {e.StandardError.Trim()}");
        }
        catch (SshFailure e)
        {
            throw new NetworkUnavailableException($"node {node.Name}: {e.Message}");
        }
    }

    Task<ToolResult> IpAtAsync(NodeSite? node, IReadOnlyList<string> args, CancellationToken ct) => RunAtAsync(node, ["ip", .. args], ct);

    async Task<IReadOnlyList<LinkInfo>> LinksAtAsync(NodeSite? node, CancellationToken ct) =>
        ParseLinks((await RunAtAsync(node, ["ip", "-j", "link", "show"], ct)).StandardOutput);

    static bool SameNic(NicSpec a, NicSpec b) => a.InstanceId == b.InstanceId && a.Index == b.Index;

    /// <summary>The nodes (by underlay address) that carry NICs of the network, in a stable order (pure).</summary>
    public static IReadOnlyList<NodeSite> NodesOf(IEnumerable<NicSpec> nics) =>
        nics.Where(n => n.Node is not null).Select(n => n.Node!).GroupBy(n => n.Name).Select(g => g.First()).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();

    /// <summary>
    /// The refusals a node gets before anything is made (pure but for the probe output): no IPv4 address to be a VXLAN end
    /// at, no VNI, or no ip/bridge/nft on the node.
    /// </summary>
    async Task CheckNodeAsync(NetworkSpec network, NodeSite node, CancellationToken ct)
    {
        if (network.Vni is null) throw new InvalidOperationException($"network '{network.Name}' has no VNI for its NIC on node {node.Name}");
        if (!Ipv4.TryParse(node.Address, out _))
            throw new NetworkUnavailableException($"node {node.Name} is reached at '{node.Address}', not an IPv4 address: bridge networks reach nodes over VXLAN between IPv4 addresses; add the node by its address");
        // Fixed text; no input in it. Prints each missing tool.
        var probe = await RunAtAsync(node, ["sh", "-c", "for t in ip bridge nft; do command -v \"$t\" >/dev/null 2>&1 || echo \"$t\"; done"], ct);
        var missing = probe.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (missing.Length > 0)
            throw new NetworkUnavailableException($"node {node.Name} cannot carry bridge network '{network.Name}': {string.Join(", ", missing)} missing on the node " +
                "(Debian packages iproute2 and nftables); install them there, or run the instance on a user-mode network");
    }

    /// <summary>The address this machine has toward the node (the route's source), or Networking:VxlanLocalAddress.</summary>
    async Task<string> FrontEndAddressAsync(NodeSite node, CancellationToken ct)
    {
        if (!string.IsNullOrWhiteSpace(networking.VxlanLocalAddress)) return networking.VxlanLocalAddress;
        var route = await runner.RunAsync(new ToolCommand("ip", ["-j", "-4", "route", "get", node.Address]) { Timeout = TimeSpan.FromSeconds(15) }, ct);
        return RouteSource(route.StandardOutput)
            ?? throw new NetworkUnavailableException($"this machine has no route with a source address to node {node.Name} ({node.Address}); set Networking:VxlanLocalAddress");
    }

    /// <summary>The "prefsrc" of 'ip -j route get' (pure).</summary>
    public static string? RouteSource(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) return null;
        using var doc = JsonDocument.Parse(json);
        foreach (var route in doc.RootElement.EnumerateArray())
            if (route.TryGetProperty("prefsrc", out var src)) return src.GetString();
        return null;
    }

    /// <summary>The flooding entries of 'bridge -j fdb show dev DEV' (pure): all-zeros MAC with a destination.</summary>
    public static IReadOnlyList<FdbPeer> ParseFdb(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) return [];
        using var doc = JsonDocument.Parse(json);
        var list = new List<FdbPeer>();
        foreach (var e in doc.RootElement.EnumerateArray())
            if (e.TryGetProperty("mac", out var mac) && e.TryGetProperty("dst", out var dst))
                list.Add(new FdbPeer(mac.GetString()!, dst.GetString()!));
        return list;
    }

    /// <summary>
    /// The unicast entries of the VXLAN device of node <paramref name="self"/> (null: the front-end's) (pure): the MAC of
    /// every NIC on another node, to that node's address. Without them, a device that does not learn copies every frame to
    /// every peer, so traffic between two nodes would also reach the front-end and every other node.
    /// </summary>
    public static IReadOnlyList<FdbPeer> UnicastEntries(IEnumerable<NicSpec> nics, string? self) =>
        nics.Where(n => n.Node is not null && n.Node.Name != self).Select(n => new FdbPeer(n.Mac.ToLowerInvariant(), n.Node!.Address))
            .Distinct().OrderBy(e => e.Mac, StringComparer.Ordinal).ToList();

    /// <summary>The 'ip link add' arguments of a network's VXLAN device (pure).</summary>
    public static IReadOnlyList<string> VxlanAddArguments(NetworkSpec network, string? local)
    {
        List<string> args = ["link", "add", VxlanName(network.Id), "type", "vxlan", "id", network.Vni!.Value.ToString(CultureInfo.InvariantCulture),
            "dstport", VxlanPort.ToString(CultureInfo.InvariantCulture)];
        if (local is not null) args.AddRange(["local", local]);
        args.Add("nolearning");
        return args;
    }

    /// <summary>The network's VXLAN device on its bridge here or on a node, flooding to exactly <paramref name="peers"/>, with exactly <paramref name="unicast"/>.</summary>
    async Task EnsureVxlanAsync(NodeSite? node, NetworkSpec network, string? local, IReadOnlyCollection<string> peers, IReadOnlyCollection<FdbPeer> unicast, CancellationToken ct)
    {
        var vxlan = VxlanName(network.Id);
        if ((await LinksAtAsync(node, ct)).All(l => l.Name != vxlan))
        {
            try
            {
                await IpAtAsync(node, VxlanAddArguments(network, local), ct);
            }
            catch (Exception e) when (e is NetworkUnavailableException or ToolFailedException)
            {
                var where = node is null ? "this machine" : $"node {node.Name}";
                throw new NetworkUnavailableException($"{where} cannot make the VXLAN device of network '{network.Name}' (the kernel needs VXLAN support, module vxlan): {e.Message}");
            }
            logger.LogInformation("Network {Name}: VXLAN {Vxlan} (VNI {Vni}) made on {Where}", network.Name, vxlan, network.Vni, node?.Name ?? "the front-end");
        }
        await IpAtAsync(node, ["link", "set", "dev", vxlan, "master", BridgeName(network.Id), "up"], ct);
        await SyncFloodingAsync(node, vxlan, peers, unicast, ct);
    }

    /// <summary>
    /// Head-end replication: one all-zeros entry per peer, added or removed so the list is exactly <paramref name="peers"/>;
    /// and the unicast entries made exactly <paramref name="unicast"/> (stale ones first, so a MAC now on another node moves).
    /// </summary>
    async Task SyncFloodingAsync(NodeSite? node, string vxlan, IReadOnlyCollection<string> peers, IReadOnlyCollection<FdbPeer> unicast, CancellationToken ct)
    {
        var entries = ParseFdb((await RunAtAsync(node, ["bridge", "-j", "fdb", "show", "dev", vxlan], ct)).StandardOutput);
        var current = entries.Where(p => p.Mac == ZeroMac).Select(p => p.Destination).ToHashSet(StringComparer.Ordinal);
        foreach (var peer in peers.Where(p => !current.Contains(p)))
            await RunAtAsync(node, ["bridge", "fdb", "append", ZeroMac, "dev", vxlan, "dst", peer], ct);
        foreach (var gone in current.Where(c => !peers.Contains(c)))
            await RunAtAsync(node, ["bridge", "fdb", "del", ZeroMac, "dev", vxlan, "dst", gone], ct);
        var known = entries.Where(p => p.Mac != ZeroMac).ToHashSet();
        foreach (var stale in known.Where(k => !unicast.Contains(k)))
            await RunAtAsync(node, ["bridge", "fdb", "del", stale.Mac, "dev", vxlan, "dst", stale.Destination], ct);
        foreach (var entry in unicast.Where(e => !known.Contains(e)))
            await RunAtAsync(node, ["bridge", "fdb", "replace", entry.Mac, "dev", vxlan, "dst", entry.Destination], ct);
    }

    /// <summary>The front-end's VXLAN: flooding to every node with a NIC of the network, removed when none is left.</summary>
    async Task SyncFrontEndVxlanAsync(NetworkSpec network, IReadOnlyList<NicSpec> nics, CancellationToken ct)
    {
        var nodes = NodesOf(nics);
        if (nodes.Count == 0)
        {
            await DeleteLinkAsync(VxlanName(network.Id), ct);
            return;
        }
        await EnsureVxlanAsync(null, network, null, nodes.Select(n => n.Address).ToList(), UnicastEntries(nics, self: null), ct);
    }

    /// <summary>One node's bridge and VXLAN, flooding to the front-end and every other node with a NIC of the network.</summary>
    async Task EnsureNodeBridgeAsync(NetworkSpec network, NodeSite node, IReadOnlyList<NicSpec> nics, CancellationToken ct)
    {
        var bridge = BridgeName(network.Id);
        if ((await LinksAtAsync(node, ct)).All(l => l.Name != bridge))
        {
            List<string> add = ["link", "add", "name", bridge];
            if (network.Mtu is { } mtu) add.AddRange(["mtu", mtu.ToString(CultureInfo.InvariantCulture)]);
            add.AddRange(["type", "bridge"]);
            await IpAtAsync(node, add, ct);
            logger.LogInformation("Network {Name}: bridge {Bridge} made on node {Node}", network.Name, bridge, node.Name);
        }
        await IpAtAsync(node, ["link", "set", "dev", bridge, "up"], ct);
        var peers = new List<string> { await FrontEndAddressAsync(node, ct) };
        peers.AddRange(NodesOf(nics).Where(n => n.Name != node.Name).Select(n => n.Address));
        await EnsureVxlanAsync(node, network, node.Address, peers, UnicastEntries(nics, node.Name), ct);
    }

    /// <summary>Every node with a NIC of the network floods to the others (a node joined or left).</summary>
    async Task SyncNodesFloodingAsync(NetworkSpec network, IReadOnlyList<NicSpec> nics, NodeSite? except, CancellationToken ct)
    {
        foreach (var node in NodesOf(nics).Where(n => n.Name != except?.Name))
        {
            if (node.Ssh is null) continue;
            var peers = new List<string> { await FrontEndAddressAsync(node, ct) };
            peers.AddRange(NodesOf(nics).Where(n => n.Name != node.Name).Select(n => n.Address));
            await SyncFloodingAsync(node, VxlanName(network.Id), peers, UnicastEntries(nics, node.Name), ct);
        }
    }

    /// <summary>
    /// Pre-boot of a NIC on a node: refusals first (nothing made yet), then the front-end's bridge, NAT and VXLAN, the
    /// node's bridge, VXLAN, tap and chains, the other nodes' flooding lists, the NIC's PAT entries and its DHCP entry.
    /// A failure undoes it all (the NIC's clean, which leaves what other NICs use).
    /// </summary>
    async Task PreBootOnNodeAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct)
    {
        var node = nic.Node!;
        await CheckNodeAsync(network, node, ct);
        var others = served.Where(n => !SameNic(n, nic)).ToList();
        var all = others.Append(nic).ToList();
        await using var undo = new UndoStack(logger);
        undo.Add($"remove NIC {nic.Index} of instance {nic.InstanceId} from node {node.Name} and the front-end", () => CleanAsync(network, nic, others, CancellationToken.None));
        await EnsureNetworkAsync(network, ct);
        await SyncFrontEndVxlanAsync(network, all, ct);
        await EnsureNodeBridgeAsync(network, node, all, ct);
        await EnsureNodeTapAsync(network, nic, ct);
        await ApplyNodeRulesAsync(nic, ct);
        await SyncNodesFloodingAsync(network, all, except: node, ct);
        await ServeDhcpAsync(network, all, ct);
        undo.Commit();
    }

    async Task EnsureNodeTapAsync(NetworkSpec network, NicSpec nic, CancellationToken ct)
    {
        var tap = TapName(nic.InstanceId, nic.Index);
        if ((await LinksAtAsync(nic.Node, ct)).All(l => l.Name != tap)) await IpAtAsync(nic.Node, ["tuntap", "add", "dev", tap, "mode", "tap"], ct);
        List<string> set = ["link", "set", "dev", tap, "master", BridgeName(network.Id)];
        if (network.Mtu is { } mtu) set.AddRange(["mtu", mtu.ToString(CultureInfo.InvariantCulture)]);
        set.Add("up");
        await IpAtAsync(nic.Node, set, ct);
    }

    /// <summary>The NIC's security-group chains in the node's bridge table (made with the first NIC), its PAT entries here.</summary>
    async Task ApplyNodeRulesAsync(NicSpec nic, CancellationToken ct)
    {
        var bridge = await ListTableAtAsync(nic.Node, "bridge", ct);
        var script = (bridge.Exists ? "" : BridgeTableScript()) + NicChainsScript(nic, TapName(nic.InstanceId, nic.Index));
        await RunAtAsync(nic.Node, ["nft", "-f", "-"], ct, script);
        await EnsureTablesAsync(ct);
        if (PatScript(nic, await ListTableAsync("ip", ct)) is { Length: > 0 } pat) await NftAsync(pat, ct);
    }

    /// <summary>Removes the NIC's chains from the node, and the node's table once no NIC chain is left in it.</summary>
    async Task RemoveNodeRulesAsync(NicSpec nic, CancellationToken ct)
    {
        var bridge = await ListTableAtAsync(nic.Node, "bridge", ct);
        if (!bridge.Exists) return;
        var tap = TapName(nic.InstanceId, nic.Index);
        var mine = SecurityRuleChains(nic);
        var script = new StringBuilder();
        if (bridge.Chains.Any(c => c.StartsWith("nic-", StringComparison.Ordinal) && !mine.Contains(c)))
        {
            if (bridge.Of("nic_in").ContainsKey(tap)) script.AppendLine($"delete element bridge {Table} nic_in {{ \"{tap}\" }}");
            if (bridge.Of("nic_out").ContainsKey(tap)) script.AppendLine($"delete element bridge {Table} nic_out {{ \"{tap}\" }}");
            foreach (var chain in mine.Where(bridge.Chains.Contains)) script.AppendLine($"flush chain bridge {Table} {chain}").AppendLine($"delete chain bridge {Table} {chain}");
        }
        else script.AppendLine($"delete table bridge {Table}");
        if (script.Length > 0) await RunAtAsync(nic.Node, ["nft", "-f", "-"], ct, script.ToString());
    }

    static HashSet<string> SecurityRuleChains(NicSpec nic) => [ChainOf(nic, "inbound"), ChainOf(nic, "outbound")];

    /// <summary>
    /// Clean of a NIC on a node: its PAT entries here, its chains and tap on the node, the node's VXLAN and bridge with its
    /// last NIC of the network, then the flooding lists, and the front-end's side as for any NIC.
    /// </summary>
    async Task CleanOnNodeAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct)
    {
        var node = nic.Node!;
        await RemoveNicRulesAsync(nic, ct);
        if (node.Ssh is null)
            logger.LogWarning("Network {Name}: node {Node} is no longer a host; its tap, bridge and VXLAN there are not removed", network.Name, node.Name);
        else
        {
            await RemoveNodeRulesAsync(nic, ct);
            var links = await LinksAtAsync(node, ct);
            var tap = TapName(nic.InstanceId, nic.Index);
            if (links.Any(l => l.Name == tap)) await IpAtAsync(node, ["link", "del", "dev", tap], ct);
            if (served.All(n => n.Node?.Name != node.Name))
            {
                foreach (var link in new[] { VxlanName(network.Id), BridgeName(network.Id) }.Where(n => links.Any(l => l.Name == n)))
                    await IpAtAsync(node, ["link", "del", "dev", link], ct);
                logger.LogInformation("Network {Name}: bridge and VXLAN removed from node {Node} (its last NIC of the network left)", network.Name, node.Name);
            }
        }
        if (served.Count == 0)
        {
            await TearDownAsync(network, ct);
            return;
        }
        await SyncFrontEndVxlanAsync(network, served, ct);
        await SyncNodesFloodingAsync(network, served, except: null, ct);
        await ServeDhcpAsync(network, served, ct);
    }
}
