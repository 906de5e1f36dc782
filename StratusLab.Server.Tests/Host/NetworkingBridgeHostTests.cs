using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier, entirely inside network namespaces the test creates and deletes: the real server runs in one (with its QEMU
/// and dnsmasq), a second one is "the outside" behind a veth pair with a small HTTP server. Two appliance VMs on a bridge
/// network get their leases by DHCP, reach each other and the outside (NAT), are reachable through their PAT ports, are
/// blocked by a firewall rule once it is added, and leave no tap, rule, dnsmasq or lease behind when terminated.
/// </summary>
[NonParallelizable]
public class NetworkingBridgeHostTests
{
    const string Upstream = NamespacedUpstream.Upstream, Outside = NamespacedUpstream.Outside;

    [Test, CancelAfter(300_000)]
    public async Task Two_vms_on_a_bridge_get_their_leases_by_dhcp_talk_to_each_other_and_out_through_nat_and_pat_until_a_rule_blocks_them()
    {
        HostTools.AppliancePath();
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        var dataDir = TempDir.Create("netvm");
        var keyDir = TempDir.Create("ssh");
        await using var ns = await NetworkNamespace.CreateAsync("slnet");
        await using var outside = await NetworkNamespace.CreateAsync("slout");
        try
        {
            await NamespacedUpstream.ConnectAsync(ns, outside);
            // The outside world's web server says who it saw: the guests' traffic must arrive masqueraded as the upstream address.
            var respond = Path.Combine(dataDir, "respond.sh");
            // It reads the request line first: exiting before socat hands it over would make socat drop the connection.
            await File.WriteAllTextAsync(respond, "#!/bin/sh\nread -r request\nprintf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from outside to %s\\n' \"$SOCAT_PEERADDR\"\n");
            File.SetUnixFileMode(respond, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            outside.Start("socat", [$"TCP-LISTEN:8000,bind={Outside},fork,reuseaddr", "EXEC:" + respond]);

            using var server = await NamespacedServer.StartAsync(ns, dataDir, new Dictionary<string, string>
            {
                ["Compute:Driver"] = "qemu",
                ["Compute:Accelerator"] = "tcg",
                ["Compute:BootTimeoutSeconds"] = "150",
                ["Compute:ShutdownTimeoutSeconds"] = "20",
            });
            var http = server.Http;

            await (await http.PostAsJsonAsync("/api/v1/security-groups", new { name = "lab-fw", description = "rules the test adds" })).Json(201);
            var network = await (await http.PostAsJsonAsync("/api/v1/networks", new
            {
                name = "lab", driver = "bridge", cidr = "10.77.0.0/24", gateway = "10.77.0.1", dns = new[] { "10.77.0.1" }, securityGroups = new[] { "default", "lab-fw" },
            })).Json(201);
            var networkId = network["id"]!.GetValue<long>();

            var (key, publicKey) = await HostTools.SshKeyAsync(keyDir);
            // ETH0_METHOD=dhcp makes the appliance behave like an image without context support: its address comes from DHCP.
            var ids = new List<long>();
            foreach (var name in new[] { "vm-a", "vm-b" })
                ids.Add((await InstanceApiTests.CreateAsync(http, new
                {
                    name, networks = new[] { "lab" }, sshKeys = new[] { publicKey }, context = new Dictionary<string, string> { ["ETH0_METHOD"] = "dhcp" },
                }))["id"]!.GetValue<long>());
            var vms = new List<JsonNode>();
            foreach (var id in ids)
            {
                var ready = await InstanceApiTests.WaitAsync(http, id, "ready", 200);
                Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, "the guest reached the guest API through its gateway: " + ready.ToJsonString());
                vms.Add(ready);
            }
            var (a, b) = (vms[0], vms[1]);
            string Ip(JsonNode vm) => vm["nics"]![0]!["ip"]!.GetValue<string>();
            string Mac(JsonNode vm) => vm["nics"]![0]!["mac"]!.GetValue<string>();
            int Pat(JsonNode vm, int guestPort) => vm["portForwards"]!.AsArray().Single(f => f!["guestPort"]!.GetValue<int>() == guestPort)!["hostPort"]!.GetValue<int>();
            Assert.That(new[] { Ip(a), Ip(b) }, Is.EquivalentTo(new[] { "10.77.0.2", "10.77.0.3" }), "the gateway is held, the leases follow it");

            async Task<string> Ssh(JsonNode vm, string command, bool mustSucceed = true)
            {
                var result = await ns.TryAsync("ssh", ["-i", key, "-p", Pat(vm, 22).ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "root@127.0.0.1", command], TimeSpan.FromSeconds(60));
                if (mustSucceed) Assert.That(result.Exit, Is.Zero, $"ssh {vm["name"]} '{command}': {result.Err}");
                return result.Out;
            }
            // busybox nc may quit at the end of its input before the answer comes: keep the input open a moment.
            const string HttpGet = "(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 5";
            // Under TCG on a loaded machine a guest can be slow to answer: what must work gets three tries, what must fail one.
            async Task<string> Eventually(Func<Task<string>> probe, string expected)
            {
                var output = "";
                for (var attempt = 0; attempt < 3 && !output.Contains(expected); attempt++)
                {
                    if (attempt > 0) TestContext.Progress.WriteLine($"retrying (attempt {attempt + 1}) after: '{output.Trim()}'");
                    output = await probe();
                }
                return output;
            }

            // Leases by DHCP: dnsmasq served exactly these two, and the guests took them.
            var leaseFile = await File.ReadAllTextAsync(Path.Combine(dataDir, "networks", networkId.ToString(), "dnsmasq.leases"));
            Assert.That(leaseFile, Does.Contain($"{Mac(a)} {Ip(a)}").And.Contain($"{Mac(b)} {Ip(b)}"), "both guests asked dnsmasq for their lease");
            var aSays = await Ssh(a, "ip -4 -o addr show dev eth0; ip route; cat /etc/resolv.conf; . /mnt/context/context.sh; echo \"context $ETH0_IP $ETH0_MASK $ETH0_GATEWAY $ETH0_MAC\"");
            Assert.That(aSays, Does.Contain($"inet {Ip(a)}/24").And.Contain("default via 10.77.0.1").And.Contain("nameserver 10.77.0.1"));
            Assert.That(aSays, Does.Contain($"context {Ip(a)} 255.255.255.0 10.77.0.1 {Mac(a)}"), "the context carries the lease too");

            // VM to VM on the bridge, and out through NAT.
            Assert.That(await Eventually(() => Ssh(a, $"ping -c 2 -W 3 {Ip(b)} >/dev/null && echo ping-ok", false), "ping-ok"), Does.Contain("ping-ok"));
            Assert.That(await Eventually(() => Ssh(a, $"{HttpGet} {Ip(b)} 80"), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"));
            Assert.That(await Eventually(() => Ssh(b, $"{HttpGet} {Outside} 8000"), "hello from outside"), Does.Contain($"hello from outside to {Upstream}"),
                "masqueraded to the upstream address");

            // PAT: the namespace reaches each guest's forwarded ports on 127.0.0.1.
            async Task<string> Curl(JsonNode vm) => (await ns.TryAsync("curl", ["-s", "-m", "8", $"http://127.0.0.1:{Pat(vm, 80)}/"], TimeSpan.FromSeconds(20))).Out;
            Assert.That(await Eventually(() => Curl(b), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"));
            Assert.That(await Ssh(b, "hostname"), Does.Contain("vm-b"));

            // A firewall rule added to the network's security group applies to the running NICs at once.
            var rule = await (await http.PostAsJsonAsync("/api/v1/security-groups/lab-fw/rules", new { direction = "inbound", protocol = "tcp", ports = "80", action = "drop" })).Json(201);
            Assert.That(await Ssh(a, $"{HttpGet} {Ip(b)} 80; echo done"), Does.Not.Contain("vm-b"), "port 80 of vm-b is blocked for vm-a");
            Assert.That(await Curl(b), Is.Empty, "and through PAT");
            Assert.That(await Eventually(() => Ssh(a, $"ping -c 1 -W 3 {Ip(b)} >/dev/null && echo ping-ok", false), "ping-ok"), Does.Contain("ping-ok"), "what the rule does not name still passes");
            await (await http.DeleteAsync($"/api/v1/security-groups/lab-fw/rules/{rule["id"]}")).Json(204);
            Assert.That(await Eventually(() => Ssh(a, $"{HttpGet} {Ip(b)} 80"), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"), "removing the rule opens the port again");

            foreach (var id in ids) await (await http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
            foreach (var id in ids) Assert.That((await InstanceApiTests.WaitAsync(http, id, "DONE", 90))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));

            var links = await ns.RunAsync("ip", ["-o", "link", "show"]);
            Assert.That(links, Does.Not.Contain("sltap-").And.Not.Contain("slbr-"), "no tap or bridge is left");
            Assert.That((await ns.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty, "no nft rule is left");
            var left = new List<string>();
            foreach (var pid in await ns.PidsAsync())
            {
                try { left.Add(File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ')); } catch (IOException) { }
            }
            Assert.That(left.Where(c => c.Contains("dnsmasq") || c.Contains("qemu-system")), Is.Empty, "no dnsmasq or QEMU is left");
            Assert.That((await (await http.GetAsync("/api/v1/networks/lab/leases?state=used")).Json(200)).AsArray(), Is.Empty, "no lease is left");
            TestContext.Progress.WriteLine(string.Join('\n', server.Log.Split('\n').Where(l => l.Contains(" ms") && l.Contains("NIC"))));
        }
        finally
        {
            TempDir.Delete(keyDir);
            await ns.DisposeAsync();
            TempDir.Delete(dataDir);
        }
    }
}
