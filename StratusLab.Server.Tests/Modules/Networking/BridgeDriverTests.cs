using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>What the bridge driver writes and reads: names, nft scripts and listings, dnsmasq's command line (pure).</summary>
public class BridgeDriverTests
{
    static NicSpec Nic(params SecurityRule[] rules) =>
        new(7, 0, "02:00:0a:4d:00:05", Ip("10.77.0.5"), [new PortForwardPlan(22, "127.0.0.1", 15000), new PortForwardPlan(80, "127.0.0.1", 15001)], rules);

    static uint Ip(string text) => Ipv4.TryParse(text, out var a) ? a : throw new ArgumentException(text);

    static readonly NetworkSpec Lab = new(3, "lab", Subnet.Parse("10.77.0.0/24", "cidr"), "10.77.0.1", ["10.77.0.1", "9.9.9.9"], 1400, null, null, 8440);

    [TestCase(7, 0, "sltap-7-0")]
    [TestCase(1234567, 3, "sltap-1234567-3")]
    [TestCase(12345678, 0, "sl7clzi-0")]
    [TestCase(long.MaxValue, 15, "sl1y2p0ij32e8e7-15")]
    public void Tap_names_fit_in_an_interface_name_where_they_can(long instance, int nic, string name) =>
        Assert.That(BridgeNetworkDriver.TapName(instance, nic), Is.EqualTo(name));

    [Test]
    public void Every_tap_name_of_a_realistic_id_fits_in_15_characters()
    {
        foreach (var id in new long[] { 1, 99, 9_999_999, 10_000_000, 2_000_000_000, 60_000_000_000 })
            Assert.That(BridgeNetworkDriver.TapName(id, 7).Length, Is.LessThanOrEqualTo(15), id.ToString());
        Assert.That(BridgeNetworkDriver.BridgeName(123456789), Is.EqualTo("slbr-123456789"));
    }

    [Test]
    public void A_nic_with_the_default_group_lets_everything_through_after_anti_spoofing()
    {
        var rules = Nic(new SecurityRule("inbound", "accept", "all", null, null, null), new SecurityRule("outbound", "accept", "all", null, null, null));
        Assert.That(BridgeNetworkDriver.NicChainRules(rules, "outbound"), Is.EqualTo(new[]
        {
            "ether saddr != 02:00:0a:4d:00:05 drop",
            "arp saddr ip != { 0.0.0.0, 10.77.0.5 } drop",
            "ether type arp return",
            "udp sport 68 udp dport 67 return",
            "ip saddr != 10.77.0.5 drop",
            "tcp flags & (syn | ack) != syn return",
            "icmp type { echo-reply, destination-unreachable, time-exceeded } return",
            "return",
            "drop",
        }));
        Assert.That(BridgeNetworkDriver.NicChainRules(rules, "inbound").Take(2), Is.EqualTo(new[] { "ether type arp return", "udp sport 67 udp dport 68 return" }));
    }

    [Test]
    public void Drop_rules_come_before_accept_rules_and_a_direction_without_accept_rules_stays_open()
    {
        var nic = Nic(
            new SecurityRule("inbound", "accept", "tcp", 22, 22, null),
            new SecurityRule("inbound", "accept", "udp", 1000, 2000, "192.0.2.0/24"),
            new SecurityRule("inbound", "drop", "tcp", 22, 22, "10.77.0.9/32"),
            new SecurityRule("inbound", "accept", "icmp", null, null, null),
            new SecurityRule("outbound", "drop", "all", null, null, "203.0.113.0/24"));
        var inbound = BridgeNetworkDriver.NicChainRules(nic, "inbound");
        Assert.That(inbound.Skip(2), Is.EqualTo(new[]
        {
            "ip saddr 10.77.0.9/32 meta l4proto tcp tcp dport 22 drop",
            "tcp flags & (syn | ack) != syn return",
            "icmp type { echo-reply, destination-unreachable, time-exceeded } return",
            "meta l4proto tcp tcp dport 22 return",
            "ip saddr 192.0.2.0/24 meta l4proto udp udp dport 1000-2000 return",
            "meta l4proto icmp return",
            "drop",
        }));
        var outbound = BridgeNetworkDriver.NicChainRules(nic, "outbound");
        Assert.That(outbound[^1], Is.EqualTo("ip daddr 203.0.113.0/24 drop"), "no accept rule outbound: everything else goes out");
    }

