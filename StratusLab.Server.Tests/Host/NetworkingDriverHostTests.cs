using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier, no VM: the bridge driver with the real ip, nft, sysctl and dnsmasq, every command run inside a network
/// namespace the test creates and deletes. Pre-boot makes a NIC's host side, clean removes all of it.
/// </summary>
[NonParallelizable]
public class NetworkingDriverHostTests
{
    NetworkNamespace _ns = null!;
    string _dataDir = "";
    BridgeNetworkDriver _driver = null!;

    static readonly SecurityRule[] AllowAll = [new("inbound", "accept", "all", null, null, null), new("outbound", "accept", "all", null, null, null)];

    static uint Ip(string text) => Ipv4.TryParse(text, out var a) ? a : throw new ArgumentException(text);

    static NetworkSpec Network(int? vlan = null, string? uplink = null) =>
        new(5, "lab", Subnet.Parse("10.88.0.0/24", "cidr"), "10.88.0.1", ["10.88.0.1"], 1400, vlan, uplink, 8440);

    static NicSpec Nic(long instance, string ip, int hostPort, params SecurityRule[] rules) =>
        new(instance, 0, Macs.FromAddress(Ip(ip)), Ip(ip), [new PortForwardPlan(22, "127.0.0.1", hostPort)], rules.Length == 0 ? AllowAll : rules);

    [SetUp]
    public async Task Create()
    {
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        _ns = await NetworkNamespace.CreateAsync("slnd");
        _dataDir = TempDir.Create("netdrv");
        _driver = Driver(new NetworkingOptions());
    }

    /// <summary>A driver of this test's namespace and data dir under the given configuration (as a restarted server would make it).</summary>
    BridgeNetworkDriver Driver(NetworkingOptions options)
    {
        var runner = new NamespacedCommandRunner(new CommandRunner(new LoggerAdapter<CommandRunner>(new TestLoggerProvider().CreateLogger("runner"))), _ns.Name);
        return new BridgeNetworkDriver(runner, new ServerOptions { DataDir = _dataDir }, options, new LoggerAdapter<BridgeNetworkDriver>(new TestLoggerProvider().CreateLogger("bridge")));
    }

    [TearDown]
    public async Task Remove()
    {
        if (_ns is not null) await _ns.DisposeAsync();
        TempDir.Delete(_dataDir);
    }

    async Task<JsonArray> LinksAsync() => JsonNode.Parse(await _ns.RunAsync("ip", ["-j", "-d", "link", "show"]))!.AsArray();

    async Task<string> RulesetAsync() => await _ns.RunAsync("nft", ["list", "ruleset"]);

