using System.Globalization;
using System.Text;
using System.Text.Json;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Networking.Drivers;

/// <summary>One of the server's nft tables as listed: its chains, and the elements (key → value) of its sets and maps.</summary>
internal sealed record NftTable(bool Exists, IReadOnlySet<string> Chains, IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Elements)
{
    public static readonly NftTable Missing = new(false, new HashSet<string>(), new Dictionary<string, IReadOnlyDictionary<string, string>>());

    public IReadOnlyDictionary<string, string> Of(string setOrMap) =>
        Elements.TryGetValue(setOrMap, out var e) ? e : new Dictionary<string, string>();
}

internal sealed partial class BridgeNetworkDriver
{
    public const string Table = "stratuslab";

    /// <summary>The script that makes both tables (pure). Everything per network or NIC is an element of a set or map, or a chain.</summary>
    public static string BaseTablesScript(string patAddress)
    {
        // PAT on the loopback is for locally originated traffic only; 0.0.0.0 means every local address.
        var loopback = patAddress.StartsWith("127.", StringComparison.Ordinal);
        var patMatch = patAddress == "0.0.0.0" ? "fib daddr type local" : $"ip daddr {patAddress}";
        var sb = new StringBuilder();
        sb.AppendLine($"table ip {Table} {{");
        sb.AppendLine("  map pat_tcp { type inet_service : ipv4_addr . inet_service; }");
        sb.AppendLine("  map guest_api { type ipv4_addr . inet_service : ipv4_addr . inet_service; }");
        sb.AppendLine("  set masq_nets { type ipv4_addr; flags interval; }");
        sb.AppendLine("  set bridge_links { type ifname . ifname; }");
        sb.AppendLine("  chain prerouting {");
        sb.AppendLine("    type nat hook prerouting priority dstnat; policy accept;");
        sb.AppendLine($"    iifname \"{BridgePrefix}*\" meta l4proto tcp dnat ip to ip daddr . tcp dport map @guest_api");
        if (!loopback) sb.AppendLine($"    {patMatch} meta l4proto tcp dnat ip to tcp dport map @pat_tcp");
        sb.AppendLine("  }");
        sb.AppendLine("  chain output {");
        sb.AppendLine("    type nat hook output priority -100; policy accept;");
        sb.AppendLine($"    {patMatch} meta l4proto tcp dnat ip to tcp dport map @pat_tcp");
        sb.AppendLine("  }");
        sb.AppendLine("  chain postrouting {");
        sb.AppendLine("    type nat hook postrouting priority srcnat; policy accept;");
        sb.AppendLine($"    ip saddr @masq_nets oifname != \"{BridgePrefix}*\" masquerade");
        // Hairpin: a guest reaching another guest through its PAT port must see the replies come back the same way.
        sb.AppendLine($"    ct status dnat ip saddr @masq_nets oifname \"{BridgePrefix}*\" masquerade");
        sb.AppendLine($"    ip saddr 127.0.0.0/8 oifname \"{BridgePrefix}*\" masquerade");
        sb.AppendLine("  }");
        // Two of the server's networks are kept apart (they may belong to different users) unless an admin linked them;
        // a network with itself (bridged traffic seen here when br_netfilter is loaded) and published PAT ports still pass.
        sb.AppendLine("  chain forward {");
        sb.AppendLine("    type filter hook forward priority 0; policy accept;");
        sb.AppendLine("    iifname . oifname @bridge_links accept");
        sb.AppendLine("    ct status dnat accept");
        sb.AppendLine($"    iifname \"{BridgePrefix}*\" oifname \"{BridgePrefix}*\" drop");
        sb.AppendLine("  }");
        sb.AppendLine("}");
        sb.Append(BridgeTableScript());
        return sb.ToString();
    }

