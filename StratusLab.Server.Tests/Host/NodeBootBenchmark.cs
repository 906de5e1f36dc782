using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Figures for issue 17: request → RUNNING and request → the appliance's "httpd listening" and "boot complete" console
/// lines (read through the console API) on the front-end, on an SSH node in boot mode cache (the first boot of an image the node has
/// not cached, then a cached one) and on a node in boot mode iscsi; then 32 MiB read in the guest from its boot disk and
/// from one hot-attached iSCSI volume, by a VM on the iscsi node and one on the front-end. Same run, same appliance.
/// Not part of the suite: run scripts/bench/node-boot.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/node-boot.sh")]
[Category("Benchmark")]
[NonParallelizable]
public class NodeBootBenchmark
{
    static void Report(string line)
    {
        TestContext.Progress.WriteLine(line);
        if (Environment.GetEnvironmentVariable("NODE_BOOT_BENCH_OUT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    sealed record Boot(string Where, double Running, double Services, double Complete);

    [Test, CancelAfter(2_400_000)]
    public async Task Boot_times_and_iscsi_reads_on_nodes_in_both_boot_modes_vs_the_front_end()
    {
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        HostTools.AppliancePath();
        var keyDir = TempDir.Create("sshkeys");
        var (key, publicKey) = await HostTools.SshKeyAsync(keyDir);
        SshNode? cacheNode = null, iscsiNode = null;
        TestServer? server = null;
        try
        {
            cacheNode = await SshNode.StartAsync(publicKey);
            iscsiNode = await SshNode.StartAsync(publicKey);
            // The front-end runs real QEMU too (the appliance fixtures' settings: driver qemu, a PAT port range of its own).
            server = await ApplianceHost.StartAsync(new Dictionary<string, string?>
            {
                ["Scheduling:NodeProbeIntervalSeconds"] = "30",
                ["Scheduling:PendingTimeoutSeconds"] = "0",
                ["Compute:MonitorIntervalSeconds"] = "1",
                ["Pdisk:Iscsi:ListenAddresses:0"] = cacheNode.HostAddress,
                ["Pdisk:Iscsi:ListenAddresses:1"] = iscsiNode.HostAddress,
            });
            using var admin = server.Client();
            admin.Timeout = TimeSpan.FromMinutes(10);
            await (await admin.PostAsJsonAsync("/api/v1/hosts", new { name = "bench-cache", driver = "ssh", ssh = "root@" + cacheNode.Address, keyFile = key, root = cacheNode.Root, bootDisks = "cache" })).Json(201);
            await (await admin.PostAsJsonAsync("/api/v1/hosts", new { name = "bench-iscsi", driver = "ssh", ssh = "root@" + iscsiNode.Address, keyFile = key, root = iscsiNode.Root, bootDisks = "iscsi" })).Json(201);
            var local = (await (await admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().First(h => h!["local"]!.GetValue<bool>())!["name"]!.GetValue<string>();
            string[] hosts = [local, "bench-cache", "bench-iscsi"];

            async Task OnlyAsync(string host)
            {
                foreach (var h in hosts)
                    await (await admin.PostAsync($"/api/v1/hosts/{h}/{(h == host ? "enable" : "disable")}", null)).Json(200);
            }

            async Task<(long Id, JsonNode Instance, Boot Boot)> BootAsync(string host, string label)
            {
                await OnlyAsync(host);
                var clock = Stopwatch.StartNew();
                var id = (await InstanceApiTests.CreateAsync(admin, new { name = "bench", sshKeys = new[] { publicKey } }))["id"]!.GetValue<long>();
                var running = await InstanceApiTests.WaitAsync(admin, id, "RUNNING", 600);
                Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
                Assert.That(running["host"]!.GetValue<string>(), Is.EqualTo(host));
                var toRunning = clock.Elapsed.TotalSeconds;
                double? services = null;
                while (true)
                {
                    var console = await admin.GetStringAsync($"/api/v1/instances/{id}/console");
                    if (services is null && console.Contains("stratuslab: httpd listening on port 80", StringComparison.Ordinal)) services = clock.Elapsed.TotalSeconds;
                    if (console.Contains("stratuslab: boot complete", StringComparison.Ordinal)) break;
                    Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromMinutes(5)), $"{label}: boot complete on the console: {console}");
                    await Task.Delay(250);
                }
                return (id, running, new Boot(label, toRunning, services ?? clock.Elapsed.TotalSeconds, clock.Elapsed.TotalSeconds));
            }

            async Task KillAsync(long id)
            {
                await (await admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
                await InstanceApiTests.WaitAsync(admin, id, "DONE", 180);
            }

            async Task<string> GuestAsync(SshNode? node, JsonNode instance, string script)
            {
                var port = instance["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();
                string[] args = ["-i", key, "-p", port.ToString(CultureInfo.InvariantCulture), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@127.0.0.1", script];
                var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
                while (true)
                {
                    var (exit, output, error) = node is null
                        ? await HostTools.RunAsync("ssh", args, TimeSpan.FromSeconds(120))
                        : await node.Namespace.TryAsync("ssh", args, TimeSpan.FromSeconds(120));
                    if (exit == 0) return output;
                    Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"guest script: {error}");
                    await Task.Delay(2000);
                }
            }

            const string Timed = "drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }; t() { drop; s=$(cut -d' ' -f1 /proc/uptime); dd if=$1 of=/dev/null bs=1M count=32 2>/dev/null; e=$(cut -d' ' -f1 /proc/uptime); echo \"$s $e\"; }; " +
                "i=0; while [ ! -b /dev/vdb ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; t /dev/vda; t /dev/vdb";
            static double Seconds(string line)
            {
                var p = line.Trim().Split(' ');
                return Math.Max(0.01, double.Parse(p[1], CultureInfo.InvariantCulture) - double.Parse(p[0], CultureInfo.InvariantCulture));
            }
            var volume = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, sharing = "iscsi", tag = "bench-read" }));

            async Task<(double BootDisk, double Volume)> ReadsAsync(SshNode? node, long id, JsonNode instance)
            {
                await GuestAsync(node, instance, "true");
                await (await admin.PostAsJsonAsync($"/api/v1/volumes/{volume}/mounts", new { instanceId = id })).Json(201);
                var lines = (await GuestAsync(node, instance, Timed)).Trim().Split('\n');
                await (await admin.DeleteAsync($"/api/v1/volumes/{volume}/mounts/{id}")).Json(204);
                return (32 / Seconds(lines[0]), 32 / Seconds(lines[1]));
            }

            // The front-end's image cache is warmed first (its download is not what is measured).
            var (warm, _, _) = await BootAsync(local, "warm-up");
            await KillAsync(warm);

            var boots = new List<Boot>();
            var (localId, localVm, localBoot) = await BootAsync(local, "front-end (local)");
            boots.Add(localBoot);
            var localReads = await ReadsAsync(null, localId, localVm);
            await KillAsync(localId);
            var (c1, _, firstCache) = await BootAsync("bench-cache", "node, boot mode cache, image not cached on the node");
            boots.Add(firstCache);
            await KillAsync(c1);
            var (c2, _, cached) = await BootAsync("bench-cache", "node, boot mode cache, image cached on the node");
            boots.Add(cached);
            await KillAsync(c2);
            var (i1, iscsiVm, overIscsi) = await BootAsync("bench-iscsi", "node, boot mode iscsi");
            boots.Add(overIscsi);
            var nodeReads = await ReadsAsync(iscsiNode, i1, iscsiVm);
            await KillAsync(i1);

            Report("request -> RUNNING | -> 'httpd listening' (the guest's services up) | -> 'boot complete' on the console; appliance, 128 MiB, TCG;");
            Report("console polled every 250 ms, copied from nodes every 1 s; on nodes 'boot complete' also waits ~10 s for a ready report the node cannot deliver:");
            foreach (var b in boots)
                Report($"  {b.Where,-55} {b.Running,6:0.00} s ({b.Running / localBoot.Running,5:0.00}x) | {b.Services,6:0.00} s ({b.Services / localBoot.Services,5:0.00}x) | {b.Complete,6:0.00} s ({b.Complete / localBoot.Complete,5:0.00}x front-end)");
            Report($"32 MiB read in the guest (TCG; drop_caches first):");
            Report($"  boot disk:   node over iSCSI {nodeReads.BootDisk,7:0.0} MiB/s, front-end (local file) {localReads.BootDisk,7:0.0} MiB/s, ratio node/front-end {nodeReads.BootDisk / localReads.BootDisk:0.00}");
            Report($"  iSCSI volume: node {nodeReads.Volume,7:0.0} MiB/s, front-end (same volume, tgtd on 127.0.0.1) {localReads.Volume,7:0.0} MiB/s, ratio node/front-end {nodeReads.Volume / localReads.Volume:0.00}");
        }
        finally
        {
            string? dataDir = null;
            if (server is not null)
            {
                dataDir = server.DataDir;
                await ApplianceHost.StopAsync(server);
            }
            if (cacheNode is not null) await cacheNode.DisposeAsync();
            if (iscsiNode is not null) await iscsiNode.DisposeAsync();
            if (dataDir is not null) await PdiskHost.RemoveTargetsUnderAsync(dataDir);
            foreach (var node in new[] { cacheNode, iscsiNode }.OfType<SshNode>())
                await HostTools.RunAsync("tgtadm", ["--lld", "iscsi", "--op", "delete", "--mode", "portal", "--param", $"portal={node.HostAddress}:3260"], TimeSpan.FromSeconds(30));
            TempDir.Delete(keyDir);
        }
    }
}
