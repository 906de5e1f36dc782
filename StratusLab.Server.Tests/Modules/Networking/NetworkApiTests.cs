using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>Networks, leases and security groups over HTTP, with instances on the simulated driver (leases, no host side).</summary>
public class NetworkApiTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Networking:PatPortFirst"] = "31000", ["Networking:PatPortLast"] = "31999", ["Networking:SimulatedPorts"] = "true" });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..6];

    // Each test gets its own /24 so that networks of different tests never overlap.
    static int _subnet = 10;
    static string Subnet() => $"10.{100 + Interlocked.Increment(ref _subnet)}.0";

    async Task<JsonNode> CreateNetworkAsync(HttpClient http, object body, int status = 201) =>
        await (await http.PostAsJsonAsync("/api/v1/networks", body)).Json(status);

    async Task<JsonNode> LeasesAsync(HttpClient http, string network, string? state = null) =>
        await (await http.GetAsync($"/api/v1/networks/{network}/leases" + (state is null ? "" : "?state=" + state))).Json(200);

    [Test]
    public async Task The_default_network_is_qemu_user_modes_layout_and_cannot_be_deleted()
    {
        var network = await (await _admin.GetAsync("/api/v1/networks/default")).Json(200);
        Assert.That(network["driver"]!.GetValue<string>(), Is.EqualTo("user"));
        Assert.That(network["cidr"]!.GetValue<string>(), Is.EqualTo("10.0.2.0/24"));
        Assert.That(network["gateway"]!.GetValue<string>(), Is.EqualTo("10.0.2.2"));
        Assert.That(network["dns"]!.AsArray().Select(d => d!.GetValue<string>()), Is.EqualTo(new[] { "10.0.2.3" }));
        Assert.That(network["ranges"]![0]!["first"]!.GetValue<string>(), Is.EqualTo("10.0.2.15"));
        Assert.That(network["owner"]!.GetValue<string>(), Is.EqualTo("site"));
        using var user = _server.Client(await _server.CreateUserAsync(Unique("dflt")));
        await (await user.GetAsync("/api/v1/networks/default")).Json(200);
        var problem = await (await _admin.DeleteAsync("/api/v1/networks/default")).Problem(409);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("default network"));
    }

    [Test]
    public async Task Ranges_can_be_given_as_cidr_first_and_last_or_network_and_mask()
    {
        var s1 = Subnet();
        var cidr = await CreateNetworkAsync(_admin, new { name = Unique("cidr"), cidr = $"{s1}.0/24", gateway = $"{s1}.1", dns = new[] { $"{s1}.1" } });
        Assert.That((cidr["size"]!.GetValue<long>(), cidr["held"]!.GetValue<long>(), cidr["free"]!.GetValue<long>()), Is.EqualTo((254L, 1L, 253L)),
            "the gateway inside the range is held");
        var s2 = Subnet();
        var firstLast = await CreateNetworkAsync(_admin, new { name = Unique("fl"), first = $"{s2}.10", last = $"{s2}.19", mask = "255.255.255.0" });
        Assert.That((firstLast["cidr"]!.GetValue<string>(), firstLast["size"]!.GetValue<long>(), firstLast["gateway"]!.GetValue<string>()),
            Is.EqualTo(($"{s2}.0/24", 10L, $"{s2}.2")), "a user-mode network gets slirp's gateway (.2) and DNS (.3) by default");
        var s3 = Subnet();
        var networkMask = await CreateNetworkAsync(_admin, new { name = Unique("nm"), network = $"{s3}.0", mask = "24", first = $"{s3}.200" });
        Assert.That(networkMask["ranges"]![0]!["first"]!.GetValue<string>(), Is.EqualTo($"{s3}.200"));
        Assert.That(networkMask["size"]!.GetValue<long>(), Is.EqualTo(55));
        var s4 = Subnet();
        var several = await CreateNetworkAsync(_admin, new
        {
            name = Unique("multi"), driver = "bridge", gateway = $"{s4}.1",
            ranges = new object[] { new { cidr = $"{s4}.0/24", first = $"{s4}.10", last = $"{s4}.20" }, new { first = $"{s4}.100", last = $"{s4}.110", mask = "24" } },
        });
        Assert.That(several["ranges"]!.AsArray().Select(r => r!["size"]!.GetValue<long>()), Is.EqualTo(new[] { 11L, 11L }));
        Assert.That(several["bridge"]!.GetValue<string>(), Does.StartWith("slbr-"));
        Assert.That(several["securityGroups"]!.AsArray().Select(g => g!.GetValue<string>()), Is.EqualTo(new[] { "default" }));
    }

    [TestCase("""{"name": "bad1", "cidr": "10.200.0.5/24"}""", 400, "cidr", "host bits")]
    [TestCase("""{"name": "bad2", "cidr": "10.200.0.0/24", "gateway": "10.201.0.1"}""", 422, "gateway", "outside the network")]
    [TestCase("""{"name": "bad3", "cidr": "10.200.0.0/24", "gateway": "10.200.0.255"}""", 422, "gateway", "outside the network")]
    [TestCase("""{"name": "bad4", "cidr": "10.0.0.0/8"}""", 422, "cidr", "at most 65536")]
    [TestCase("""{"name": "bad5", "ranges": [{"cidr": "10.200.0.0/24"}, {"first": "10.200.0.50", "last": "10.200.0.60", "mask": "24"}]}""", 400, "ranges[1]", "overlaps")]
    [TestCase("""{"name": "bad6", "ranges": [{"cidr": "10.200.0.0/24"}, {"cidr": "10.201.0.0/24"}]}""", 400, "ranges[1]", "share one subnet")]
    [TestCase("""{"name": "bad7", "cidr": "10.200.0.0/24", "driver": "bridge"}""", 422, "gateway", "bridge network needs 'gateway'")]
    [TestCase("""{"name": "bad8", "cidr": "10.200.0.0/24", "driver": "vde"}""", 400, "driver", "accepted values: bridge, user")]
    [TestCase("""{"name": "bad9", "cidr": "10.200.0.0/24", "kind": "secret"}""", 400, "kind", "public, local, private")]
    [TestCase("""{"name": "bad10"}""", 400, "cidr", "No address range given")]
    [TestCase("""{"name": "bad11", "first": "10.200.0.9", "last": "10.200.0.1"}""", 400, "last", "comes before")]
    [TestCase("""{"name": "bad12", "cidr": "10.200.0.0/24", "mtu": 100}""", 400, "mtu", "576..9000")]
    [TestCase("""{"name": "bad13", "cidr": "10.200.0.0/24", "securityGroups": ["nope"]}""", 422, "securityGroups", "Unknown security group")]
    [TestCase("""{"name": "bad14", "cidr": "10.200.0.0/24", "driver": "bridge", "gateway": "10.200.0.1", "vlanId": 42}""", 422, "uplink", "carries the VLAN")]
    [TestCase("""{"name": "bad15", "cidr": "10.200.0.0/24", "vlanId": 42, "uplink": "eth1"}""", 422, "vlanId", "bridge networks only")]
    [TestCase("""{"name": "bad16", "cidr": "10.200.0.0/24", "dns": ["resolver"]}""", 400, "dns", "not an IPv4 address")]
    [TestCase("""{"name": "bad18", "cidr": "224.1.0.0/24"}""", 400, "cidr", "224.1.0.0/24 lies in multicast addresses (224.0.0.0/4)")]
    [TestCase("""{"name": "bad19", "cidr": "127.1.0.0/24", "driver": "bridge", "gateway": "127.1.0.1"}""", 400, "cidr", "127.1.0.0/24 lies in loopback addresses")]
    [TestCase("""{"name": "bad20", "network": "0.0.0.0", "mask": "24"}""", 400, "network", "0.0.0.0/24 lies in 'this network' addresses")]
    [TestCase("""{"name": "bad21", "first": "169.254.0.10", "last": "169.254.0.20"}""", 400, "first", "link-local addresses")]
    [TestCase("""{"name": "bad22", "ranges": [{"cidr": "240.0.0.0/24"}]}""", 400, "ranges", "class E")]
    [TestCase("""{"name": "bad23", "cidr": "10.200.0.7/32"}""", 400, "cidr", "10.200.0.7/32 is a /32: it has no room")]
    [TestCase("""{"name": "bad24", "cidr": "10.200.0.0/24", "first": "10.200.0.1", "last": "10.200.0.1", "driver": "bridge", "gateway": "10.200.0.1"}""", 400, "cidr", "leaves no address for guests once the gateway 10.200.0.1 is reserved")]
    [TestCase("""{"name": "default", "cidr": "10.200.0.0/24"}""", 409, null, "already exists")]
    [TestCase("""{"name": "bad17", "cidr": "10.0.2.128/25"}""", 409, null, "overlaps network 'default'")]
    public async Task Bad_networks_are_refused_saying_what_to_fix_and_nothing_is_made(string json, int status, string? field, string message)
    {
        var before = (await (await _admin.GetAsync("/api/v1/networks")).Json(200)).AsArray().Count;
        var problem = await (await _admin.PostAsync("/api/v1/networks", Http.RawJson(json))).Problem(status);
        Assert.That(problem["field"]?.GetValue<string>(), Is.EqualTo(field), problem.ToJsonString());
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain(message));
        Assert.That((await (await _admin.GetAsync("/api/v1/networks")).Json(200)).AsArray(), Has.Count.EqualTo(before));
    }

    [Test]
    public async Task A_bridge_network_over_one_of_the_hosts_own_routes_is_refused()
    {
        var (_, routes, _) = await HostTools.RunAsync("ip", ["-j", "-4", "route", "show"], TimeSpan.FromSeconds(10));
        // Not a route of this server's own bridges (slbr-N): other tests in parallel make and remove those.
        var dst = (JsonNode.Parse(routes)?.AsArray() ?? [])
            .Where(r => r!["dev"]?.GetValue<string>() is { } dev && !dev.StartsWith("sl", StringComparison.Ordinal))
            .Select(r => r!["dst"]?.GetValue<string>()).FirstOrDefault(d => d is not null && d != "default" && d.Contains('/'));
        if (dst is null) Assert.Ignore("this host has no route but the default one");
        var prefix = dst!.Split('/')[0][..dst.LastIndexOf('.')];
        var problem = await (await _admin.PostAsJsonAsync("/api/v1/networks", new
        {
            name = Unique("hostnet"), driver = "bridge", cidr = dst, first = prefix + ".10", last = prefix + ".20", gateway = prefix + ".1",
        })).Problem(409);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("overlaps the host's route"));
    }

    [TestCase("""{"name": "vl", "cidr": "10.210.0.0/24", "driver": "bridge", "gateway": "10.210.0.1", "vlanId": 7, "uplink": "eth1"}""", "vlanId")]
    [TestCase("""{"name": "pub", "cidr": "10.211.0.0/24", "kind": "public"}""", "kind")]
    public async Task Vlans_and_public_networks_are_for_administrators(string json, string field)
    {
        using var user = _server.Client(await _server.CreateUserAsync(Unique("vlan")));
        var problem = await (await user.PostAsync("/api/v1/networks", Http.RawJson(json))).Problem(403);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field));
        var made = await (await _admin.PostAsync("/api/v1/networks", Http.RawJson(json))).Json(201);
        await (await _admin.DeleteAsync($"/api/v1/networks/{made["name"]}")).Json(204);
    }

    [Test, CancelAfter(60_000)]
    public async Task An_instance_gets_a_lease_per_nic_its_pat_ports_and_gives_them_back_when_it_ends()
    {
        var s = Subnet();
        var name = Unique("two");
        await CreateNetworkAsync(_admin, new { name, cidr = $"{s}.0/29" });
        var created = await InstanceApiTests.CreateAsync(_admin, new { networks = new[] { name, "default" }, forwardPorts = new[] { 8080 } });
        var id = created["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING");
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        var nics = running["nics"]!.AsArray();
        Assert.That(nics.Select(n => (n!["index"]!.GetValue<int>(), n["network"]!.GetValue<string>())), Is.EqualTo(new[] { (0, name), (1, "default") }));
        Assert.That(nics[0]!["ip"]!.GetValue<string>(), Is.EqualTo($"{s}.1"));
        Assert.That(nics[0]!["mac"]!.GetValue<string>(), Is.EqualTo($"02:00:0a:{int.Parse(s.Split('.')[1]):x2}:00:01"));
        var forwards = running["portForwards"]!.AsArray();
        Assert.That(forwards.Select(f => f!["guestPort"]!.GetValue<int>()), Is.EqualTo(new[] { 22, 80, 8080 }));
        Assert.That(forwards.Select(f => f!["hostPort"]!.GetValue<int>()), Is.All.InRange(31000, 31999));
        Assert.That(forwards.Select(f => f!["hostAddress"]!.GetValue<string>()), Is.All.EqualTo("127.0.0.1"));

        var leases = await LeasesAsync(_admin, name, "used");
        Assert.That(leases.AsArray().Single()!["instanceId"]!.GetValue<long>(), Is.EqualTo(id));
        Assert.That(leases.AsArray().Single()!["forwards"]!.AsArray(), Has.Count.EqualTo(3), "PAT goes to the first NIC (not on a public network)");

        var describe = new StringWriter();
        Assert.That(await ClientCli.RunAsync(["describe-instance", id.ToString(), "--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken], describe, new StringWriter()), Is.Zero);
        Assert.That(describe.ToString(), Does.Contain($"{s}.1").And.Contain($"22:{forwards[0]!["hostPort"]}"));
        var connect = new StringWriter();
        Assert.That(await ClientCli.RunAsync(["connect-instance", id.ToString(), "--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken], connect, new StringWriter()), Is.Zero);
        Assert.That(connect.ToString(), Does.Contain($"ssh -p {forwards[0]!["hostPort"]}").And.Contain("root@127.0.0.1"));

        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        await InstanceApiTests.WaitAsync(_admin, id, "DONE");
        Assert.That((await LeasesAsync(_admin, name, "used")).AsArray(), Is.Empty, "the lease is given back");
        Assert.That((await LeasesAsync(_admin, "default", "used")).AsArray().Where(l => l!["instanceId"]!.GetValue<long>() == id), Is.Empty);
        await (await _admin.DeleteAsync($"/api/v1/networks/{name}")).Json(204);
    }

    [Test, CancelAfter(60_000)]
    public async Task Holding_and_releasing_addresses_follow_the_lease_rules()
    {
        var s = Subnet();
        var name = Unique("hold");
        using var owner = _server.Client(await _server.CreateUserAsync(Unique("owner")));
        using var other = _server.Client(await _server.CreateUserAsync(Unique("other")));
        await CreateNetworkAsync(owner, new { name, cidr = $"{s}.0/29" });
        await (await other.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = $"{s}.4" })).Problem(404);

        var held = await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = $"{s}.4" })).Json(200);
        Assert.That((held["state"]!.GetValue<string>(), held["mac"]!.GetValue<string>()), Is.EqualTo(("held", $"02:00:0a:{int.Parse(s.Split('.')[1]):x2}:00:04")));
        Assert.That((await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = $"{s}.4" })).Problem(409))["detail"]!.GetValue<string>(), Does.Contain("already held"));
        Assert.That((await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = $"{s}.9" })).Problem(422))["detail"]!.GetValue<string>(), Does.Contain("not in an address range"));
        await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = "ten" })).Problem(400);
        Assert.That((await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/release", new { ip = $"{s}.5" })).Problem(409))["detail"]!.GetValue<string>(), Does.Contain("not held"));
        Assert.That((await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/release", new { ip = $"{s}.2" })).Problem(409))["detail"]!.GetValue<string>(), Does.Contain("gateway"));

        var id = (await InstanceApiTests.CreateAsync(owner, new { networks = new[] { name } }))["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(owner, id, "RUNNING");
        var used = (await LeasesAsync(owner, name, "used")).AsArray().Single()!["ip"]!.GetValue<string>();
        Assert.That(used, Is.Not.EqualTo($"{s}.4"), "a held address is never given to a VM");
        Assert.That((await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = used })).Problem(409))["detail"]!.GetValue<string>(), Does.Contain($"in use by instance {id}"));
        Assert.That((await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/release", new { ip = used })).Problem(409))["detail"]!.GetValue<string>(), Does.Contain("not held"));
        Assert.That((await (await owner.DeleteAsync($"/api/v1/networks/{name}")).Problem(409))["detail"]!.GetValue<string>(), Does.Contain($"in use by instance(s) {id}"));

        await (await owner.PostAsJsonAsync($"/api/v1/networks/{name}/release", new { ip = $"{s}.4" })).Json(204);
        await (await owner.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        await InstanceApiTests.WaitAsync(owner, id, "DONE");
        await (await owner.DeleteAsync($"/api/v1/networks/{name}")).Json(204);
        await (await owner.GetAsync($"/api/v1/networks/{name}")).Problem(404);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_full_network_refuses_new_instances_and_one_that_fills_up_meanwhile_fails_the_instance_with_the_reason()
    {
        var s = Subnet();
        var name = Unique("tiny");
        await CreateNetworkAsync(_admin, new { name, first = $"{s}.10", last = $"{s}.11", mask = "24" });
        var problem = await (await _admin.PostAsJsonAsync("/api/v1/instances", new { networks = new[] { name }, count = 3 })).Problem(409);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain($"Network '{name}' has 2 free address(es)").And.Contain("needs 3"));

        // No host takes it while the last address gets held, so it reaches PROLOG with the network full.
        var hosts = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().Select(h => h!["name"]!.GetValue<string>()).ToList();
        foreach (var host in hosts) await (await _admin.PostAsync($"/api/v1/hosts/{host}/disable", null)).Json(200);
        long late;
        try
        {
            await (await _admin.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = $"{s}.10" })).Json(200);
            late = (await InstanceApiTests.CreateAsync(_admin, new { networks = new[] { name } }))["id"]!.GetValue<long>();
            await (await _admin.PostAsJsonAsync($"/api/v1/networks/{name}/hold", new { ip = $"{s}.11" })).Json(200);
        }
        finally
        {
            foreach (var host in hosts) await (await _admin.PostAsync($"/api/v1/hosts/{host}/enable", null)).Json(200);
        }
        var failed = await InstanceApiTests.WaitAsync(_admin, late, "RUNNING");
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain($"network '{name}' has no free address (2 of 2 leased or held)"));
        Assert.That((await LeasesAsync(_admin, name, "used")).AsArray(), Is.Empty, "nothing was half-made");
        Assert.That(failed["portForwards"]!.AsArray(), Is.Empty);
        await (await _admin.DeleteAsync($"/api/v1/instances/{late}")).Json(202);
    }

    [Test]
    public async Task A_users_network_is_theirs_others_can_neither_see_nor_use_it()
    {
        var s = Subnet();
        var name = Unique("mine");
        using var owner = _server.Client(await _server.CreateUserAsync(Unique("own")));
        using var other = _server.Client(await _server.CreateUserAsync(Unique("oth")));
        var made = await CreateNetworkAsync(owner, new { name, cidr = $"{s}.0/28" });
        Assert.That(made["owner"]!.GetValue<string>(), Does.StartWith("own"));
        await (await other.GetAsync($"/api/v1/networks/{name}")).Problem(404);
        Assert.That((await (await other.GetAsync("/api/v1/networks")).Json(200)).AsArray().Select(n => n!["name"]!.GetValue<string>()), Does.Contain("default").And.No.Contain(name));
        var problem = await (await other.PostAsJsonAsync("/api/v1/instances", new { networks = new[] { name } })).Problem(422);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain($"Unknown network '{name}'").And.Contain("networks you may use: default"));
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Not.Contain(name + ","));
        await (await other.DeleteAsync($"/api/v1/networks/{name}")).Problem(404);
        await (await owner.DeleteAsync($"/api/v1/networks/{name}")).Json(204);
    }

    [TestCase("""{"context": {"ETH0_IP": "10.9.9.9"}}""", 400, "context.ETH0_IP")]
    [TestCase("""{"context": {"ETH1_MAC": "02:00:00:00:00:01"}}""", 400, "context.ETH1_MAC")]
    [TestCase("""{"forwardPorts": [0]}""", 400, "forwardPorts")]
    [TestCase("""{"forwardPorts": [22, 22]}""", 400, "forwardPorts")]
    [TestCase("""{"networks": ["default", "default", "default", "default", "default", "default", "default", "default", "default"]}""", 400, "networks")]
    public async Task Instance_network_fields_are_checked(string json, int status, string field)
    {
        var problem = await (await _admin.PostAsync("/api/v1/instances", Http.RawJson(json))).Problem(status);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field));
    }

    [Test, CancelAfter(60_000)]
    public async Task Security_groups_hold_rules_that_can_be_added_and_removed_and_are_kept_while_used()
    {
        var group = Unique("sg");
        var created = await (await _admin.PostAsJsonAsync("/api/v1/security-groups", new
        {
            name = group, description = "web only", rules = new object[] { new { direction = "inbound", protocol = "tcp", ports = "80" } },
        })).Json(201);
        Assert.That(created["rules"]!.AsArray().Single()!["ports"]!.GetValue<string>(), Is.EqualTo("80"));
        var rule = await (await _admin.PostAsJsonAsync($"/api/v1/security-groups/{group}/rules", new { direction = "inbound", protocol = "tcp", ports = "22", cidr = "192.0.2.0/24", action = "drop" })).Json(201);
        Assert.That((rule["action"]!.GetValue<string>(), rule["cidr"]!.GetValue<string>()), Is.EqualTo(("drop", "192.0.2.0/24")));
        var bad = await (await _admin.PostAsJsonAsync($"/api/v1/security-groups/{group}/rules", new { direction = "inbound", protocol = "icmp", ports = "22" })).Problem(400);
        Assert.That(bad["field"]!.GetValue<string>(), Is.EqualTo("ports"));

        var s = Subnet();
        var network = Unique("sgnet");
        await CreateNetworkAsync(_admin, new { name = network, cidr = $"{s}.0/28", securityGroups = new[] { "default", group } });
        Assert.That((await (await _admin.DeleteAsync($"/api/v1/security-groups/{group}")).Problem(409))["detail"]!.GetValue<string>(), Does.Contain("used by 1 network"));
        await (await _admin.DeleteAsync($"/api/v1/security-groups/{group}/rules/{rule["id"]}")).Json(204);
        await (await _admin.DeleteAsync($"/api/v1/security-groups/{group}/rules/{rule["id"]}")).Problem(404);
        var shown = await (await _admin.GetAsync($"/api/v1/security-groups/{group}")).Json(200);
        Assert.That(shown["rules"]!.AsArray(), Has.Count.EqualTo(1));
        await (await _admin.DeleteAsync($"/api/v1/networks/{network}")).Json(204);
        await (await _admin.DeleteAsync($"/api/v1/security-groups/{group}")).Json(204);
        await (await _admin.DeleteAsync("/api/v1/security-groups/default")).Problem(409);
    }

    [Test]
    public async Task The_cli_creates_describes_holds_and_deletes_networks()
    {
        async Task<(int Code, string Out, string Err)> Run(params string[] args)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var code = await ClientCli.RunAsync([.. args, "--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken], output, error);
            return (code, output.ToString(), error.ToString());
        }
        var s = Subnet();
        var name = Unique("cli");
        var created = await Run("create-network", name, "--cidr", $"{s}.0/24", "--first", $"{s}.100", "--dns", "9.9.9.9");
        Assert.That(created.Code, Is.Zero, created.Err);
        Assert.That(created.Out, Does.Contain($"created network {name} (user, {s}.0/24, 155 addresses)"));
        var table = await Run("describe-networks", name);
        Assert.That(table.Out, Does.Contain("NAME").And.Contain($"{s}.100-{s}.254").And.Contain("9.9.9.9"));
        Assert.That((await Run("hold-address", name, $"{s}.100")).Code, Is.Zero);
        var leases = await Run("describe-leases", name);
        Assert.That(leases.Out, Does.Contain($"{s}.100").And.Contain("held by admin"));
        var refused = await Run("release-address", name, $"{s}.101");
        Assert.That((refused.Code, refused.Err), Is.EqualTo((1, $"stratuslab release-address: {s}.101 is not held (it is free); only held addresses can be released.\n")));
        Assert.That((await Run("release-address", name, $"{s}.100")).Code, Is.Zero);
        Assert.That((await Run("delete-network", name)).Code, Is.Zero);
        var bad = await Run("create-network", Unique("cli"), "--cidr", "10.0.0.0/33");
        Assert.That(bad.Code, Is.EqualTo(1));
        Assert.That(bad.Err, Does.Contain("CIDR notation"));
    }
}