    /// <summary>The bridge-family table alone (pure): the per-NIC filters, all an SSH node needs (its DHCP, NAT and PAT stay on the front-end).</summary>
    public static string BridgeTableScript()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"table bridge {Table} {{");
        sb.AppendLine("  map nic_in { type ifname : verdict; }");
        sb.AppendLine("  map nic_out { type ifname : verdict; }");
        sb.AppendLine("  chain forward {");
        sb.AppendLine("    type filter hook forward priority 0; policy accept;");
        sb.AppendLine("    iifname vmap @nic_out");
        sb.AppendLine("    oifname vmap @nic_in");
        sb.AppendLine("  }");
        sb.AppendLine("  chain input {");
        sb.AppendLine("    type filter hook input priority 0; policy accept;");
        sb.AppendLine("    iifname vmap @nic_out");
        sb.AppendLine("  }");
        sb.AppendLine("  chain output {");
        sb.AppendLine("    type filter hook output priority 0; policy accept;");
        sb.AppendLine("    oifname vmap @nic_in");
        sb.AppendLine("  }");
        sb.AppendLine("}");
        return sb.ToString();
    }

    public static string ChainOf(NicSpec nic, string direction) =>
        $"nic-{nic.InstanceId.ToString(CultureInfo.InvariantCulture)}-{nic.Index}-{(direction == "inbound" ? "in" : "out")}";

    /// <summary>
    /// The rules of one NIC's chain (pure), jumped to for frames to (inbound) or from (outbound) its tap. ARP, DHCP and
    /// anti-spoofing come first; then drop rules; then, if the direction has accept rules, only what they match (and
    /// TCP segments that do not open a connection, since the bridge family has no conntrack here) gets through.
    /// "return" lets a frame go on (to the other NIC's chain, or the bridge).
    /// </summary>
    public static IReadOnlyList<string> NicChainRules(NicSpec nic, string direction)
    {
        var rules = new List<string>();
        if (direction == "outbound")
        {
            // A guest speaks only with its own MAC and address (0.0.0.0 while DHCP probes the offered one).
            rules.Add($"ether saddr != {nic.Mac} drop");
            rules.Add($"arp saddr ip != {{ 0.0.0.0, {nic.Ip} }} drop");
            rules.Add("ether type arp return");
            rules.Add("udp sport 68 udp dport 67 return");
            rules.Add($"ip saddr != {nic.Ip} drop");
        }
        else
        {
            rules.Add("ether type arp return");
            rules.Add("udp sport 67 udp dport 68 return");
        }
        var mine = nic.Rules.Where(r => r.Direction == direction).ToList();
        foreach (var r in mine.Where(r => r.Action == "drop")) rules.Add(Verdict(Match(r), "drop"));
        var accepts = mine.Where(r => r.Action == "accept").ToList();
        if (accepts.Count > 0)
        {
            rules.Add("tcp flags & (syn | ack) != syn return");
            rules.Add("icmp type { echo-reply, destination-unreachable, time-exceeded } return");
            foreach (var r in accepts) rules.Add(Verdict(Match(r), "return"));
            rules.Add("drop");
        }
        return rules;
    }

    static string Verdict(string match, string verdict) => match.Length == 0 ? verdict : match + " " + verdict;

    static string Match(SecurityRule r)
    {
        var parts = new List<string>();
        if (r.Cidr is not null) parts.Add((r.Direction == "inbound" ? "ip saddr " : "ip daddr ") + r.Cidr);
        if (r.Protocol is "tcp" or "udp")
        {
            parts.Add($"meta l4proto {r.Protocol}");
            if (r.PortFirst is not null) parts.Add($"{r.Protocol} dport {r.PortsText}");
        }
        else if (r.Protocol == "icmp") parts.Add("meta l4proto icmp");
        return string.Join(' ', parts);
    }

    /// <summary>The NIC's filter chains and their map entries (pure), in the bridge table of the machine that has its tap.</summary>
    public static string NicChainsScript(NicSpec nic, string tap)
    {
        var sb = new StringBuilder();
        foreach (var direction in SecurityRule.Directions)
        {
            var chain = ChainOf(nic, direction);
            sb.AppendLine($"add chain bridge {Table} {chain}");
            sb.AppendLine($"flush chain bridge {Table} {chain}");
            foreach (var rule in NicChainRules(nic, direction)) sb.AppendLine($"add rule bridge {Table} {chain} {rule}");
        }
        sb.AppendLine($"add element bridge {Table} nic_in {{ \"{tap}\" : jump {ChainOf(nic, "inbound")} }}");
        sb.AppendLine($"add element bridge {Table} nic_out {{ \"{tap}\" : jump {ChainOf(nic, "outbound")} }}");
        return sb.ToString();
    }

    /// <summary>The script that (re)writes a NIC's chains and map entries and its PAT entries (pure); entries that conflict are deleted first.</summary>
    public static string NicScript(NicSpec nic, string tap, NftTable ip) => NicChainsScript(nic, tap) + PatScript(nic, ip);

    /// <summary>The NIC's PAT entries (pure): on the front-end, whichever bridge (here or on a node, over VXLAN) carries the NIC.</summary>
    public static string PatScript(NicSpec nic, NftTable ip)
    {
        var sb = new StringBuilder();
        var pat = ip.Of("pat_tcp");
        foreach (var f in nic.Forwards.Where(f => f.Protocol == "tcp"))
        {
            var key = f.HostPort.ToString(CultureInfo.InvariantCulture);
            var value = $"{nic.Ip} . {f.GuestPort.ToString(CultureInfo.InvariantCulture)}";
            if (pat.TryGetValue(key, out var current) && current != value) sb.AppendLine($"delete element ip {Table} pat_tcp {{ {key} }}");
            sb.AppendLine($"add element ip {Table} pat_tcp {{ {key} : {value} }}");
        }
        return sb.ToString();
    }

    async Task EnsureTablesAsync(CancellationToken ct)
    {
        await _nftLock.WaitAsync(ct);
        try
        {
            var (ip, bridge) = (await ListTableAsync("ip", ct), await ListTableAsync("bridge", ct));
            if (ip.Exists && bridge.Exists) return;
            var script = new StringBuilder();
            if (ip.Exists) script.AppendLine($"delete table ip {Table}");
            if (bridge.Exists) script.AppendLine($"delete table bridge {Table}");
            script.Append(BaseTablesScript(networking.PatAddress));
            await NftAsync(script.ToString(), ct);
            logger.LogInformation("nftables: tables ip {Table} and bridge {Table} created (NAT, PAT on {Address}, per-NIC filters)", Table, Table, networking.PatAddress);
        }
        finally
        {
            _nftLock.Release();
        }
    }

    readonly SemaphoreSlim _nftLock = new(1, 1);

    /// <summary>
    /// The elements of one network (pure): its subnet masqueraded, its gateway's guest API, and the bridge pairs that may
    /// forward to each other: the network with itself and with each network an admin linked it with, both ways.
    /// </summary>
    public static string NetworkScript(NetworkSpec network)
    {
        var script = new StringBuilder();
        script.AppendLine($"add element ip {Table} masq_nets {{ {network.Subnet} }}");
        if (network.GuestApiPort is { } port && network.Gateway is not null)
            script.AppendLine($"add element ip {Table} guest_api {{ {network.Gateway} . {port} : 127.0.0.1 . {port} }}");
        var self = BridgeName(network.Id);
        var pairs = new List<string> { $"\"{self}\" . \"{self}\"" };
        foreach (var other in (network.Linked ?? []).Where(l => l != network.Id).Distinct().Select(BridgeName))
            pairs.AddRange([$"\"{self}\" . \"{other}\"", $"\"{other}\" . \"{self}\""]);
        script.AppendLine($"add element ip {Table} bridge_links {{ {string.Join(", ", pairs)} }}");
        return script.ToString();
    }

    /// <summary>
    /// The script that replaces both tables in one transaction (pure): base chains from the configuration (PAT address),
    /// then every live network's and NIC's elements and chains. With nothing live, it only deletes the tables.
    /// </summary>
    public static string RewriteScript(string patAddress, IReadOnlyList<(NetworkSpec Network, IReadOnlyList<NicSpec> Nics)> live)
    {
        var sb = new StringBuilder();
        // 'add' then 'delete' removes a table whether or not it exists, without failing the transaction.
        foreach (var family in new[] { "ip", "bridge" })
            sb.AppendLine($"add table {family} {Table}").AppendLine($"delete table {family} {Table}");
        if (live.Count == 0) return sb.ToString();
        sb.Append(BaseTablesScript(patAddress));
        foreach (var (network, _) in live) sb.Append(NetworkScript(network));
        // A NIC on an SSH node has its filter chains on the node; here only its PAT entries.
        foreach (var nic in live.SelectMany(l => l.Nics))
            sb.Append(nic.Node is null ? NicScript(nic, TapName(nic.InstanceId, nic.Index), NftTable.Missing) : PatScript(nic, NftTable.Missing));
        return sb.ToString();
    }

    /// <summary>
    /// Replaces the server's tables with what the configuration and the live NICs call for, atomically: a base chain
    /// written under an older configuration (a wider PAT address) does not survive a restart, and no packet meets a
    /// half-written ruleset.
    /// </summary>
    async Task RewriteTablesAsync(IReadOnlyList<(NetworkSpec Network, IReadOnlyList<NicSpec> Nics)> live, CancellationToken ct)
    {
        await _nftLock.WaitAsync(ct);
        try
        {
            await NftAsync(RewriteScript(networking.PatAddress, live), ct);
        }
        finally
        {
            _nftLock.Release();
        }
        if (live.Count == 0) logger.LogInformation("nftables: tables ip {Table} and bridge {Table} removed (no live NIC)", Table, Table);
        else logger.LogInformation("nftables: tables ip {Table} and bridge {Table} rewritten: PAT on {Address}, {Networks} network(s), {Nics} NIC(s), links {Links}",
            Table, Table, networking.PatAddress, live.Count, live.Sum(l => l.Nics.Count),
            networking.LinkedNetworks.Length == 0 ? "none" : networking.LinkedNetworks);
    }

    async Task EnsureNetworkRulesAsync(NetworkSpec network, CancellationToken ct)
    {
        await EnsureTablesAsync(ct);
        await NftAsync(NetworkScript(network), ct);
    }

    public async Task ApplyRulesAsync(NetworkSpec network, NicSpec nic, CancellationToken ct)
    {
        if (nic.Node is not null)
        {
            await ApplyNodeRulesAsync(nic, ct);
            return;
        }
        await EnsureTablesAsync(ct);
        await NftAsync(NicScript(nic, TapName(nic.InstanceId, nic.Index), await ListTableAsync("ip", ct)), ct);
    }

    async Task RemoveNicRulesAsync(NicSpec nic, CancellationToken ct)
    {
        var (ip, bridge) = (await ListTableAsync("ip", ct), await ListTableAsync("bridge", ct));
        var tap = TapName(nic.InstanceId, nic.Index);
        var script = new StringBuilder();
        if (bridge.Of("nic_in").ContainsKey(tap)) script.AppendLine($"delete element bridge {Table} nic_in {{ \"{tap}\" }}");
        if (bridge.Of("nic_out").ContainsKey(tap)) script.AppendLine($"delete element bridge {Table} nic_out {{ \"{tap}\" }}");
        foreach (var direction in SecurityRule.Directions)
        {
            var chain = ChainOf(nic, direction);
            if (bridge.Chains.Contains(chain)) script.AppendLine($"flush chain bridge {Table} {chain}").AppendLine($"delete chain bridge {Table} {chain}");
        }
        foreach (var (port, target) in ip.Of("pat_tcp"))
            if (target.StartsWith(nic.Ip + " . ", StringComparison.Ordinal))
                script.AppendLine($"delete element ip {Table} pat_tcp {{ {port} }}");
        if (script.Length > 0) await NftAsync(script.ToString(), ct);
    }

    async Task RemoveNetworkRulesAsync(NetworkSpec network, CancellationToken ct)
    {
        var ip = await ListTableAsync("ip", ct);
        var script = new StringBuilder();
        var subnet = network.Subnet.ToString();
        if (ip.Of("masq_nets").ContainsKey(subnet)) script.AppendLine($"delete element ip {Table} masq_nets {{ {subnet} }}");
        foreach (var key in ip.Of("guest_api").Keys.Where(k => k.StartsWith(network.Gateway + " . ", StringComparison.Ordinal)))
            script.AppendLine($"delete element ip {Table} guest_api {{ {key} }}");
        var bridge = BridgeName(network.Id);
        foreach (var pair in ip.Of("bridge_links").Keys.Select(k => k.Split(" . ")).Where(p => p.Length == 2 && p.Contains(bridge)))
            script.AppendLine($"delete element ip {Table} bridge_links {{ \"{pair[0]}\" . \"{pair[1]}\" }}");
        if (script.Length > 0) await NftAsync(script.ToString(), ct);
        await DropTablesIfUnusedAsync(ct);
    }

    /// <summary>With no network and no NIC left, the tables go too: nothing of the server stays in the ruleset.</summary>
    async Task DropTablesIfUnusedAsync(CancellationToken ct)
    {
        await _nftLock.WaitAsync(ct);
        try
        {
            var (ip, bridge) = (await ListTableAsync("ip", ct), await ListTableAsync("bridge", ct));
            var used = ip.Elements.Values.Any(e => e.Count > 0) || bridge.Elements.Values.Any(e => e.Count > 0)
                || bridge.Chains.Any(c => c.StartsWith("nic-", StringComparison.Ordinal));
            if (used) return;
            var script = new StringBuilder();
            if (ip.Exists) script.AppendLine($"delete table ip {Table}");
            if (bridge.Exists) script.AppendLine($"delete table bridge {Table}");
            if (script.Length > 0) await NftAsync(script.ToString(), ct);
        }
        finally
        {
            _nftLock.Release();
        }
    }

    Task<NftTable> ListTableAsync(string family, CancellationToken ct) => ListTableAtAsync(null, family, ct);

    async Task<NftTable> ListTableAtAsync(NodeSite? node, string family, CancellationToken ct)
    {
        var result = await RunAtAsync(node, ["nft", "-j", "list", "table", family, Table], ct, accepted: [1]);
        return result.ExitCode == 0 ? ParseTable(result.StandardOutput) : NftTable.Missing;
    }

    Task<ToolResult> NftAsync(string script, CancellationToken ct) => RunAtAsync(null, ["nft", "-f", "-"], ct, script);

    /// <summary>Chains and set/map elements of one table from 'nft -j list table' (pure). Keys and values are written as nft writes them.</summary>
    public static NftTable ParseTable(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) return NftTable.Missing;
        using var doc = JsonDocument.Parse(json);
        var chains = new HashSet<string>(StringComparer.Ordinal);
        var elements = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        var exists = false;
        foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (item.TryGetProperty("table", out _)) exists = true;
            else if (item.TryGetProperty("chain", out var chain)) chains.Add(chain.GetProperty("name").GetString()!);
            else if (item.TryGetProperty("map", out var set) || item.TryGetProperty("set", out set))
            {
                var entries = new Dictionary<string, string>(StringComparer.Ordinal);
                if (set.TryGetProperty("elem", out var elems))
                    foreach (var e in elems.EnumerateArray())
                    {
                        if (e.ValueKind == JsonValueKind.Array) entries[Render(e[0])] = Render(e[1]);
                        else entries[Render(e)] = "";
                    }
                elements[set.GetProperty("name").GetString()!] = entries;
            }
        }
        return new NftTable(exists, chains, elements);
    }

    static string Render(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetRawText(),
        JsonValueKind.String => e.GetString()!,
        JsonValueKind.Object when e.TryGetProperty("elem", out var inner) => Render(inner.GetProperty("val")),
        JsonValueKind.Object when e.TryGetProperty("prefix", out var p) => $"{p.GetProperty("addr").GetString()}/{p.GetProperty("len").GetInt32()}",
        JsonValueKind.Object when e.TryGetProperty("concat", out var c) => string.Join(" . ", c.EnumerateArray().Select(Render)),
        JsonValueKind.Object when e.TryGetProperty("jump", out var j) => "jump " + j.GetProperty("target").GetString(),
        JsonValueKind.Object when e.TryGetProperty("goto", out var g) => "goto " + g.GetProperty("target").GetString(),
        _ => e.GetRawText(),
    };
}