    [Test]
    public void A_nic_script_rewrites_its_chains_atomically_and_replaces_a_conflicting_pat_entry()
    {
        var ip = BridgeNetworkDriver.ParseTable("""
            {"nftables": [{"table": {"family": "ip", "name": "stratuslab"}},
              {"map": {"family": "ip", "name": "pat_tcp", "table": "stratuslab", "type": "inet_service", "map": "ipv4_addr . inet_service",
                "elem": [[15000, {"concat": ["10.77.0.9", 22]}], [15001, {"concat": ["10.77.0.5", 80]}]]}}]}
            """);
        var script = BridgeNetworkDriver.NicScript(Nic(), "sltap-7-0", ip);
        Assert.That(script, Does.Contain("add chain bridge stratuslab nic-7-0-in\nflush chain bridge stratuslab nic-7-0-in\n"));
        Assert.That(script, Does.Contain("add element bridge stratuslab nic_in { \"sltap-7-0\" : jump nic-7-0-in }"));
        Assert.That(script, Does.Contain("add element bridge stratuslab nic_out { \"sltap-7-0\" : jump nic-7-0-out }"));
        Assert.That(script, Does.Contain("delete element ip stratuslab pat_tcp { 15000 }\nadd element ip stratuslab pat_tcp { 15000 : 10.77.0.5 . 22 }"));
        Assert.That(script, Does.Not.Contain("delete element ip stratuslab pat_tcp { 15001 }"), "an entry that is already right is left alone");
    }

    [TestCase("127.0.0.1", "ip daddr 127.0.0.1 meta l4proto tcp dnat ip to tcp dport map @pat_tcp", 1)]
    [TestCase("0.0.0.0", "fib daddr type local meta l4proto tcp dnat ip to tcp dport map @pat_tcp", 2)]
    [TestCase("198.51.100.1", "ip daddr 198.51.100.1 meta l4proto tcp dnat ip to tcp dport map @pat_tcp", 2)]
    public void Pat_on_the_loopback_is_for_local_traffic_only_elsewhere_it_is_also_for_incoming(string address, string rule, int times)
    {
        var script = BridgeNetworkDriver.BaseTablesScript(address);
        Assert.That(script.Split('\n').Count(l => l.Trim() == rule), Is.EqualTo(times), script);
        Assert.That(script, Does.Contain("ip saddr @masq_nets oifname != \"slbr-*\" masquerade"));
        Assert.That(script, Does.Contain("iifname \"slbr-*\" meta l4proto tcp dnat ip to ip daddr . tcp dport map @guest_api"));
        Assert.That(script, Does.Contain("table bridge stratuslab {").And.Contain("iifname vmap @nic_out").And.Contain("oifname vmap @nic_in"));
    }

    [Test]
    public void Forwarding_between_two_of_the_servers_bridges_is_dropped_unless_the_pair_is_linked_or_a_pat_port_was_asked_for()
    {
        var lines = BridgeNetworkDriver.BaseTablesScript("127.0.0.1").Split('\n').Select(l => l.Trim()).ToList();
        var chain = lines.IndexOf("chain forward {");
        Assert.That(chain, Is.GreaterThan(0));
        Assert.That(lines.Skip(chain + 1).Take(4), Is.EqualTo(new[]
        {
            "type filter hook forward priority 0; policy accept;",
            "iifname . oifname @bridge_links accept",
            "ct status dnat accept",
            "iifname \"slbr-*\" oifname \"slbr-*\" drop",
        }), "linked pairs first, then published PAT ports, then the drop");
        Assert.That(lines, Does.Contain("set bridge_links { type ifname . ifname; }"));
    }

