using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier, inside namespaces the test creates and deletes: the real server runs in one (the front-end, with its
/// dnsmasq, NAT, PAT and nft rules), two SSH nodes in two others, each behind a veth pair into the front-end's namespace,
/// which routes between them (the VXLAN underlay runs on those pairs only). One bridge network spans both nodes: an
/// appliance VM on each gets its lease from the front-end's dnsmasq, they reach each other over VXLAN node to node (ping
/// and HTTP, both ways), a PAT port on the front-end reaches the VM on node B, a security-group rule applied on the node
/// blocks it, the flooding lists follow the nodes joining and leaving, a server restart re-makes a node's lost bridge,
/// VXLAN and rules, and terminating both leaves nothing anywhere.
/// </summary>
[NonParallelizable]
public class NetworkingVxlanHostTests
{
    [Test, CancelAfter(900_000)]
    public async Task Two_vms_on_two_ssh_nodes_share_a_bridge_network_over_vxlan_with_dhcp_pat_node_side_security_groups_and_a_restart_and_leave_nothing_behind()
    {
        HostTools.AppliancePath();
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        await using var span = await SpanningSetup.StartAsync("slsp", nodes: 2);
        var (ns, nodeA, nodeB, http) = (span.FrontEnd, span.Nodes[0], span.Nodes[1], span.Http);

        await (await http.PostAsJsonAsync("/api/v1/security-groups", new { name = "span-fw", description = "rules the test adds" })).Json(201);
        var networkId = await span.NetworkAsync("span", "10.79.0.0/24", "10.79.0.1", ["default", "span-fw"]);
        var vxlan = $"slvx-{networkId}";

        // Node A joins first: it floods to the front-end only, the front-end to it only; node B has nothing yet.
        var onA = await span.RunOnAsync("vm-a", SpanningSetup.NodeName);
        Assert.That((await InstanceApiTests.WaitAsync(http, onA, "RUNNING", 300))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(await SpanningSetup.FloodingAsync(nodeA.Namespace, vxlan), Is.EqualTo(new[] { nodeA.HostAddress }), "node A floods to the front-end");
        Assert.That(await SpanningSetup.FloodingAsync(ns, vxlan), Is.EqualTo(new[] { nodeA.Address }), "the front-end floods to node A");
        Assert.That(await nodeB.Namespace.RunAsync("ip", ["-o", "link", "show"]), Does.Not.Contain("slbr-").And.Not.Contain("slvx-"), "node B carries nothing yet");

        // Node B joins with its first NIC of the network: every list gains it (full mesh, head-end replication).
        var onB = await span.RunOnAsync("vm-b", SpanningSetup.NodeBName);
        var (a, b) = (await span.ReadyAsync(onA), await span.ReadyAsync(onB));
        Assert.That(a["host"]!.GetValue<string>(), Is.EqualTo(SpanningSetup.NodeName));
        Assert.That(b["host"]!.GetValue<string>(), Is.EqualTo(SpanningSetup.NodeBName));
        var (aIp, bIp) = (SpanningSetup.Ip(a), SpanningSetup.Ip(b));
        async Task AssertFullMeshAsync(string when)
        {
            Assert.That(await SpanningSetup.FloodingAsync(nodeA.Namespace, vxlan), Is.EquivalentTo(new[] { nodeA.HostAddress, nodeB.Address }), "node A floods to the front-end and node B " + when);
            Assert.That(await SpanningSetup.FloodingAsync(nodeB.Namespace, vxlan), Is.EquivalentTo(new[] { nodeB.HostAddress, nodeA.Address }), "node B floods to the front-end and node A " + when);
            Assert.That(await SpanningSetup.FloodingAsync(ns, vxlan), Is.EquivalentTo(new[] { nodeA.Address, nodeB.Address }), "the front-end floods to both nodes " + when);
            // Frames for a guest go to its node alone.
            Assert.That(await SpanningSetup.FloodingAsync(nodeA.Namespace, vxlan, SpanningSetup.Mac(b)), Is.EqualTo(new[] { nodeB.Address }), "node A sends node B's guest's frames to node B " + when);
            Assert.That(await SpanningSetup.FloodingAsync(nodeB.Namespace, vxlan, SpanningSetup.Mac(a)), Is.EqualTo(new[] { nodeA.Address }), "node B sends node A's guest's frames to node A " + when);
            Assert.That(await SpanningSetup.FloodingAsync(ns, vxlan, SpanningSetup.Mac(a)), Is.EqualTo(new[] { nodeA.Address }), "the front-end sends node A's guest's frames to node A " + when);
            Assert.That(await SpanningSetup.FloodingAsync(ns, vxlan, SpanningSetup.Mac(b)), Is.EqualTo(new[] { nodeB.Address }), "and node B's to node B " + when);
        }
        await AssertFullMeshAsync("once node B joined");

        // Each node carries the network on its own bridge, with a unicast VXLAN of the same VNI as the front-end's.
        var frontVxlan = await ns.RunAsync("ip", ["-d", "-o", "link", "show", "dev", vxlan]);
        var vni = frontVxlan[frontVxlan.IndexOf("vxlan id ", StringComparison.Ordinal)..].Split(' ')[2];
        foreach (var (node, id) in new[] { (nodeA, onA), (nodeB, onB) })
        {
            var links = await node.Namespace.RunAsync("ip", ["-d", "-o", "link", "show"]);
            Assert.That(links, Does.Contain($"slbr-{networkId}").And.Contain($"sltap-{id}-0"), "the node has the network's bridge and its VM's tap");
            Assert.That(await node.Namespace.RunAsync("ip", ["-d", "-o", "link", "show", "dev", vxlan]), Does.Contain($"vxlan id {vni} ").And.Contain($"local {node.Address}")
                .And.Contain("dstport 4789").And.Contain("nolearning").And.Contain($"master slbr-{networkId}"));
        }

        // DHCP from the front-end's dnsmasq for both, over VXLAN.
        var leases = await File.ReadAllTextAsync(Path.Combine(span.DataDir, "networks", networkId.ToString(), "dnsmasq.leases"));
        Assert.That(leases, Does.Contain($"{SpanningSetup.Mac(a)} {aIp}").And.Contain($"{SpanningSetup.Mac(b)} {bIp}"), "both guests asked the front-end's dnsmasq");
        // PAT on the front-end reaches the VMs on the nodes (SSH through their forwarded port 22).
        Assert.That(await span.SshAsync(a, "ip -4 -o addr show dev eth0; hostname"), Does.Contain($"inet {aIp}/24").And.Contain("vm-a"));
        Assert.That(await span.SshAsync(b, "ip -4 -o addr show dev eth0; hostname"), Does.Contain($"inet {bIp}/24").And.Contain("vm-b"));
        Assert.That(await span.SshAsync(b, ". /mnt/context/context.sh; echo \"mtu $ETH0_MTU\""), Does.Contain("mtu 1450"),
            "guests of bridge networks get VXLAN's 50 bytes less once an SSH node exists");
        var dnsmasq = "";
        foreach (var pid in await ns.PidsAsync())
        {
            try { if (File.ReadAllText($"/proc/{pid}/cmdline") is var c && c.Contains("dnsmasq")) dnsmasq += c.Replace('\0', ' '); } catch (IOException) { }
        }
        Assert.That(dnsmasq, Does.Contain("--dhcp-option=option:mtu,1450"), "and DHCP says so");
        // The appliance's DHCP client ignores the MTU option; set what the network says.
        foreach (var vm in new[] { a, b }) await span.SshAsync(vm, "ip link set dev eth0 mtu 1450");

        // Node to node: the front-end's bridge never sends a frame back out of the VXLAN port it came in by, so these
        // only pass if each node floods to the other directly.
        async Task AssertNodeToNodeAsync(string when)
        {
            Assert.That(await span.EventuallyAsync(() => span.SshAsync(a, $"ping -c 2 -W 3 {bIp} >/dev/null && echo ping-ok", false), "ping-ok"), Does.Contain("ping-ok"), "ping node A's VM to node B's " + when);
            Assert.That(await span.EventuallyAsync(() => span.SshAsync(b, $"ping -c 2 -W 3 {aIp} >/dev/null && echo ping-ok", false), "ping-ok"), Does.Contain("ping-ok"), "ping node B's VM to node A's " + when);
            Assert.That(await span.EventuallyAsync(() => span.SshAsync(a, $"{SpanningSetup.HttpGet} {bIp} 80"), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"), "HTTP node A to node B " + when);
            Assert.That(await span.EventuallyAsync(() => span.SshAsync(b, $"{SpanningSetup.HttpGet} {aIp} 80"), "<h1>vm-a</h1>"), Does.Contain("<h1>vm-a</h1>"), "HTTP node B to node A " + when);
            Assert.That(await span.EventuallyAsync(() => span.CurlAsync(b), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"), "node B's VM's port 80 through its PAT port on the front-end " + when);
        }
        await AssertNodeToNodeAsync("");

        // Node-to-node traffic does not reach the front-end (nor would it any other node): counted as it comes out of the
        // front-end's VXLAN device, against traffic to the gateway that must.
        await ns.RunAsync("nft", ["add", "table", "netdev", "slprobe"]);
        await ns.RunAsync("nft", ["add", "chain", "netdev", "slprobe", "in", $"{{ type filter hook ingress device \"{vxlan}\" priority 0; policy accept; }}"]);
        await ns.RunAsync("nft", ["add", "rule", "netdev", "slprobe", "in", "ip", "saddr", aIp, "ip", "daddr", bIp, "counter"]);
        await ns.RunAsync("nft", ["add", "rule", "netdev", "slprobe", "in", "ip", "saddr", aIp, "ip", "daddr", "10.79.0.1", "counter"]);
        await span.SshAsync(a, $"ping -c 5 -i 0.3 -W 3 {bIp}; ping -c 2 -W 3 10.79.0.1", mustSucceed: false);
        var counters = System.Text.RegularExpressions.Regex.Matches(await ns.RunAsync("nft", ["list", "table", "netdev", "slprobe"]), @"counter packets (\d+)")
            .Select(m => int.Parse(m.Groups[1].Value)).ToList();
        await ns.RunAsync("nft", ["delete", "table", "netdev", "slprobe"]);
        Assert.That(counters, Has.Count.EqualTo(2));
        Assert.That(counters[1], Is.GreaterThanOrEqualTo(2), "the gateway's pings came in through the front-end's VXLAN");
        Assert.That(counters[0], Is.Zero, "node A's guest's frames for node B's went to node B alone");

        // Security groups apply on the node: node B's VM's chains live in node B's table, not the front-end's nor node A's.
        Assert.That(await nodeB.Namespace.RunAsync("nft", ["list", "table", "bridge", "stratuslab"]), Does.Contain($"nic-{onB}-0-in").And.Not.Contain($"nic-{onA}-0-in"));
        Assert.That(await nodeA.Namespace.RunAsync("nft", ["list", "table", "bridge", "stratuslab"]), Does.Contain($"nic-{onA}-0-in").And.Not.Contain($"nic-{onB}-0-in"));
        Assert.That((await ns.TryAsync("nft", ["list", "table", "bridge", "stratuslab"])).Out, Does.Not.Contain("nic-"), "the front-end holds no NIC chain");
        var rule = await (await http.PostAsJsonAsync("/api/v1/security-groups/span-fw/rules", new { direction = "inbound", protocol = "tcp", ports = "80", action = "drop" })).Json(201);
        Assert.That(await nodeB.Namespace.RunAsync("nft", ["list", "chain", "bridge", "stratuslab", $"nic-{onB}-0-in"]), Does.Contain("tcp dport 80 drop"), "the rule is on the node");
        Assert.That(await span.SshAsync(a, $"{SpanningSetup.HttpGet} {bIp} 80; echo done"), Does.Not.Contain("vm-b"), "port 80 of node B's VM is blocked for node A's VM");
        Assert.That(await span.CurlAsync(b), Is.Empty, "and through PAT");
        Assert.That(await span.EventuallyAsync(() => span.SshAsync(a, $"ping -c 1 -W 3 {bIp} >/dev/null && echo ping-ok", false), "ping-ok"), Does.Contain("ping-ok"), "what the rule does not name still passes");
        await (await http.DeleteAsync($"/api/v1/security-groups/span-fw/rules/{rule["id"]}")).Json(204);
        Assert.That(await span.EventuallyAsync(() => span.CurlAsync(b), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"), "removing the rule opens the port again");

        // Node A loses its network state (as after a reboot of its network): bridge, VXLAN and rules gone, the VM's tap
        // (QEMU holds it) left off any bridge. A restarted server makes them again, and traffic flows again.
        await nodeA.Namespace.RunAsync("ip", ["link", "del", "dev", vxlan]);
        await nodeA.Namespace.RunAsync("ip", ["link", "del", "dev", $"slbr-{networkId}"]);
        await nodeA.Namespace.RunAsync("nft", ["delete", "table", "bridge", "stratuslab"]);
        Assert.That(await span.SshAsync(b, $"ping -c 1 -W 2 {aIp} >/dev/null && echo ping-ok", false), Does.Not.Contain("ping-ok"), "node A's VM is cut off");
        await span.RestartServerAsync();
        http = span.Http;
        var tapA = await nodeA.Namespace.RunAsync("ip", ["-d", "-o", "link", "show", "dev", $"sltap-{onA}-0"]);
        Assert.That(tapA, Does.Contain($"master slbr-{networkId}"), "the VM's tap is on the node's bridge again\n" + span.ServerLog);
        Assert.That(await nodeA.Namespace.RunAsync("ip", ["-d", "-o", "link", "show", "dev", vxlan]), Does.Contain($"vxlan id {vni} ").And.Contain($"local {nodeA.Address}").And.Contain($"master slbr-{networkId}"));
        await AssertFullMeshAsync("after the restart");
        Assert.That(await nodeA.Namespace.RunAsync("nft", ["list", "table", "bridge", "stratuslab"]), Does.Contain($"nic-{onA}-0-in"), "node A's chains are back");
        Assert.That((await ns.TryAsync("nft", ["list", "table", "bridge", "stratuslab"])).Out, Does.Not.Contain("nic-"), "and not on the front-end");
        Assert.That((await InstanceApiTests.WaitAsync(http, onA, "RUNNING", 60))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), "node A's VM was re-attached");
        await AssertNodeToNodeAsync("after the restart");

        // Node A's last NIC of the network leaves: its bridge, VXLAN, tap and table go, and the others stop flooding to it.
        await span.TerminateAsync(onA);
        Assert.That(await nodeA.Namespace.RunAsync("ip", ["-o", "link", "show"]), Does.Not.Contain("slbr-").And.Not.Contain("slvx-").And.Not.Contain("sltap-"), "nothing of the network is left on node A");
        Assert.That((await nodeA.Namespace.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty, "no nft rule is left on node A");
        Assert.That(await SpanningSetup.FloodingAsync(nodeB.Namespace, vxlan), Is.EqualTo(new[] { nodeB.HostAddress }), "node B floods to the front-end only");
        Assert.That(await SpanningSetup.FloodingAsync(ns, vxlan), Is.EqualTo(new[] { nodeB.Address }), "the front-end floods to node B only");
        Assert.That(await span.EventuallyAsync(() => span.CurlAsync(b), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"), "node B's VM is untouched");

        await span.TerminateAsync(onB);
        Assert.That(await nodeB.Namespace.RunAsync("ip", ["-o", "link", "show"]), Does.Not.Contain("slbr-").And.Not.Contain("slvx-").And.Not.Contain("sltap-"), "nothing of the network is left on node B");
        Assert.That((await nodeB.Namespace.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty, "no nft rule is left on node B");
        await span.AssertFrontEndCleanAsync();
    }

    [Test, CancelAfter(300_000)]
    public async Task A_node_that_lost_its_bridge_tool_after_the_probe_refuses_a_bridge_nic_at_start_and_nothing_is_left_on_either_side()
    {
        HostTools.AppliancePath();
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        await using var span = await SpanningSetup.StartAsync("slvf", new Dictionary<string, string> { ["Scheduling:NodeProbeIntervalSeconds"] = "3600" });
        var node = span.Node;
        // Every tool of the node's PATH but 'bridge' (iproute2's), as links in a directory of the node's own.
        var bin = Path.Combine(node.Directory, "bin");
        Directory.CreateDirectory(bin);
        foreach (var dir in new[] { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin" }.Where(Directory.Exists))
            foreach (var tool in Directory.GetFiles(dir).Where(t => Path.GetFileName(t) != "bridge"))
                if (!File.Exists(Path.Combine(bin, Path.GetFileName(tool)))) File.CreateSymbolicLink(Path.Combine(bin, Path.GetFileName(tool)), tool);
        await node.RestartSshdWithPathAsync(bin);

        var networkId = await span.NetworkAsync("span", "10.79.0.0/24", "10.79.0.1", ["default"]);
        var id = await span.RunOnAsync("vm-node", SpanningSetup.NodeName);
        var failed = await InstanceApiTests.WaitAsync(span.Http, id, "FAILED", 120);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain($"node {SpanningSetup.NodeName} cannot carry bridge network 'span': bridge missing on the node")
            .And.Contain("iproute2"), failed.ToJsonString());
        Assert.That(await node.Namespace.RunAsync("ip", ["-o", "link", "show"]), Does.Not.Contain("slbr-").And.Not.Contain("slvx-").And.Not.Contain("sltap-"), "nothing was made on the node");
        Assert.That((await node.Namespace.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty);
        Assert.That(Directory.Exists(Path.Combine(span.DataDir, "networks", networkId.ToString())), Is.False, "no dnsmasq state on the front-end");
        // The failed start rolled back: the FAILED instance holds no lease, and the front-end has no bridge, VXLAN, rule or dnsmasq.
        await span.AssertFrontEndCleanAsync();
        Assert.That((await (await span.Http.GetAsync("/api/v1/networks/span/leases?state=used")).Json(200)).AsArray(), Is.Empty, "no lease is left");
    }
}
