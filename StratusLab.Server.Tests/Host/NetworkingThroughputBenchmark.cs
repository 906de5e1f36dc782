using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Figures for the note: TCP throughput between two appliance VMs on a bridge network, and between a VM and its host over
/// the bridge and over QEMU user-mode networking, all virtio-net, measured with busybox dd | nc in the guests and socat
/// on the host (the server's namespace). Not part of the suite: run scripts/bench/networking-throughput.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/networking-throughput.sh")]
[Category("Benchmark")]
[NonParallelizable]
public partial class NetworkingThroughputBenchmark
{
    const int BlockKiB = 64;

    static void Report(string line)
    {
        TestContext.Progress.WriteLine(line);
        if (Environment.GetEnvironmentVariable("NETWORKING_BENCH_OUT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    [Test, CancelAfter(600_000)]
    public async Task Throughput_between_vms_and_between_vm_and_host()
    {
        HostTools.AppliancePath();
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        var mib = int.Parse(Environment.GetEnvironmentVariable("NETWORKING_BENCH_MIB") ?? "64", CultureInfo.InvariantCulture);
        var blocks = mib * 1024 / BlockKiB;
        var dataDir = TempDir.Create("netbench");
        var keyDir = TempDir.Create("ssh");
        await using var ns = await NetworkNamespace.CreateAsync("slbw");
        try
        {
            using var server = await NamespacedServer.StartAsync(ns, dataDir, new Dictionary<string, string>
            {
                ["Compute:Driver"] = "qemu", ["Compute:Accelerator"] = Environment.GetEnvironmentVariable("NETWORKING_BENCH_ACCEL") ?? "tcg",
                ["Compute:BootTimeoutSeconds"] = "200",
            });
            var http = server.Http;
            await (await http.PostAsJsonAsync("/api/v1/networks", new { name = "lab", driver = "bridge", cidr = "10.78.0.0/24", gateway = "10.78.0.1" })).Json(201);
            var (key, publicKey) = await HostTools.SshKeyAsync(keyDir);
            // vm-b's first NIC is user-mode (its PAT ports are QEMU's), its second on the bridge.
            var a = (await InstanceApiTests.CreateAsync(http, new { name = "vm-a", networks = new[] { "lab" }, sshKeys = new[] { publicKey } }))["id"]!.GetValue<long>();
            var b = (await InstanceApiTests.CreateAsync(http, new { name = "vm-b", networks = new[] { "default", "lab" }, sshKeys = new[] { publicKey }, forwardPorts = new[] { 5005 } }))["id"]!.GetValue<long>();
            var vmA = await InstanceApiTests.WaitAsync(http, a, "ready", 240);
            var vmB = await InstanceApiTests.WaitAsync(http, b, "ready", 240);
            Assert.That(vmA["ready"]!.GetValue<bool>() && vmB["ready"]!.GetValue<bool>(), Is.True);
            int Pat(JsonNode vm, int port) => vm["portForwards"]!.AsArray().Single(f => f!["guestPort"]!.GetValue<int>() == port)!["hostPort"]!.GetValue<int>();
            var aIp = vmA["nics"]![0]!["ip"]!.GetValue<string>();
            var bBridgeIp = vmB["nics"]![1]!["ip"]!.GetValue<string>();

            async Task<string> Ssh(JsonNode vm, string command)
            {
                var r = await ns.TryAsync("ssh", ["-i", key, "-p", Pat(vm, 22).ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "root@127.0.0.1", command], TimeSpan.FromSeconds(300));
                Assert.That(r.Exit, Is.Zero, r.Err);
                return r.Out;
            }
            // busybox dd prints no rate; the guest's /proc/uptime (1/100 s) times dd, which ends when the last block is handed
            // to nc (nc itself lingers after its input ends, so timing it would add its timeout).
            var bytes = blocks * BlockKiB * 1024L;
            string Send(string ip, int port) =>
                $"s=$(cut -d' ' -f1 /proc/uptime); (dd if=/dev/zero bs={BlockKiB}k count={blocks} 2>/dev/null; cut -d' ' -f1 /proc/uptime >/tmp/end) | nc -w 3 {ip} {port}; echo \"sent {bytes} bytes from $s to $(cat /tmp/end)\"";
            // The receiver (in its own SSH session, or socat in the namespace) counts what arrived, so a transfer that did not
            // happen cannot pass for a fast one.
            async Task<string> Transfer(Task<string> receiving, Func<Task<string>> send)
            {
                await Task.Delay(5000);
                var sent = await send();
                var received = long.Parse((await receiving).Trim(), CultureInfo.InvariantCulture);
                Assert.That(received, Is.EqualTo(bytes), "every byte arrived");
                return sent;
            }
            // nc -e: the counter reads the connection itself, so the end of the SSH session's input does not end the transfer.
            Task<string> GuestReceives(JsonNode vm, int port) =>
                Ssh(vm, $"printf '#!/bin/sh\\nwc -c >/tmp/count\\n' >/tmp/count.sh; chmod +x /tmp/count.sh; nc -l -p {port} -e /tmp/count.sh; cat /tmp/count");
            Task<string> HostReceives(int port) => ns.RunAsync("sh", ["-c", $"socat -u TCP-LISTEN:{port},reuseaddr - | wc -c"], TimeSpan.FromSeconds(300));
            Report($"VM to VM over the bridge (virtio-net, tap, TCG): {Rate(await Transfer(GuestReceives(vmB, 5001), () => Ssh(vmA, Send(bBridgeIp, 5001))))}");
            Report($"VM to host over the bridge (to the gateway): {Rate(await Transfer(HostReceives(5002), () => Ssh(vmA, Send("10.78.0.1", 5002))))}");
            Report($"VM to host over QEMU user-mode networking (slirp, to 10.0.2.2): {Rate(await Transfer(HostReceives(5004), () => Ssh(vmB, Send("10.0.2.2", 5004))))}");

            Report($"host to VM over the bridge: {await Transfer(GuestReceives(vmA, 5003), () => HostSendAsync(ns, aIp, 5003, mib))}");
            Report($"host to VM over QEMU user-mode networking (through its PAT port): {await Transfer(GuestReceives(vmB, 5005), () => HostSendAsync(ns, "127.0.0.1", Pat(vmB, 5005), mib))}");
            Report($"({mib} MiB each, one TCP stream, accelerator {vmA["accelerator"]}, {Environment.ProcessorCount} host CPUs; under TCG the guests' CPU, not the network, sets these rates)");

            foreach (var id in new[] { a, b }) await http.DeleteAsync($"/api/v1/instances/{id}");
            foreach (var id in new[] { a, b }) await InstanceApiTests.WaitAsync(http, id, "DONE", 90);
        }
        finally
        {
            TempDir.Delete(keyDir);
            await ns.DisposeAsync();
            TempDir.Delete(dataDir);
        }
    }

    static async Task<string> HostSendAsync(NetworkNamespace ns, string ip, int port, int mib)
    {
        var sw = Stopwatch.StartNew();
        var (exit, _, error) = await HostTools.RunAsync("sh", ["-c", $"head -c {mib}M /dev/zero | ip netns exec {ns.Name} socat -u - TCP:{ip}:{port}"], TimeSpan.FromSeconds(300));
        Assert.That(exit, Is.Zero, error);
        return string.Create(CultureInfo.InvariantCulture, $"{mib / sw.Elapsed.TotalSeconds:0.0} MiB/s");
    }

    /// <summary>The rate from the guest's "sent N bytes from T0 to T1" line.</summary>
    static string Rate(string output)
    {
        var m = Sent().Match(output);
        Assert.That(m.Success, Is.True, "the guest said: [" + output + "]");
        var bytes = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        var seconds = double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) - double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture, $"{bytes / seconds / (1 << 20):0.0} MiB/s");
    }

    [GeneratedRegex(@"sent (\d+) bytes from ([\d.]+) to ([\d.]+)")]
    private static partial Regex Sent();
}