    [Test]
    public void A_network_links_its_bridge_with_itself_and_both_ways_with_each_linked_network()
    {
        var alone = BridgeNetworkDriver.NetworkScript(Lab);
        Assert.That(alone, Is.EqualTo(
            "add element ip stratuslab masq_nets { 10.77.0.0/24 }\n" +
            "add element ip stratuslab guest_api { 10.77.0.1 . 8440 : 127.0.0.1 . 8440 }\n" +
            "add element ip stratuslab bridge_links { \"slbr-3\" . \"slbr-3\" }\n"));
        var linked = BridgeNetworkDriver.NetworkScript(Lab with { Linked = [4, 9, 3] });
        Assert.That(linked, Does.Contain("add element ip stratuslab bridge_links { \"slbr-3\" . \"slbr-3\", \"slbr-3\" . \"slbr-4\", \"slbr-4\" . \"slbr-3\", \"slbr-3\" . \"slbr-9\", \"slbr-9\" . \"slbr-3\" }"));
    }

    [Test]
    public void The_start_up_rewrite_replaces_both_tables_with_the_configuration_and_every_live_nic_in_one_script()
    {
        var other = new NetworkSpec(4, "lab2", Subnet.Parse("10.78.0.0/24", "cidr"), "10.78.0.1", [], null, null, null, 8440);
        var nic2 = new NicSpec(8, 0, "02:00:0a:4e:00:02", Ip("10.78.0.2"), [new PortForwardPlan(80, "0.0.0.0", 15002)], []);
        var script = BridgeNetworkDriver.RewriteScript("127.0.0.1", [(Lab, [Nic()]), (other, [nic2])]);
        var lines = script.Split('\n');
        Assert.That(lines.Take(4), Is.EqualTo(new[] { "add table ip stratuslab", "delete table ip stratuslab", "add table bridge stratuslab", "delete table bridge stratuslab" }),
            "whatever an older configuration wrote goes, whether or not the tables exist");
        Assert.That(script, Does.Contain(BridgeNetworkDriver.BaseTablesScript("127.0.0.1")));
        Assert.That(script, Does.Not.Contain("fib daddr type local"), "the PAT address is the configured one, not the one the tables had");
        Assert.That(script, Does.Contain("add element ip stratuslab masq_nets { 10.77.0.0/24 }").And.Contain("add element ip stratuslab masq_nets { 10.78.0.0/24 }"));
        Assert.That(script, Does.Contain("add element ip stratuslab pat_tcp { 15001 : 10.77.0.5 . 80 }").And.Contain("add element ip stratuslab pat_tcp { 15002 : 10.78.0.2 . 80 }"));
        Assert.That(script, Does.Contain("add element bridge stratuslab nic_in { \"sltap-8-0\" : jump nic-8-0-in }"));
        Assert.That(script, Does.Not.Contain("delete element"), "a fresh table has nothing to delete");
        Assert.That(script.IndexOf("table ip stratuslab {", StringComparison.Ordinal), Is.LessThan(script.IndexOf("add element", StringComparison.Ordinal)));

        Assert.That(BridgeNetworkDriver.RewriteScript("0.0.0.0", []).Trim().Split('\n'), Has.Length.EqualTo(4), "nothing live: the tables only go");
    }

    [TestCase("", "lab-a", new string[0])]
    [TestCase("lab-a,lab-b", "lab-a", new[] { "lab-b" })]
    [TestCase("lab-a,lab-b", "LAB-B", new[] { "lab-a" })]
    [TestCase("lab-a, lab-b ; web,db,cache", "db", new[] { "web", "cache" })]
    [TestCase("a1,b1;a1,c1", "a1", new[] { "b1", "c1" })]
    [TestCase("a1,b1;a1,c1", "b1", new[] { "a1" })]
    [TestCase("a1,b1", "c1", new string[0])]
    public void Linked_networks_are_groups_of_names(string setting, string network, string[] linked) =>
        Assert.That(new NetworkingOptions { LinkedNetworks = setting }.LinkedTo(network), Is.EqualTo(linked));

