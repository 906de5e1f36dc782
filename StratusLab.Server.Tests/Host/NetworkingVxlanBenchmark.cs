using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Figures for the note: one-stream TCP throughput VM to VM on one bridge (two appliance VMs on the front-end) and across
/// the VXLAN (a VM on an SSH node to one on the front-end), in the same run, with busybox dd | nc in the guests; the
/// receiver counts every byte. Not part of the suite: run scripts/bench/networking-vxlan.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/networking-vxlan.sh")]
[Category("Benchmark")]
[NonParallelizable]
public partial class NetworkingVxlanBenchmark
{
    const int BlockKiB = 64;

    static void Report(string line)
    {
        TestContext.Progress.WriteLine(line);
        if (Environment.GetEnvironmentVariable("NETWORKING_BENCH_OUT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    [Test, CancelAfter(900_000)]
    public async Task Throughput_vm_to_vm_across_the_vxlan_and_on_one_bridge()
    {
        HostTools.AppliancePath();
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        var mib = int.Parse(Environment.GetEnvironmentVariable("NETWORKING_BENCH_MIB") ?? "32", CultureInfo.InvariantCulture);
        var blocks = mib * 1024 / BlockKiB;
        var bytes = blocks * BlockKiB * 1024L;
        await using var span = await SpanningSetup.StartAsync("slvb");
        await span.NetworkAsync("span", "10.79.0.0/24", "10.79.0.1", ["default"]);
        var ids = new[] { await span.RunOnAsync("front-a", span.LocalName), await span.RunOnAsync("front-b", span.LocalName), await span.RunOnAsync("node-c", SpanningSetup.NodeName) };
        var vms = new List<JsonNode>();
        foreach (var id in ids) vms.Add(await span.ReadyAsync(id));
        var (a, b, c) = (vms[0], vms[1], vms[2]);
        // The same MTU everywhere (the network's, VXLAN's 50 bytes less), so only the path differs.
        foreach (var vm in vms) await span.SshAsync(vm, "ip link set dev eth0 mtu 1450");

        string Send(string ip, int port) =>
            $"s=$(cut -d' ' -f1 /proc/uptime); (dd if=/dev/zero bs={BlockKiB}k count={blocks} 2>/dev/null; cut -d' ' -f1 /proc/uptime >/tmp/end) | nc -w 3 {ip} {port}; echo \"sent {bytes} bytes from $s to $(cat /tmp/end)\"";
        // nc -e: the counter reads the connection itself, so the end of the SSH session's input does not end the transfer.
        Task<string> Receive(JsonNode vm, int port) =>
            span.SshAsync(vm, $"printf '#!/bin/sh\\nwc -c >/tmp/count\\n' >/tmp/count.sh; chmod +x /tmp/count.sh; nc -l -p {port} -e /tmp/count.sh; cat /tmp/count", timeoutSeconds: 400);
        async Task<double> Transfer(JsonNode from, JsonNode to, int port)
        {
            var receiving = Receive(to, port);
            await Task.Delay(5000);
            var sent = await span.SshAsync(from, Send(SpanningSetup.Ip(to), port), timeoutSeconds: 400);
            Assert.That(long.Parse((await receiving).Trim(), CultureInfo.InvariantCulture), Is.EqualTo(bytes), "every byte arrived");
            return Rate(sent);
        }
        var bridge = await Transfer(a, b, 5001);
        var vxlan = await Transfer(c, a, 5002);
        var bridgeAgain = await Transfer(b, a, 5003);
        Report(string.Create(CultureInfo.InvariantCulture, $"VM to VM on one bridge (front-end, tap to tap): {bridge:0.0} MiB/s, again {bridgeAgain:0.0} MiB/s"));
        Report(string.Create(CultureInfo.InvariantCulture, $"VM to VM across the VXLAN (node VM to front-end VM, veth underlay): {vxlan:0.0} MiB/s"));
        Report(string.Create(CultureInfo.InvariantCulture, $"ratio VXLAN / one bridge: {vxlan / ((bridge + bridgeAgain) / 2):0.00}"));
        Report($"({mib} MiB each, one TCP stream, MTU 1450, accelerator {a["accelerator"]}, {Environment.ProcessorCount} host CPUs; under TCG the guests' CPU, not the network, sets these rates)");
        foreach (var id in ids) await span.TerminateAsync(id);
    }

    /// <summary>MiB/s from the guest's "sent N bytes from T0 to T1" line (its /proc/uptime).</summary>
    static double Rate(string output)
    {
        var m = Sent().Match(output);
        Assert.That(m.Success, Is.True, "the guest said: [" + output + "]");
        var seconds = double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) - double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) / seconds / (1 << 20);
    }

    [GeneratedRegex(@"sent (\d+) bytes from ([\d.]+) to ([\d.]+)")]
    private static partial Regex Sent();
}
