using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier, inside namespaces the test creates and deletes: the real server runs in one (the front-end, with its QEMU,
/// dnsmasq and nft rules), an SSH node in another behind a veth pair into the front-end's namespace (the VXLAN underlay
/// runs on that pair only). One bridge network spans both: an appliance VM on the node and one on the front-end get their
/// leases from the front-end's dnsmasq, reach each other over VXLAN, the node's VM is reached through a PAT port on the
/// front-end, a security-group rule applied on the node blocks it, and terminating both leaves nothing on either side.
/// </summary>
[NonParallelizable]
public class NetworkingVxlanHostTests
{
    [Test, CancelAfter(600_000)]
    public async Task A_bridge_network_spans_an_ssh_node_over_vxlan_with_dhcp_pat_and_node_side_security_groups_and_leaves_nothing_behind()
    {
        HostTools.AppliancePath();
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        await using var span = await SpanningSetup.StartAsync("slsp");
        var (ns, node, http) = (span.FrontEnd, span.Node, span.Http);

        await (await http.PostAsJsonAsync("/api/v1/security-groups", new { name = "span-fw", description = "rules the test adds" })).Json(201);
        var networkId = await span.NetworkAsync("span", "10.79.0.0/24", "10.79.0.1", ["default", "span-fw"]);
        var onNode = await span.RunOnAsync("vm-node", SpanningSetup.NodeName);
        var onFront = await span.RunOnAsync("vm-front", span.LocalName);
        var (n, f) = (await span.ReadyAsync(onNode), await span.ReadyAsync(onFront));
        Assert.That(n["host"]!.GetValue<string>(), Is.EqualTo(SpanningSetup.NodeName));
        Assert.That(f["host"]!.GetValue<string>(), Is.EqualTo(span.LocalName));
        var (nIp, fIp) = (SpanningSetup.Ip(n), SpanningSetup.Ip(f));

        // The node carries the network on its own bridge, with a unicast VXLAN to the front-end; the front-end floods to the node.
        var vxlan = $"slvx-{networkId}";
        var nodeLinks = await node.Namespace.RunAsync("ip", ["-d", "-o", "link", "show"]);
        Assert.That(nodeLinks, Does.Contain($"slbr-{networkId}").And.Contain($"sltap-{onNode}-0"), "the node has the network's bridge and the VM's tap");
        var nodeVxlan = await node.Namespace.RunAsync("ip", ["-d", "-o", "link", "show", "dev", vxlan]);
        Assert.That(nodeVxlan, Does.Contain("vxlan id ").And.Contain($"local {node.Address}").And.Contain("dstport 4789").And.Contain("nolearning").And.Contain($"master slbr-{networkId}"));
        Assert.That(await node.Namespace.RunAsync("bridge", ["fdb", "show", "dev", vxlan]), Does.Contain($"00:00:00:00:00:00 dst {node.HostAddress}"), "the node floods to the front-end");
        Assert.That(await ns.RunAsync("bridge", ["fdb", "show", "dev", vxlan]), Does.Contain($"00:00:00:00:00:00 dst {node.Address}"), "the front-end floods to the node");
        var frontVxlan = await ns.RunAsync("ip", ["-d", "-o", "link", "show", "dev", vxlan]);
        Assert.That(frontVxlan, Does.Contain(nodeVxlan[nodeVxlan.IndexOf("vxlan id ", StringComparison.Ordinal)..].Split(' ')[2]), "the same VNI on both ends");

        // DHCP from the front-end's dnsmasq for both, the node's over VXLAN.
        var leases = await File.ReadAllTextAsync(Path.Combine(span.DataDir, "networks", networkId.ToString(), "dnsmasq.leases"));
        Assert.That(leases, Does.Contain($"{SpanningSetup.Mac(n)} {nIp}").And.Contain($"{SpanningSetup.Mac(f)} {fIp}"), "both guests asked the front-end's dnsmasq");
        // PAT on the front-end reaches the VM on the node (SSH through its forwarded port 22).
        Assert.That(await span.SshAsync(n, "ip -4 -o addr show dev eth0; hostname"), Does.Contain($"inet {nIp}/24").And.Contain("vm-node"));
        Assert.That(await span.SshAsync(n, ". /mnt/context/context.sh; echo \"mtu $ETH0_MTU\""), Does.Contain("mtu 1450"),
            "guests of bridge networks get VXLAN's 50 bytes less once an SSH node exists");
        var dnsmasq = "";
        foreach (var pid in await ns.PidsAsync())
        {
            try { if (File.ReadAllText($"/proc/{pid}/cmdline") is var c && c.Contains("dnsmasq")) dnsmasq += c.Replace('\0', ' '); } catch (IOException) { }
        }
        Assert.That(dnsmasq, Does.Contain("--dhcp-option=option:mtu,1450"), "and DHCP says so");
        // The appliance's DHCP client ignores the MTU option; set what the network says.
        foreach (var vm in new[] { n, f }) await span.SshAsync(vm, "ip link set dev eth0 mtu 1450");

        Assert.That(await span.EventuallyAsync(() => span.SshAsync(f, $"ping -c 2 -W 3 {nIp} >/dev/null && echo ping-ok", false), "ping-ok"), Does.Contain("ping-ok"), "front-end VM to node VM");
        Assert.That(await span.EventuallyAsync(() => span.SshAsync(f, $"{SpanningSetup.HttpGet} {nIp} 80"), "<h1>vm-node</h1>"), Does.Contain("<h1>vm-node</h1>"), "TCP across the VXLAN");
        Assert.That(await span.EventuallyAsync(() => span.SshAsync(n, $"{SpanningSetup.HttpGet} {fIp} 80"), "<h1>vm-front</h1>"), Does.Contain("<h1>vm-front</h1>"), "and back");
        Assert.That(await span.EventuallyAsync(() => span.CurlAsync(n), "<h1>vm-node</h1>"), Does.Contain("<h1>vm-node</h1>"), "the node VM's port 80 through its PAT port on the front-end");

        // Security groups apply on the node: the node VM's chains live in the node's table, not the front-end's.
        Assert.That(await node.Namespace.RunAsync("nft", ["list", "table", "bridge", "stratuslab"]), Does.Contain($"nic-{onNode}-0-in"));
        Assert.That((await ns.TryAsync("nft", ["list", "table", "bridge", "stratuslab"])).Out, Does.Not.Contain($"nic-{onNode}-0-in").And.Contain($"nic-{onFront}-0-in"));
        var rule = await (await http.PostAsJsonAsync("/api/v1/security-groups/span-fw/rules", new { direction = "inbound", protocol = "tcp", ports = "80", action = "drop" })).Json(201);
        Assert.That(await node.Namespace.RunAsync("nft", ["list", "chain", "bridge", "stratuslab", $"nic-{onNode}-0-in"]), Does.Contain("tcp dport 80 drop"), "the rule is on the node");
        Assert.That(await span.SshAsync(f, $"{SpanningSetup.HttpGet} {nIp} 80; echo done"), Does.Not.Contain("vm-node"), "port 80 of the node VM is blocked for the front-end VM");
        Assert.That(await span.CurlAsync(n), Is.Empty, "and through PAT");
        Assert.That(await span.EventuallyAsync(() => span.SshAsync(f, $"ping -c 1 -W 3 {nIp} >/dev/null && echo ping-ok", false), "ping-ok"), Does.Contain("ping-ok"), "what the rule does not name still passes");
        await (await http.DeleteAsync($"/api/v1/security-groups/span-fw/rules/{rule["id"]}")).Json(204);
        Assert.That(await span.EventuallyAsync(() => span.CurlAsync(n), "<h1>vm-node</h1>"), Does.Contain("<h1>vm-node</h1>"), "removing the rule opens the port again");

        // The node VM leaves first: the node's bridge, VXLAN, tap and table go, and the front-end stops flooding to it.
        await span.TerminateAsync(onNode);
        var nodeAfter = await node.Namespace.RunAsync("ip", ["-o", "link", "show"]);
        Assert.That(nodeAfter, Does.Not.Contain("slbr-").And.Not.Contain("slvx-").And.Not.Contain("sltap-"), "nothing of the network is left on the node");
        Assert.That((await node.Namespace.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty, "no nft rule is left on the node");
        Assert.That(await ns.RunAsync("ip", ["-o", "link", "show"]), Does.Not.Contain("slvx-"), "the front-end's VXLAN goes with the network's last node");
        Assert.That(await span.SshAsync(f, "hostname"), Does.Contain("vm-front"), "the front-end VM is untouched");

        await span.TerminateAsync(onFront);
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