    [Test]
    public void A_listed_table_gives_its_chains_and_the_elements_of_its_sets_and_maps()
    {
        var bridge = BridgeNetworkDriver.ParseTable("""
            {"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "bridge", "name": "stratuslab", "handle": 4}},
              {"map": {"family": "bridge", "name": "nic_out", "table": "stratuslab", "type": "ifname", "handle": 5, "map": "verdict"}},
              {"map": {"family": "bridge", "name": "nic_in", "table": "stratuslab", "type": "ifname", "handle": 6, "map": "verdict",
                "elem": [["sltap-1-0", {"jump": {"target": "nic-1-0-in"}}]]}},
              {"set": {"family": "ip", "name": "masq_nets", "table": "stratuslab", "type": "ipv4_addr", "flags": ["interval"],
                "elem": [{"prefix": {"addr": "10.9.0.0", "len": 24}}]}},
              {"map": {"family": "ip", "name": "guest_api", "table": "stratuslab", "type": ["ipv4_addr", "inet_service"], "map": "ipv4_addr . inet_service",
                "elem": [[{"concat": ["10.9.0.1", 8440]}, {"concat": ["127.0.0.1", 8440]}]]}},
              {"chain": {"family": "bridge", "table": "stratuslab", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
              {"chain": {"family": "bridge", "table": "stratuslab", "name": "nic-1-0-in", "handle": 4}},
              {"rule": {"family": "bridge", "table": "stratuslab", "chain": "forward", "handle": 7, "expr": []}}]}
            """);
        Assert.That(bridge.Exists, Is.True);
        Assert.That(bridge.Chains, Is.EquivalentTo(new[] { "forward", "nic-1-0-in" }));
        Assert.That(bridge.Of("nic_in"), Is.EqualTo(new Dictionary<string, string> { ["sltap-1-0"] = "jump nic-1-0-in" }));
        Assert.That(bridge.Of("nic_out"), Is.Empty);
        Assert.That(bridge.Of("masq_nets").Keys, Is.EqualTo(new[] { "10.9.0.0/24" }));
        Assert.That(bridge.Of("guest_api"), Is.EqualTo(new Dictionary<string, string> { ["10.9.0.1 . 8440"] = "127.0.0.1 . 8440" }));
        Assert.That(BridgeNetworkDriver.ParseTable("").Exists, Is.False);
    }

    [Test]
    public void Links_are_read_with_their_bridge()
    {
        var links = BridgeNetworkDriver.ParseLinks("""
            [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"]},{"ifindex":5,"ifname":"slbr-3","flags":["UP"]},
             {"ifindex":6,"ifname":"sltap-7-0","master":"slbr-3"},{"ifindex":7,"ifname":"slvl-3","link":"eth1","master":"slbr-3"}]
            """);
        Assert.That(links, Is.EqualTo(new[] { new LinkInfo("lo", null), new LinkInfo("slbr-3", null), new LinkInfo("sltap-7-0", "slbr-3"), new LinkInfo("slvl-3", "slbr-3") }));
    }

    [TestCase("sltap-7-0", null, false)]
    [TestCase("sltap-8-0", null, true)]
    [TestCase("sl7clzi-0", "slbr-3", true)]
    [TestCase("slbr-3", null, false)]
    [TestCase("slbr-4", null, true)]
    [TestCase("slvl-4", "slbr-4", true)]
    [TestCase("slvx-3", "slbr-3", false)]
    [TestCase("slvx-4", "slbr-4", true)]
    [TestCase("eth0", null, false)]
    [TestCase("slack0", null, false)]
    [TestCase("docker0", null, false)]
    public void Only_links_named_like_ours_that_nothing_live_owns_are_orphans(string name, string? master, bool orphan) =>
        Assert.That(BridgeNetworkDriver.IsOrphan(new LinkInfo(name, master), new HashSet<string> { "sltap-7-0" }, new HashSet<long> { 3 }), Is.EqualTo(orphan));

