using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier, inside network namespaces the test creates and deletes: the real server (with its QEMU and dnsmasq) in one,
/// "the outside" behind a veth pair in another. What a restart under a changed Networking configuration must do to the
/// nft rules of VMs that kept running: a narrowed PAT address closes their ports to the outside, a widened one opens
/// them, and two bridge networks reach each other only once an admin links them.
/// </summary>
[NonParallelizable]
public class NetworkingRestartHostTests
{
    const string Upstream = NamespacedUpstream.Upstream, Outside = NamespacedUpstream.Outside;

    // busybox nc may quit at the end of its input before the answer comes: keep the input open a moment.
    const string HttpGet = "(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 5";

    static readonly Dictionary<string, string> Qemu = new()
    {
        ["Compute:Driver"] = "qemu",
        ["Compute:Accelerator"] = "tcg",
        ["Compute:BootTimeoutSeconds"] = "150",
        ["Compute:ShutdownTimeoutSeconds"] = "20",
    };

    static Dictionary<string, string> With(params (string Key, string Value)[] settings)
    {
        var all = new Dictionary<string, string>(Qemu);
        foreach (var (k, v) in settings) all[k] = v;
        return all;
    }

    static string Ip(JsonNode vm) => vm["nics"]![0]!["ip"]!.GetValue<string>();

    static JsonNode Forward(JsonNode vm, int guestPort) => vm["portForwards"]!.AsArray().Single(f => f!["guestPort"]!.GetValue<int>() == guestPort)!;

    static int Pat(JsonNode vm, int guestPort) => Forward(vm, guestPort)["hostPort"]!.GetValue<int>();

    /// <summary>Under TCG on a loaded machine a guest can be slow to answer: what must work gets three tries, what must fail one.</summary>
    static async Task<string> Eventually(Func<Task<string>> probe, string expected)
    {
        var output = "";
        for (var attempt = 0; attempt < 3 && !output.Contains(expected); attempt++)
        {
            if (attempt > 0)
            {
                TestContext.Progress.WriteLine($"retrying (attempt {attempt + 1}) after: '{output.Trim()}'");
                await Task.Delay(2000);
            }
            output = await probe();
        }
        return output;
    }

