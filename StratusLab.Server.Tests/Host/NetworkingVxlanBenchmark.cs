using System.Globalization;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Figures for the note: one-stream TCP throughput VM to VM on one bridge (two appliance VMs on the front-end), across the
/// VXLAN from a node to the front-end, and across the VXLAN node to node (two SSH nodes), in the same run
/// (GuestThroughput: busybox dd | nc in the guests; the receiver counts every byte). Not part of the suite: run
/// scripts/bench/networking-vxlan.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/networking-vxlan.sh")]
[Category("Benchmark")]
[NonParallelizable]
public class NetworkingVxlanBenchmark
{
    [Test, CancelAfter(900_000)]
    public async Task Throughput_vm_to_vm_across_the_vxlan_and_on_one_bridge()
    {
        HostTools.AppliancePath();
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        await using var span = await SpanningSetup.StartAsync("slvb", nodes: 2);
        await span.NetworkAsync("span", "10.79.0.0/24", "10.79.0.1", ["default"]);
        var ids = new[]
        {
            await span.RunOnAsync("front-a", span.LocalName), await span.RunOnAsync("front-b", span.LocalName),
            await span.RunOnAsync("node-c", SpanningSetup.NodeName), await span.RunOnAsync("node-d", SpanningSetup.NodeBName),
        };
        var vms = new List<JsonNode>();
        foreach (var id in ids) vms.Add(await span.ReadyAsync(id));
        var (a, b, c, d) = (vms[0], vms[1], vms[2], vms[3]);
        // The same MTU everywhere (the network's, VXLAN's 50 bytes less), so only the path differs.
        foreach (var vm in vms) await span.SshAsync(vm, "ip link set dev eth0 mtu 1450");
        var bench = new GuestThroughput((vm, command) => span.SshAsync(vm, command, timeoutSeconds: 400), 32);
        Task<double> Transfer(JsonNode from, JsonNode to, int port) => bench.GuestToGuestAsync(from, to, SpanningSetup.Ip(to), port);

        var bridge = await Transfer(a, b, 5001);
        var toFront = await Transfer(c, a, 5002);
        var nodeToNode = await Transfer(c, d, 5003);
        var bridgeAgain = await Transfer(b, a, 5004);
        var onBridge = (bridge + bridgeAgain) / 2;
        string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        GuestThroughput.Report(F($"VM to VM on one bridge (front-end, tap to tap): {bridge:0.0} MiB/s, again {bridgeAgain:0.0} MiB/s"));
        GuestThroughput.Report(F($"VM to VM across the VXLAN, node to front-end (veth underlay): {toFront:0.0} MiB/s, ratio to one bridge {toFront / onBridge:0.00}"));
        GuestThroughput.Report(F($"VM to VM across the VXLAN, node to node (routed veth underlay): {nodeToNode:0.0} MiB/s, ratio to one bridge {nodeToNode / onBridge:0.00}"));
        GuestThroughput.Report(bench.Describe(a, ", MTU 1450"));
        foreach (var id in ids) await span.TerminateAsync(id);
    }
}