    [TestCase("10.77.0.0/24", null)]
    [TestCase("192.0.2.128/25", "192.0.2.0/24 eth0")]
    [TestCase("172.16.0.0/12", "172.17.0.5 docker0")]
    [TestCase("10.9.0.0/16", null)]
    public void A_bridge_subnet_must_not_overlap_the_hosts_own_routes(string subnet, string? overlap)
    {
        const string routes = """
            [{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2"},
             {"dst":"172.17.0.5","dev":"docker0"},{"dst":"10.9.0.0/24","dev":"slbr-3","protocol":"kernel"}]
            """;
        var found = BridgeNetworkDriver.HostRouteOverlap(routes, Subnet.Parse(subnet, "cidr"));
        Assert.That(found is { } f ? $"{f.Destination} {f.Device}" : null, Is.EqualTo(overlap), "the default route and the server's own bridges do not count");
    }

    [Test]
    public void Dnsmasq_serves_dhcp_only_on_the_bridge_and_only_the_leases()
    {
        var args = BridgeNetworkDriver.DnsmasqArguments(Lab, "/data/networks/3");
        Assert.That(args, Is.SupersetOf(new[]
        {
            "--interface=slbr-3", "--bind-interfaces", "--except-interface=lo", "--port=0",
            "--dhcp-range=10.77.0.0,static,255.255.255.0,12h", "--dhcp-hostsfile=/data/networks/3/dhcp-hosts",
            "--pid-file=/data/networks/3/dnsmasq.pid", "--dhcp-leasefile=/data/networks/3/dnsmasq.leases",
            "--dhcp-option=option:router,10.77.0.1", "--dhcp-option=option:dns-server,10.77.0.1,9.9.9.9", "--dhcp-option=option:mtu,1400",
        }));
        var other = new NicSpec(9, 1, "02:00:0a:4d:00:03", Ip("10.77.0.3"), [], []);
        Assert.That(BridgeNetworkDriver.DhcpHosts([Nic(), other]), Is.EqualTo("02:00:0a:4d:00:03,10.77.0.3\n02:00:0a:4d:00:05,10.77.0.5\n"));
    }

    static readonly NodeSite NodeA = new("node-a", new StratusLab.Server.Platform.Host.SshTarget("root", "198.18.0.2", 22, null), "198.18.0.2");

    [Test]
    public void A_vxlan_device_is_unicast_on_the_standard_port_with_the_networks_vni_and_no_learning()
    {
        Assert.That(BridgeNetworkDriver.VxlanAddArguments(Lab with { Vni = 4096 }, "198.18.0.2"),
            Is.EqualTo(new[] { "link", "add", "slvx-3", "type", "vxlan", "id", "4096", "dstport", "4789", "local", "198.18.0.2", "nolearning" }));
        Assert.That(BridgeNetworkDriver.VxlanAddArguments(Lab with { Vni = 4097 }, null), Does.Not.Contain("local"), "the front-end's source follows its route to each node");
    }

    [Test]
    public void Flooding_entries_are_the_all_zeros_entries_with_a_destination_and_the_route_source_is_prefsrc()
    {
        const string fdb = """
            [{"mac":"00:00:00:00:00:00","dst":"198.18.0.1","flags":["self"],"state":"permanent"},
             {"mac":"00:00:00:00:00:00","dst":"198.18.0.6","flags":["self"],"state":"permanent"},
             {"mac":"2a:33:11:aa:bb:cc","flags":["self"],"state":"permanent"}]
            """;
        Assert.That(BridgeNetworkDriver.ParseFdb(fdb), Is.EqualTo(new[] { new FdbPeer("00:00:00:00:00:00", "198.18.0.1"), new FdbPeer("00:00:00:00:00:00", "198.18.0.6") }));
        Assert.That(BridgeNetworkDriver.ParseFdb(""), Is.Empty);
        Assert.That(BridgeNetworkDriver.RouteSource("""[{"dst":"198.18.0.2","dev":"sln1","prefsrc":"198.18.0.1","flags":[],"uid":0,"cache":[]}]"""), Is.EqualTo("198.18.0.1"));
        Assert.That(BridgeNetworkDriver.RouteSource("""[{"dst":"198.18.0.2","gateway":"10.0.0.1","dev":"eth0","flags":[]}]"""), Is.Null);
    }