    static async Task<JsonNode> RunVmAsync(HttpClient http, string name, string network, string? publicKey = null)
    {
        var id = (await InstanceApiTests.CreateAsync(http, new
        {
            name, networks = new[] { network }, sshKeys = publicKey is null ? Array.Empty<string>() : [publicKey],
            context = new Dictionary<string, string> { ["ETH0_METHOD"] = "dhcp" },
        }))["id"]!.GetValue<long>();
        var ready = await InstanceApiTests.WaitAsync(http, id, "ready", 200);
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, $"{name} reached the guest API: " + ready.ToJsonString());
        return ready;
    }

    /// <summary>The host address of a VM's forward of port 80 as the network's leases (describe-leases) say.</summary>
    static async Task<string> LeaseAddressAsync(HttpClient http, JsonNode vm)
    {
        var leases = (await (await http.GetAsync("/api/v1/networks/lab/leases?state=used")).Json(200)).AsArray();
        var lease = leases.Single(l => l!["instanceId"]?.GetValue<long>() == vm["id"]!.GetValue<long>())!;
        return lease["forwards"]!.AsArray().Single(f => f!["guestPort"]!.GetValue<int>() == 80)!["hostAddress"]!.GetValue<string>();
    }

    static async Task<JsonNode> GetVmAsync(HttpClient http, JsonNode vm) => await (await http.GetAsync($"/api/v1/instances/{vm["id"]}")).Json(200);

    /// <summary>Starts the outside's namespace and the server's, joined by a veth pair.</summary>
    static async Task<(NetworkNamespace Server, NetworkNamespace Outside)> NamespacesAsync()
    {
        var ns = await NetworkNamespace.CreateAsync("slrs");
        try
        {
            var outside = await NetworkNamespace.CreateAsync("slro");
            try { await NamespacedUpstream.ConnectAsync(ns, outside); }
            catch { await outside.DisposeAsync(); throw; }
            return (ns, outside);
        }
        catch { await ns.DisposeAsync(); throw; }
    }

    [Test, CancelAfter(600_000)]
    public async Task A_narrowed_or_widened_pat_address_takes_effect_at_restart_for_running_and_new_vms()
    {
        HostTools.AppliancePath();
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        var dataDir = TempDir.Create("patrestart");
        var (ns, outside) = await NamespacesAsync();
        NamespacedServer? server = null;
        try
        {
            // From the outside: the upstream address of the server's namespace, which PAT on 0.0.0.0 covers and 127.0.0.1 does not.
            async Task<string> FromOutside(JsonNode vm) =>
                (await outside.TryAsync("curl", ["-s", "-m", "8", $"http://{Upstream}:{Pat(vm, 80)}/"], TimeSpan.FromSeconds(20))).Out;
            async Task<string> FromInside(JsonNode vm) =>
                (await ns.TryAsync("curl", ["-s", "-m", "8", $"http://127.0.0.1:{Pat(vm, 80)}/"], TimeSpan.FromSeconds(20))).Out;

            server = await NamespacedServer.StartAsync(ns, dataDir, With(("Networking:PatAddress", "0.0.0.0")));
            await (await server.Http.PostAsJsonAsync("/api/v1/networks", new { name = "lab", driver = "bridge", cidr = "10.77.0.0/24", gateway = "10.77.0.1" })).Json(201);
            var first = await RunVmAsync(server.Http, "vm-1", "lab");
            Assert.That(await LeaseAddressAsync(server.Http, first), Is.EqualTo("0.0.0.0"));
            Assert.That(await Eventually(() => FromOutside(first), "<h1>vm-1</h1>"), Does.Contain("<h1>vm-1</h1>"), "PAT on every address: the outside reaches vm-1");

            // Narrowed: the VM keeps running across the restart, its tables too, until the new server rewrites them.
            await server.StopAsync();
            server.Dispose();
            server = await NamespacedServer.StartAsync(ns, dataDir, Qemu);
            first = await GetVmAsync(server.Http, first);
            Assert.That(first["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), first.ToJsonString());
            Assert.That(await LeaseAddressAsync(server.Http, first), Is.EqualTo("127.0.0.1"), "the lease says where its port is now published");
            Assert.That(await Eventually(() => FromInside(first), "<h1>vm-1</h1>"), Does.Contain("<h1>vm-1</h1>"), "vm-1 keeps its forward on the loopback");
            Assert.That(await FromOutside(first), Is.Empty, "the outside no longer reaches vm-1");
            var second = await RunVmAsync(server.Http, "vm-2", "lab");
            Assert.That(await LeaseAddressAsync(server.Http, second), Is.EqualTo("127.0.0.1"));
            Assert.That(await Eventually(() => FromInside(second), "<h1>vm-2</h1>"), Does.Contain("<h1>vm-2</h1>"));
            Assert.That(await FromOutside(second), Is.Empty, "a VM started after narrowing is not reachable from the outside (the issue's repro)");
            var ruleset = await ns.RunAsync("nft", ["list", "ruleset"]);
            Assert.That(ruleset, Does.Not.Contain("fib daddr type local"), ruleset);

            // Widened again: both running VMs are published on every address.
            await server.StopAsync();
            server.Dispose();
            server = await NamespacedServer.StartAsync(ns, dataDir, With(("Networking:PatAddress", "0.0.0.0")));
            first = await GetVmAsync(server.Http, first);
            second = await GetVmAsync(server.Http, second);
            Assert.That(await LeaseAddressAsync(server.Http, first), Is.EqualTo("0.0.0.0"));
            Assert.That(await LeaseAddressAsync(server.Http, second), Is.EqualTo("0.0.0.0"));
            Assert.That(await Eventually(() => FromOutside(first), "<h1>vm-1</h1>"), Does.Contain("<h1>vm-1</h1>"));
            Assert.That(await Eventually(() => FromOutside(second), "<h1>vm-2</h1>"), Does.Contain("<h1>vm-2</h1>"));

            foreach (var vm in new[] { first, second }) await (await server.Http.DeleteAsync($"/api/v1/instances/{vm["id"]}")).Json(202);
            foreach (var vm in new[] { first, second })
                Assert.That((await InstanceApiTests.WaitAsync(server.Http, vm["id"]!.GetValue<long>(), "DONE", 90))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
            Assert.That((await ns.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty, "no nft rule is left");
        }
        finally
        {
            server?.Dispose();
            await outside.DisposeAsync();
            await ns.DisposeAsync();
            TempDir.Delete(dataDir);
        }
    }

    [Test, CancelAfter(600_000)]
    public async Task Two_bridge_networks_reach_each_other_only_once_an_admin_links_them_while_nat_and_pat_keep_working()
    {
        HostTools.AppliancePath();
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        var dataDir = TempDir.Create("netlink");
        var keyDir = TempDir.Create("ssh");
        var (ns, outside) = await NamespacesAsync();
        NamespacedServer? server = null;
        try
        {
            var respond = Path.Combine(dataDir, "respond.sh");
            // It reads the request line first: exiting before socat hands it over would make socat drop the connection.
            await File.WriteAllTextAsync(respond, "#!/bin/sh\nread -r request\nprintf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello from outside to %s\\n' \"$SOCAT_PEERADDR\"\n");
            File.SetUnixFileMode(respond, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            outside.Start("socat", [$"TCP-LISTEN:8000,bind={Outside},fork,reuseaddr", "EXEC:" + respond]);

            server = await NamespacedServer.StartAsync(ns, dataDir, Qemu);
            // Two networks of two different users.
            using var alice = await server.UserClientAsync("alice");
            await (await server.Http.PostAsJsonAsync("/api/v1/networks", new { name = "lab-a", driver = "bridge", cidr = "10.77.0.0/24", gateway = "10.77.0.1" })).Json(201);
            await (await alice.PostAsJsonAsync("/api/v1/networks", new { name = "lab-b", driver = "bridge", cidr = "10.78.0.0/24", gateway = "10.78.0.1" })).Json(201);
            var (key, publicKey) = await HostTools.SshKeyAsync(keyDir);
            var a = await RunVmAsync(server.Http, "vm-a", "lab-a", publicKey);
            var b = await RunVmAsync(alice, "vm-b", "lab-b", publicKey);

            async Task<string> Ssh(JsonNode vm, string command)
            {
                var result = await ns.TryAsync("ssh", ["-i", key, "-p", Pat(vm, 22).ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "root@127.0.0.1", command], TimeSpan.FromSeconds(60));
                Assert.That(result.Exit, Is.Zero, $"ssh {vm["name"]} '{command}': {result.Err}");
                return result.Out;
            }
            Task<string> Ping(JsonNode from, JsonNode to) => Ssh(from, $"ping -c 2 -W 3 {Ip(to)} >/dev/null && echo ping-ok || echo ping-failed");
            Task<string> Get(JsonNode from, JsonNode to) => Ssh(from, $"{HttpGet} {Ip(to)} 80; echo done");
            async Task<string> Curl(JsonNode vm) => (await ns.TryAsync("curl", ["-s", "-m", "8", $"http://127.0.0.1:{Pat(vm, 80)}/"], TimeSpan.FromSeconds(20))).Out;

            // What must still work is checked first, so that a failure to block is not a broken guest.
            Assert.That(await Eventually(() => Ssh(a, $"{HttpGet} {Outside} 8000"), "hello from outside"), Does.Contain($"hello from outside to {Upstream}"), "NAT to the outside");
            Assert.That(await Eventually(() => Ssh(b, $"{HttpGet} {Outside} 8000"), "hello from outside"), Does.Contain($"hello from outside to {Upstream}"), "NAT to the outside");
            Assert.That(await Eventually(() => Curl(a), "<h1>vm-a</h1>"), Does.Contain("<h1>vm-a</h1>"), "PAT");
            Assert.That(await Eventually(() => Curl(b), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"), "PAT");
            Assert.That(await Ping(a, b), Does.Contain("ping-failed"), "lab-a does not reach lab-b");
            Assert.That(await Ping(b, a), Does.Contain("ping-failed"), "lab-b does not reach lab-a");
            Assert.That(await Get(a, b), Does.Not.Contain("vm-b"));
            Assert.That(await Get(b, a), Does.Not.Contain("vm-a"));

            // An admin links them: after a restart (the VMs keep running), they reach each other both ways.
            await server.StopAsync();
            server.Dispose();
            server = await NamespacedServer.StartAsync(ns, dataDir, With(("Networking:LinkedNetworks", "lab-a,lab-b")));
            Assert.That(await Eventually(() => Ping(a, b), "ping-ok"), Does.Contain("ping-ok"));
            Assert.That(await Eventually(() => Ping(b, a), "ping-ok"), Does.Contain("ping-ok"));
            Assert.That(await Eventually(() => Get(a, b), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"));
            Assert.That(await Eventually(() => Get(b, a), "<h1>vm-a</h1>"), Does.Contain("<h1>vm-a</h1>"));
            Assert.That(await Eventually(() => Ssh(a, $"{HttpGet} {Outside} 8000"), "hello from outside"), Does.Contain("hello from outside"), "NAT still works");
            Assert.That(await Eventually(() => Curl(b), "<h1>vm-b</h1>"), Does.Contain("<h1>vm-b</h1>"), "PAT still works");

            foreach (var vm in new[] { a, b }) await (await server.Http.DeleteAsync($"/api/v1/instances/{vm["id"]}")).Json(202);
            foreach (var vm in new[] { a, b })
                Assert.That((await InstanceApiTests.WaitAsync(server.Http, vm["id"]!.GetValue<long>(), "DONE", 90))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
            Assert.That((await ns.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty, "no nft rule is left");
        }
        finally
        {
            server?.Dispose();
            TempDir.Delete(keyDir);
            await outside.DisposeAsync();
            await ns.DisposeAsync();
            TempDir.Delete(dataDir);
        }
    }
}