    static int? DnsmasqPid(string dataDir)
    {
        var pidFile = Path.Combine(dataDir, "networks", "5", "dnsmasq.pid");
        if (!File.Exists(pidFile)) return null;
        var pid = int.Parse(File.ReadAllText(pidFile).Trim());
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains("dnsmasq") ? pid : null; }
        catch (IOException) { return null; }
    }

    [Test, CancelAfter(60_000)]
    public async Task Pre_boot_makes_the_bridge_tap_rules_and_dhcp_and_clean_with_the_last_nic_removes_everything()
    {
        var network = Network();
        var a = Nic(11, "10.88.0.5", 15000);
        var b = Nic(12, "10.88.0.6", 15001);
        await _driver.PreBootAsync(network, a, [a], CancellationToken.None);
        var firstDnsmasq = DnsmasqPid(_dataDir);
        await _driver.PreBootAsync(network, b, [a, b], CancellationToken.None);
        await _driver.PostBootAsync(network, b, CancellationToken.None);

        var links = await LinksAsync();
        var bridge = links.Single(l => l!["ifname"]!.GetValue<string>() == "slbr-5")!;
        Assert.That(bridge["mtu"]!.GetValue<int>(), Is.EqualTo(1400));
        Assert.That(links.Where(l => l!["master"]?.GetValue<string>() == "slbr-5").Select(l => l!["ifname"]!.GetValue<string>()), Is.EquivalentTo(new[] { "sltap-11-0", "sltap-12-0" }));
        Assert.That(await _ns.RunAsync("ip", ["-4", "-o", "addr", "show", "dev", "slbr-5"]), Does.Contain("10.88.0.1/24"));
        Assert.That((await _ns.RunAsync("sysctl", ["-n", "net.ipv4.ip_forward"])).Trim(), Is.EqualTo("1"));

        var ruleset = await RulesetAsync();
        Assert.That(ruleset, Does.Contain("chain nic-11-0-in").And.Contain("chain nic-12-0-out"));
        Assert.That(ruleset, Does.Contain("\"sltap-11-0\" : jump nic-11-0-in").And.Contain("15001 : 10.88.0.6 . 22"));
        Assert.That(ruleset, Does.Contain("10.88.0.0/24").And.Contain("10.88.0.1 . 8440 : 127.0.0.1 . 8440"));

        var pid = DnsmasqPid(_dataDir);
        Assert.That(pid, Is.Not.Null, "dnsmasq runs");
        Assert.That(pid, Is.Not.EqualTo(firstDnsmasq), "it was restarted to serve the second lease");
        Assert.That(File.ReadAllText(Path.Combine(_dataDir, "networks", "5", "dhcp-hosts")), Is.EqualTo("02:00:0a:58:00:05,10.88.0.5\n02:00:0a:58:00:06,10.88.0.6\n"));

        await _driver.CleanAsync(network, a, [b], CancellationToken.None);
        Assert.That((await LinksAsync()).Select(l => l!["ifname"]!.GetValue<string>()), Does.Not.Contain("sltap-11-0").And.Contain("sltap-12-0"));
        ruleset = await RulesetAsync();
        Assert.That(ruleset, Does.Not.Contain("nic-11-0").And.Not.Contain("15000 :"));
        Assert.That(File.ReadAllText(Path.Combine(_dataDir, "networks", "5", "dhcp-hosts")), Is.EqualTo("02:00:0a:58:00:06,10.88.0.6\n"));

        var last = DnsmasqPid(_dataDir);
        await _driver.CleanAsync(network, b, [], CancellationToken.None);
        Assert.That((await LinksAsync()).Select(l => l!["ifname"]!.GetValue<string>()), Is.EqualTo(new[] { "lo" }), "no bridge or tap is left");
        Assert.That((await RulesetAsync()).Trim(), Is.Empty, "no nft table or rule is left");
        Assert.That(File.Exists($"/proc/{last}/cmdline") && File.ReadAllText($"/proc/{last}/cmdline").Contains("dnsmasq"), Is.False, "dnsmasq is stopped");
        Assert.That(Directory.Exists(Path.Combine(_dataDir, "networks", "5")), Is.False);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_vlan_network_hangs_an_802_1q_link_of_its_uplink_on_the_bridge()
    {
        // A veth end stands in for the host NIC that carries the VLANs.
        await _ns.RunAsync("ip", ["link", "add", "sluplink0", "type", "veth", "peer", "name", "sluplink1"]);
        var probe = await _ns.TryAsync("ip", ["link", "add", "link", "sluplink0", "name", "slprobe", "type", "vlan", "id", "42"]);
        if (probe.Exit != 0) Assert.Ignore($"this kernel cannot make 802.1Q VLAN links (CONFIG_VLAN_8021Q): {probe.Err.Trim()}");
        await _ns.RunAsync("ip", ["link", "del", "slprobe"]);
        var network = Network(vlan: 42, uplink: "sluplink0");
        var nic = Nic(21, "10.88.0.7", 15002);
        await _driver.PreBootAsync(network, nic, [nic], CancellationToken.None);
        var vlan = (await LinksAsync()).Single(l => l!["ifname"]!.GetValue<string>() == "slvl-5")!;
        Assert.That(vlan["master"]!.GetValue<string>(), Is.EqualTo("slbr-5"));
        Assert.That(vlan["linkinfo"]!["info_kind"]!.GetValue<string>(), Is.EqualTo("vlan"));
        Assert.That(vlan["linkinfo"]!["info_data"]!["id"]!.GetValue<int>(), Is.EqualTo(42));
        await _driver.CleanAsync(network, nic, [], CancellationToken.None);
        Assert.That((await LinksAsync()).Select(l => l!["ifname"]!.GetValue<string>()), Is.EquivalentTo(new[] { "lo", "sluplink0", "sluplink1" }), "the uplink stays, the VLAN link goes");
    }

    [Test, CancelAfter(60_000)]
    public async Task Changed_rules_rewrite_a_nics_chains_in_place()
    {
        var network = Network();
        var nic = Nic(31, "10.88.0.8", 15003);
        await _driver.PreBootAsync(network, nic, [nic], CancellationToken.None);
        var blocked = nic with { Rules = [.. AllowAll, new SecurityRule("inbound", "drop", "tcp", 80, 80, "10.88.0.0/24")] };
        await _driver.ApplyRulesAsync(network, blocked, CancellationToken.None);
        var chain = await _ns.RunAsync("nft", ["list", "chain", "bridge", "stratuslab", "nic-31-0-in"]);
        Assert.That(chain, Does.Contain("ip saddr 10.88.0.0/24 tcp dport 80 drop"));
        await _driver.ApplyRulesAsync(network, nic, CancellationToken.None);
        Assert.That(await _ns.RunAsync("nft", ["list", "chain", "bridge", "stratuslab", "nic-31-0-in"]), Does.Not.Contain("dport 80 drop"));
        await _driver.CleanAsync(network, nic, [], CancellationToken.None);
    }

    [Test, CancelAfter(60_000)]
    public async Task Reconciliation_makes_again_what_a_live_nic_lost_and_removes_what_nothing_owns()
    {
        var network = Network();
        var live = Nic(41, "10.88.0.9", 15004);
        var gone = Nic(42, "10.88.0.10", 15005);
        await _driver.PreBootAsync(network, live, [live], CancellationToken.None);
        await _driver.PreBootAsync(network, gone, [live, gone], CancellationToken.None);
        // What a crash or a host change can leave: the live NIC lost its tap and the whole ruleset was flushed.
        await _ns.RunAsync("ip", ["link", "del", "sltap-41-0"]);
        await _ns.RunAsync("nft", ["flush", "ruleset"]);

        await _driver.ReconcileAsync([(network, [live])], CancellationToken.None);
        var names = (await LinksAsync()).Select(l => l!["ifname"]!.GetValue<string>()).ToList();
        Assert.That(names, Does.Contain("sltap-41-0").And.Not.Contain("sltap-42-0"));
        var ruleset = await RulesetAsync();
        Assert.That(ruleset, Does.Contain("nic-41-0-in").And.Not.Contain("nic-42-0"));
        Assert.That(File.ReadAllText(Path.Combine(_dataDir, "networks", "5", "dhcp-hosts")), Is.EqualTo("02:00:0a:58:00:09,10.88.0.9\n"));

        await _driver.ReconcileAsync([], CancellationToken.None);
        Assert.That((await LinksAsync()).Select(l => l!["ifname"]!.GetValue<string>()), Is.EqualTo(new[] { "lo" }));
        Assert.That((await RulesetAsync()).Trim(), Is.Empty);
        Assert.That(DnsmasqPid(_dataDir), Is.Null);
    }

    [Test, CancelAfter(60_000)]
    public async Task Reconciliation_rewrites_the_tables_from_the_configuration_so_a_narrowed_or_widened_pat_address_takes_effect()
    {
        var network = Network();
        var nic = Nic(51, "10.88.0.11", 15006);
        const string Everywhere = "fib daddr type local dnat ip to tcp dport map @pat_tcp";
        const string Loopback = "ip daddr 127.0.0.1 dnat ip to tcp dport map @pat_tcp";
        await Driver(new NetworkingOptions { PatAddress = "0.0.0.0" }).PreBootAsync(network, nic, [nic], CancellationToken.None);
        var before = await RulesetAsync();
        Assert.That(before, Does.Contain(Everywhere), "the first server opened PAT on every address");

        // A restart with the default 127.0.0.1: the tables are still there (the NIC lives), but they are rewritten.
        await Driver(new NetworkingOptions()).ReconcileAsync([(network, [nic])], CancellationToken.None);
        var narrowed = await RulesetAsync();
        Assert.That(narrowed, Does.Not.Contain("fib daddr type local"), "no PAT rule for every address survives");
        Assert.That(narrowed, Does.Contain(Loopback));
        Assert.That(narrowed, Does.Contain("15006 : 10.88.0.11 . 22").And.Contain("chain nic-51-0-in").And.Contain("\"sltap-51-0\" : jump nic-51-0-in"),
            "the running NIC keeps its forward and its filters");
        Assert.That(narrowed, Does.Contain("10.88.0.0/24").And.Contain("10.88.0.1 . 8440 : 127.0.0.1 . 8440"));
        Assert.That((await LinksAsync()).Select(l => l!["ifname"]!.GetValue<string>()), Does.Contain("sltap-51-0").And.Contain("slbr-5"));

        // And the other way round, with a link to another network on top.
        await Driver(new NetworkingOptions { PatAddress = "0.0.0.0" }).ReconcileAsync([(network with { Linked = [6] }, [nic])], CancellationToken.None);
        var widened = await RulesetAsync();
        Assert.That(widened, Does.Contain(Everywhere).And.Not.Contain(Loopback));
        Assert.That(widened, Does.Contain("15006 : 10.88.0.11 . 22"));
        Assert.That(widened, Does.Contain("\"slbr-5\" . \"slbr-6\"").And.Contain("\"slbr-6\" . \"slbr-5\""));
        Assert.That(widened.Split('\n').Count(l => l.Trim() == "table ip stratuslab {"), Is.EqualTo(1), "one table, replaced, not a second one");

        await _driver.CleanAsync(network, nic, [], CancellationToken.None);
        Assert.That((await RulesetAsync()).Trim(), Is.Empty, "the links of a removed network go with it, and so do the tables");
    }
}
