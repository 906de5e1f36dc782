using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// A front-end and SSH nodes for bridge networks across nodes: the real server in a namespace made here, and none, one or
/// more SSH nodes (each its own namespace and sshd) whose veth's other end is in the server's namespace, registered as hosts
/// "node-a", "node-b", ... The front-end routes between the nodes' veths (each node's default route points at it), so
/// nodes reach each other as machines on one routed underlay. Disposing removes the nodes (their QEMU dies with their
/// namespace), the server, the namespace and the temp dirs, also after a failure.
/// </summary>
public sealed class SpanningSetup : IAsyncDisposable
{
    public const string NodeName = "node-a";
    public const string NodeBName = "node-b";
    // busybox nc may quit at the end of its input before the answer comes: keep the input open a moment.
    public const string HttpGet = "(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | nc -w 5";

    NamespacedServer? _server;
    string _key = "", _publicKey = "";
    Dictionary<string, string> _settings = [];
    readonly List<SshNode> _nodes = [];

    public NetworkNamespace FrontEnd { get; private init; } = null!;

    /// <summary>The first node (host "node-a").</summary>
    public SshNode Node => _nodes[0];

    /// <summary>The nodes in the order of their host names: node-a, node-b, ...</summary>
    public IReadOnlyList<SshNode> Nodes => _nodes;

    public static string NameOfNode(int index) => "node-" + (char)('a' + index);
    public string DataDir { get; private init; } = "";
    string KeyDir { get; init; } = "";
    public HttpClient Http => _server!.Http;
    public string PublicKey => _publicKey;
    public string LocalName { get; private set; } = "";

    public static async Task<SpanningSetup> StartAsync(string prefix, IReadOnlyDictionary<string, string>? settings = null, int nodes = 1)
    {
        var setup = new SpanningSetup { FrontEnd = await NetworkNamespace.CreateAsync(prefix), DataDir = TempDir.Create(prefix), KeyDir = TempDir.Create("ssh") };
        try
        {
            (setup._key, setup._publicKey) = await HostTools.SshKeyAsync(setup.KeyDir);
            for (var i = 0; i < nodes; i++) setup._nodes.Add(await SshNode.StartAsync(setup._publicKey, frontEnd: setup.FrontEnd));
            if (nodes > 1)
            {
                // The underlay between nodes: each node's veth is a /30 to the front-end, which forwards between them.
                await setup.FrontEnd.RunAsync("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
                foreach (var node in setup._nodes) await node.Namespace.RunAsync("ip", ["route", "add", "default", "via", node.HostAddress]);
            }
            var all = new Dictionary<string, string>
            {
                ["Compute:Driver"] = "qemu",
                ["Compute:Accelerator"] = "tcg",
                ["Compute:BootTimeoutSeconds"] = "240",
                ["Compute:ShutdownTimeoutSeconds"] = "20",
                ["Compute:MonitorIntervalSeconds"] = "2",
            };
            foreach (var (k, v) in settings ?? new Dictionary<string, string>()) all[k] = v;
            setup._settings = all;
            setup._server = await NamespacedServer.StartAsync(setup.FrontEnd, setup.DataDir, all);
            for (var i = 0; i < setup._nodes.Count; i++)
            {
                var node = setup._nodes[i];
                var host = await (await setup.Http.PostAsJsonAsync("/api/v1/hosts", new
                {
                    name = NameOfNode(i), driver = "ssh", ssh = "root@" + node.Address, port = 22, keyFile = setup._key, root = node.Root,
                })).Json(201);
                Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("OK"), host.ToJsonString());
            }
            setup.LocalName = (await (await setup.Http.GetAsync("/api/v1/hosts")).Json(200)).AsArray()
                .First(h => h!["local"]!.GetValue<bool>())!["name"]!.GetValue<string>();
            return setup;
        }
        catch
        {
            await setup.DisposeAsync();
            throw;
        }
    }

    /// <summary>Everything the server printed so far (the current process's, after a restart).</summary>
    public string ServerLog => _server!.Log;

    /// <summary>Stops the server as an operator would (its VMs keep running) and starts it again on the same data dir.</summary>
    public async Task RestartServerAsync()
    {
        await _server!.StopAsync();
        _server.Dispose();
        _server = null;
        _server = await NamespacedServer.StartAsync(FrontEnd, DataDir, _settings);
    }