    [Test]
    public void The_nodes_of_a_network_are_those_of_its_nics_once_each()
    {
        var b = NodeA with { Name = "node-b", Address = "198.18.0.6" };
        var nics = new[] { Nic() with { Node = b }, Nic() with { InstanceId = 8 }, Nic() with { InstanceId = 9, Node = NodeA }, Nic() with { InstanceId = 10, Node = b } };
        Assert.That(BridgeNetworkDriver.NodesOf(nics).Select(n => n.Address), Is.EqualTo(new[] { "198.18.0.2", "198.18.0.6" }));
    }

    [Test]
    public void A_vxlan_device_sends_frames_for_each_guest_on_another_node_to_that_node_alone()
    {
        var b = NodeA with { Name = "node-b", Address = "198.18.0.6" };
        var nics = new[]
        {
            Nic() with { InstanceId = 7, Mac = "02:00:0A:4D:00:07", Node = NodeA }, Nic() with { InstanceId = 8, Mac = "02:00:0a:4d:00:08" },
            Nic() with { InstanceId = 9, Mac = "02:00:0a:4d:00:09", Node = b }, Nic() with { InstanceId = 10, Mac = "02:00:0a:4d:00:0a", Node = b },
        };
        Assert.That(BridgeNetworkDriver.UnicastEntries(nics, "node-a"),
            Is.EqualTo(new[] { new FdbPeer("02:00:0a:4d:00:09", "198.18.0.6"), new FdbPeer("02:00:0a:4d:00:0a", "198.18.0.6") }), "node A: node B's guests, not its own nor the front-end's");
        Assert.That(BridgeNetworkDriver.UnicastEntries(nics, "node-b"), Is.EqualTo(new[] { new FdbPeer("02:00:0a:4d:00:07", "198.18.0.2") }), "MACs in lower case, as bridge prints them");
        Assert.That(BridgeNetworkDriver.UnicastEntries(nics, null).Select(e => e.Destination), Is.EqualTo(new[] { "198.18.0.2", "198.18.0.6", "198.18.0.6" }), "the front-end: every guest on a node");
        Assert.That(BridgeNetworkDriver.UnicastEntries([nics[1]], null), Is.Empty);
    }

    [Test]
    public void A_nic_on_a_node_has_only_its_pat_entries_in_the_front_ends_tables_and_its_chains_in_the_nodes()
    {
        var remote = Nic() with { Node = NodeA };
        var script = BridgeNetworkDriver.RewriteScript("127.0.0.1", [(Lab, [remote])]);
        Assert.That(script, Does.Contain("add element ip stratuslab pat_tcp { 15000 : 10.77.0.5 . 22 }"));
        Assert.That(script, Does.Not.Contain("nic-7-0-in"), "its filter chains are on the node");
        var node = BridgeNetworkDriver.BridgeTableScript() + BridgeNetworkDriver.NicChainsScript(remote, "sltap-7-0");
        Assert.That(node, Does.Contain("table bridge stratuslab").And.Contain("add chain bridge stratuslab nic-7-0-in").And.Contain("nic_in { \"sltap-7-0\" : jump nic-7-0-in }"));
        Assert.That(node, Does.Not.Contain("table ip").And.Not.Contain("pat_tcp"), "a node does no NAT or PAT");
    }
}