    /// <summary>
    /// The destinations of a VXLAN device's entries for <paramref name="mac"/> in a namespace (the all-zeros MAC: its
    /// flooding list), sorted; empty when it has none or the device does not exist.
    /// </summary>
    public static async Task<IReadOnlyList<string>> FloodingAsync(NetworkNamespace ns, string vxlan, string mac = "00:00:00:00:00:00")
    {
        var (exit, output, _) = await ns.TryAsync("bridge", ["fdb", "show", "dev", vxlan]);
        if (exit != 0) return [];
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith(mac.ToLowerInvariant() + " dst ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>A bridge network; returns its id.</summary>
    public async Task<long> NetworkAsync(string name, string cidr, string gateway, string[] securityGroups) =>
        (await (await Http.PostAsJsonAsync("/api/v1/networks", new { name, driver = "bridge", cidr, gateway, dns = new[] { gateway }, securityGroups })).Json(201))["id"]!.GetValue<long>();

    /// <summary>An appliance VM on the network "span"-like <paramref name="network"/>, pinned to <paramref name="host"/>; its address by DHCP.</summary>
    public async Task<long> RunOnAsync(string name, string host, string network = "span") =>
        (await InstanceApiTests.CreateAsync(Http, new
        {
            name, networks = new[] { network }, sshKeys = new[] { _publicKey }, requirements = $"NAME = \"{host}\"",
            context = new Dictionary<string, string> { ["ETH0_METHOD"] = "dhcp" },
        }))["id"]!.GetValue<long>();

    public async Task<JsonNode> ReadyAsync(long id)
    {
        var ready = await InstanceApiTests.WaitAsync(Http, id, "ready", 400);
        Assert.That(ready["ready"]?.GetValue<bool>(), Is.True, "the guest reached the guest API through its gateway: " + ready.ToJsonString() + "\n" + _server!.Log[^Math.Min(4000, _server.Log.Length)..]);
        return ready;
    }

    public static string Ip(JsonNode vm) => vm["nics"]![0]!["ip"]!.GetValue<string>();
    public static string Mac(JsonNode vm) => vm["nics"]![0]!["mac"]!.GetValue<string>();
    public static int Pat(JsonNode vm, int guestPort) =>
        vm["portForwards"]!.AsArray().Single(f => f!["guestPort"]!.GetValue<int>() == guestPort)!["hostPort"]!.GetValue<int>();

    /// <summary>Runs a command in the guest over SSH through its PAT port on the front-end.</summary>
    public async Task<string> SshAsync(JsonNode vm, string command, bool mustSucceed = true, int timeoutSeconds = 60)
    {
        var result = await FrontEnd.TryAsync("ssh", ["-i", _key, "-p", Pat(vm, 22).ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "root@127.0.0.1", command], TimeSpan.FromSeconds(timeoutSeconds));
        if (mustSucceed) Assert.That(result.Exit, Is.Zero, $"ssh {vm["name"]} '{command}': {result.Err}");
        return result.Out;
    }

    /// <summary>Port 80 of the guest through its PAT port on the front-end.</summary>
    public async Task<string> CurlAsync(JsonNode vm) => (await FrontEnd.TryAsync("curl", ["-s", "-m", "8", $"http://127.0.0.1:{Pat(vm, 80)}/"], TimeSpan.FromSeconds(20))).Out;

    /// <summary>Under TCG on a loaded machine a guest can be slow to answer: what must work gets three tries.</summary>
    public async Task<string> EventuallyAsync(Func<Task<string>> probe, string expected)
    {
        var output = "";
        for (var attempt = 0; attempt < 3 && !output.Contains(expected); attempt++)
        {
            if (attempt > 0) TestContext.Progress.WriteLine($"retrying (attempt {attempt + 1}) after: '{output.Trim()}'");
            output = await probe();
        }
        return output;
    }

    public async Task TerminateAsync(long id)
    {
        await (await Http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(Http, id, "DONE", 120))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
    }

    /// <summary>No tap, bridge, VXLAN, nft rule, dnsmasq or QEMU is left in the front-end's namespace.</summary>
    public async Task AssertFrontEndCleanAsync()
    {
        var links = await FrontEnd.RunAsync("ip", ["-o", "link", "show"]);
        Assert.That(links, Does.Not.Contain("sltap-").And.Not.Contain("slbr-").And.Not.Contain("slvx-"), "no tap, bridge or VXLAN is left on the front-end");
        Assert.That((await FrontEnd.RunAsync("nft", ["list", "ruleset"])).Trim(), Is.Empty, "no nft rule is left on the front-end");
        var left = new List<string>();
        foreach (var pid in await FrontEnd.PidsAsync())
        {
            try { left.Add(File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ')); } catch (IOException) { }
        }
        Assert.That(left.Where(c => c.Contains("dnsmasq") || c.Contains("qemu-system")), Is.Empty, "no dnsmasq or QEMU is left");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        _server?.Dispose();
        if (FrontEnd is not null) await FrontEnd.DisposeAsync();
        TempDir.Delete(KeyDir);
        TempDir.Delete(DataDir);
    }
}
