using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Modules.Monitoring;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Services;

/// <summary>Services over HTTP on the simulated driver with real context media: deployment order, role addresses, elasticity on guest KPIs, replacement, bad templates.</summary>
public partial class ServiceApiTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:SimulatedMedia"] = "true",
            ["Services:EvaluateIntervalSeconds"] = "1",
            ["Monitoring:KpiMaxReportsPerMinute"] = "600",
        });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await BridgeNetworks.RemoveAsync(_admin, "lan");
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    static object Role(string name, int min = 1, int max = 1, int? initial = null, string[]? dependsOn = null, object[]? elasticity = null,
        string? readyGate = null, string type = "t1.tiny") =>
        new { name, type, cardinality = new { min, max, initial }, dependsOn, elasticity, readyGate };

    async Task<JsonNode> CreateAsync(HttpClient http, string name, params object[] roles) =>
        await (await http.PostAsJsonAsync("/api/v1/services", new { name, roles })).Json(201);

    /// <summary>Polls the service until <paramref name="done"/> holds; fails with the last view after <paramref name="seconds"/>.</summary>
    static async Task<JsonNode> WaitForAsync(HttpClient http, long id, Func<JsonNode, bool> done, string what, int seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var node = await (await http.GetAsync($"/api/v1/services/{id}")).Json(200);
            if (done(node)) return node;
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) Assert.Fail($"timed out waiting for {what}: {node.ToJsonString()}");
            await Task.Delay(200);
        }
    }

    static JsonNode RoleOf(JsonNode service, string role) => service["roles"]!.AsArray().Single(r => r!["name"]!.GetValue<string>() == role)!;

    static List<JsonNode> Members(JsonNode service, string role, bool includeLeaving = false) =>
        RoleOf(service, role)["members"]!.AsArray().Where(m => includeLeaving || !m!["leaving"]!.GetValue<bool>()).Select(m => m!).ToList();

    static bool AllRunning(JsonNode service, string role, int count)
    {
        var members = Members(service, role);
        return members.Count == count && members.All(m => m["state"]!.GetValue<string>() == "RUNNING");
    }

    static List<JsonNode> Decisions(JsonNode service, string? kind = null) =>
        service["decisions"]!.AsArray().Select(d => d!).Where(d => kind is null || d["kind"]!.GetValue<string>() == kind).ToList();

    async Task<string> ContextScriptAsync(long instanceId) =>
        await MonitoringApiTests.IsoFileAsync(Path.Combine(_server.DataDir, "instances", instanceId.ToString(), "context.iso"), "/context.sh");

    async Task<string> GuestTokenAsync(long instanceId)
    {
        var token = Regex.Match(await ContextScriptAsync(instanceId), "STRATUSLAB_TOKEN='([^']+)'").Groups[1].Value;
        Assert.That(token, Does.StartWith("slg_"));
        return token;
    }

    async Task PushAsync(string token, double rps)
    {
        using var guest = _server.Client(null);
        using var request = new HttpRequestMessage(HttpMethod.Put, "/guest/v1/metrics")
        {
            Content = JsonContent.Create(new Dictionary<string, double> { ["rps"] = rps }),
            Headers = { Authorization = new("Bearer", token) },
        };
        Assert.That((int)(await guest.SendAsync(request)).StatusCode, Is.EqualTo(204));
    }

    async Task<JsonNode> GuestServiceAsync(string token)
    {
        using var guest = _server.Client(null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/guest/v1/service") { Headers = { Authorization = new("Bearer", token) } };
        return await (await guest.SendAsync(request)).Json(200);
    }

    /// <summary>Keeps every current member of the role reporting <paramref name="rps"/>() every 300 ms until cancelled.</summary>
    async Task ReportLoopAsync(HttpClient http, long id, string role, Func<double> rps, CancellationToken ct)
    {
        var tokens = new Dictionary<long, string>();
        while (!ct.IsCancellationRequested)
        {
            var service = await (await http.GetAsync($"/api/v1/services/{id}", CancellationToken.None)).Json(200);
            foreach (var m in Members(service, role).Where(m => m["state"]!.GetValue<string>() == "RUNNING"))
            {
                var instance = m["instanceId"]!.GetValue<long>();
                if (!tokens.TryGetValue(instance, out var token)) tokens[instance] = token = await GuestTokenAsync(instance);
                await PushAsync(token, rps());
            }
            try { await Task.Delay(300, ct); } catch (OperationCanceledException) { }
        }
    }

    [Test]
    public async Task KPIs_pushed_by_members_scale_a_role_out_and_in_within_min_and_max_after_the_cooldown_and_every_decision_is_recorded()
    {
        var user = "svc" + Guid.NewGuid().ToString("N")[..6];
        using var http = _server.Client(await _server.CreateUserAsync(user));
        var created = await CreateAsync(http, "web", Role("front", min: 1, max: 2, elasticity:
        [
            new { expression = "avg(rps, 3s) > 50", periods = 2, adjustment = "+2", cooldownSeconds = 8 },
            new { expression = "max(rps, 3s) < 10", periods = 2, adjustment = "-50%", cooldownSeconds = 0 },
        ]));
        var id = created["id"]!.GetValue<long>();
        Assert.That(created["state"]!.GetValue<string>(), Is.EqualTo("DEPLOYING"));
        var running = await WaitForAsync(http, id, s => s["state"]!.GetValue<string>() == "RUNNING", "RUNNING");
        var first = Members(running, "front").Single()["instanceId"]!.GetValue<long>();

        // Quiet (rps 30, between the thresholds): no decision for several evaluations.
        var rps = 30.0;
        using var stop = new CancellationTokenSource();
        var reporting = ReportLoopAsync(http, id, "front", () => rps, stop.Token);
        try
        {
            await Task.Delay(4000);
            var quiet = await (await http.GetAsync($"/api/v1/services/{id}")).Json(200);
            Assert.That(Decisions(quiet, "elasticity"), Is.Empty, quiet.ToJsonString());

            // Load: +2 asked, max 2 kept; then COOLDOWN with a time.
            rps = 120;
            var scaled = await WaitForAsync(http, id, s => AllRunning(s, "front", 2), "two RUNNING front-ends");
            var outDecision = Decisions(scaled, "elasticity").Single();
            Assert.Multiple(() =>
            {
                Assert.That(outDecision["from"]!.GetValue<int>(), Is.EqualTo(1));
                Assert.That(outDecision["to"]!.GetValue<int>(), Is.EqualTo(2), "max 2 is never crossed although +2 was asked");
                Assert.That(outDecision["values"]!["value"]!.GetValue<double>(), Is.GreaterThan(50));
                Assert.That(outDecision["values"]!["periods"]!.GetValue<int>(), Is.GreaterThanOrEqualTo(2));
                Assert.That(outDecision["values"]!["perMember"]![first.ToString()]!.GetValue<double>(), Is.GreaterThan(50));
                Assert.That(outDecision["reason"]!.GetValue<string>(), Does.Contain("kept within 1..2"));
            });
            // Idle at once: the scale-in rule holds within a few seconds, but must wait for the 8 s cooldown.
            rps = 1;
            var cooling = await WaitForAsync(http, id, s => RoleOf(s, "front")["cooldownUntil"] is not null, "a cooldown");
            Assert.That(cooling["state"]!.GetValue<string>(), Is.EqualTo("COOLDOWN"), cooling.ToJsonString());
            var cooldownUntil = DateTimeOffset.Parse(RoleOf(cooling, "front")["cooldownUntil"]!.GetValue<string>());
            var newest = Members(cooling, "front").Max(m => m["instanceId"]!.GetValue<long>());

            // Scale-in only after the cooldown; the newest member leaves.
            var shrunk = await WaitForAsync(http, id, s => Decisions(s, "elasticity").Count == 2 && AllRunning(s, "front", 1), "scale-in to 1");
            var inDecision = Decisions(shrunk, "elasticity")[1];
            Assert.Multiple(() =>
            {
                Assert.That(inDecision["from"]!.GetValue<int>(), Is.EqualTo(2));
                Assert.That(inDecision["to"]!.GetValue<int>(), Is.EqualTo(1));
                Assert.That(inDecision["values"]!["value"]!.GetValue<double>(), Is.LessThan(10));
                Assert.That(DateTimeOffset.Parse(inDecision["at"]!.GetValue<string>()), Is.GreaterThanOrEqualTo(cooldownUntil), "no decision during the cooldown");
                Assert.That(Members(shrunk, "front").Single()["instanceId"]!.GetValue<long>(), Is.EqualTo(first), "the newest member is the one that leaves");
            });
            var gone = await InstanceApiTests.WaitAsync(http, newest, "DONE", 30);
            Assert.That(gone["state"]!.GetValue<string>(), Is.EqualTo("DONE"), "the retired member was shut down");

            // Idle at min: min 1 is never crossed.
            await Task.Delay(4000);
            var atMin = await (await http.GetAsync($"/api/v1/services/{id}")).Json(200);
            Assert.That(Decisions(atMin, "elasticity"), Has.Count.EqualTo(2), atMin.ToJsonString());
            Assert.That(RoleOf(atMin, "front")["cardinality"]!.GetValue<int>(), Is.EqualTo(1));
        }
        finally
        {
            stop.Cancel();
            await reporting;
            await http.DeleteAsync($"/api/v1/services/{id}");
        }
    }

    [Test]
    public async Task Roles_start_in_dependency_order_and_every_member_sees_the_other_roles_addresses()
    {
        var created = await CreateAsync(_admin, "shop", Role("web", min: 1, max: 3, initial: 2, dependsOn: ["db"]), Role("db", readyGate: "guest"));
        var id = created["id"]!.GetValue<long>();
        try
        {
            var dbRunning = await WaitForAsync(_admin, id, s => AllRunning(s, "db", 1), "db RUNNING");
            var db = Members(dbRunning, "db").Single();
            await Task.Delay(2500);
            var waiting = await (await _admin.GetAsync($"/api/v1/services/{id}")).Json(200);
            Assert.Multiple(() =>
            {
                Assert.That(Members(waiting, "web"), Is.Empty, "web waits until db is ready (its guest reported)");
                Assert.That(waiting["state"]!.GetValue<string>(), Is.EqualTo("DEPLOYING"));
                Assert.That(waiting["reason"]!.GetValue<string>(), Does.Contain("web waits for db"));
            });

            var dbToken = await GuestTokenAsync(db["instanceId"]!.GetValue<long>());
            using (var guest = _server.Client(null))
            using (var ready = new HttpRequestMessage(HttpMethod.Put, "/guest/v1/ready") { Headers = { Authorization = new("Bearer", dbToken) } })
                Assert.That((int)(await guest.SendAsync(ready)).StatusCode, Is.EqualTo(204));

            var up = await WaitForAsync(_admin, id, s => s["state"]!.GetValue<string>() == "RUNNING", "RUNNING");
            var dbIp = db["ip"]!.GetValue<string>();
            var web = Members(up, "web");
            Assert.That(web, Has.Count.EqualTo(2));
            var webIps = web.Select(m => m["ip"]!.GetValue<string>()).ToList();
            Assert.That(RoleOf(up, "web")["ips"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EqualTo(webIps));
            foreach (var m in web)
            {
                var script = await ContextScriptAsync(m["instanceId"]!.GetValue<long>());
                Assert.That(script, Does.Contain($"ROLE_DB_IPS='{dbIp}'"), script);
                Assert.That(script, Does.Contain("SERVICE_ROLE='web'"), script);
            }
            var deploys = Decisions(up, "deploy");
            Assert.That(deploys.Select(d => d["role"]!.GetValue<string>()), Is.EqualTo(new[] { "db", "web" }));

            // The guest API gives the current addresses, and follows a change of members.
            var seen = await GuestServiceAsync(dbToken);
            Assert.Multiple(() =>
            {
                Assert.That(seen["role"]!.GetValue<string>(), Is.EqualTo("db"));
                Assert.That(seen["roles"]!["web"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EquivalentTo(webIps));
                Assert.That(seen["context"]!["ROLE_WEB_IPS"]!.GetValue<string>(), Is.EqualTo(string.Join(',', webIps)));
            });
            await (await _admin.PostAsJsonAsync($"/api/v1/services/{id}/scale", new { role = "web", cardinality = 3 })).Json(200);
            var three = await WaitForAsync(_admin, id, s => AllRunning(s, "web", 3) && s["state"]!.GetValue<string>() == "RUNNING", "three web members");
            var threeIps = Members(three, "web").Select(m => m["ip"]!.GetValue<string>()).ToList();
            // Every VM of a QEMU user-mode network is 10.0.2.15 in its own SLIRP, so the list is checked by length and order.
            Assert.That(threeIps, Has.Count.EqualTo(3));
            seen = await GuestServiceAsync(dbToken);
            Assert.That(seen["context"]!["ROLE_WEB_IPS"]!.GetValue<string>(), Is.EqualTo(string.Join(',', threeIps)));
            Assert.That(Decisions(three, "manual").Single()["to"]!.GetValue<int>(), Is.EqualTo(3));

            var outside = await (await _admin.PostAsJsonAsync($"/api/v1/services/{id}/scale", new { role = "web", cardinality = 4 })).Problem(400);
            Assert.That(outside["field"]!.GetValue<string>(), Is.EqualTo("cardinality"));
        }
        finally
        {
            var deleted = await (await _admin.DeleteAsync($"/api/v1/services/{id}")).Json(200);
            Assert.That(deleted["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        }
    }

    [Test]
    public async Task A_failed_member_is_replaced_and_the_replacement_is_recorded()
    {
        var created = await CreateAsync(_admin, "solo", Role("worker"));
        var id = created["id"]!.GetValue<long>();
        try
        {
            var running = await WaitForAsync(_admin, id, s => AllRunning(s, "worker", 1) && s["state"]!.GetValue<string>() == "RUNNING", "RUNNING");
            var old = Members(running, "worker").Single()["instanceId"]!.GetValue<long>();
            Assert.That((int)(await _admin.PostAsync($"/api/v1/simulator/instances/{old}/crash", null)).StatusCode, Is.EqualTo(204));
            var replaced = await WaitForAsync(_admin, id, s => AllRunning(s, "worker", 1) && Members(s, "worker").Single()["instanceId"]!.GetValue<long>() != old,
                "a replacement");
            var decision = Decisions(replaced, "replace").Single();
            Assert.Multiple(() =>
            {
                Assert.That(decision["values"]!["instanceId"]!.GetValue<long>(), Is.EqualTo(old));
                Assert.That(decision["values"]!["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
                Assert.That(decision["reason"]!.GetValue<string>(), Does.Contain($"member {old} FAILED"));
            });
        }
        finally { await _admin.DeleteAsync($"/api/v1/services/{id}"); }
    }

    [Test]
    public async Task A_scheduled_rule_sets_the_cardinality_when_its_cron_time_comes_and_is_recorded()
    {
        var created = await (await _admin.PostAsJsonAsync("/api/v1/services", new
        {
            name = "nightly",
            roles = new[] { new { name = "batch", type = "t1.tiny", cardinality = new { min = 1, max = 2 }, scheduled = new[] { new { cron = "0/3 * * * * ?", cardinality = 2 } } } },
        })).Json(201);
        var id = created["id"]!.GetValue<long>();
        try
        {
            var two = await WaitForAsync(_admin, id, s => AllRunning(s, "batch", 2), "the scheduled second member");
            var decision = Decisions(two, "schedule").Single();
            Assert.Multiple(() =>
            {
                Assert.That(decision["from"]!.GetValue<int>(), Is.EqualTo(1));
                Assert.That(decision["to"]!.GetValue<int>(), Is.EqualTo(2));
                Assert.That(decision["rule"]!.GetValue<string>(), Does.Contain("0/3 * * * * ?"));
                Assert.That(DateTimeOffset.Parse(decision["values"]!["firedAt"]!.GetValue<string>()).Second % 3, Is.EqualTo(0));
            });
        }
        finally { await _admin.DeleteAsync($"/api/v1/services/{id}"); }
    }

    [Test]
    public async Task Another_users_service_is_not_found_and_the_owner_sees_only_their_own()
    {
        var created = await CreateAsync(_admin, "private", Role("one", min: 0, max: 1, initial: 0));
        var id = created["id"]!.GetValue<long>();
        using var other = _server.Client(await _server.CreateUserAsync("peek" + Guid.NewGuid().ToString("N")[..6]));
        await (await other.GetAsync($"/api/v1/services/{id}")).Problem(404);
        await (await other.PostAsJsonAsync($"/api/v1/services/{id}/scale", new { role = "one", cardinality = 1 })).Problem(404);
        await (await other.DeleteAsync($"/api/v1/services/{id}")).Problem(404);
        Assert.That((await (await other.GetAsync("/api/v1/services")).Json(200)).AsArray(), Is.Empty);
        await _admin.DeleteAsync($"/api/v1/services/{id}");
    }

    [Test]
    public async Task The_demonstrator_template_deploys_front_ends_then_the_balancer_with_their_addresses()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "stratuslab.sln"))) dir = dir.Parent;
        Assert.That(dir, Is.Not.Null, "the repository root (stratuslab.sln) is not above the test directory");
        var template = await File.ReadAllTextAsync(Path.Combine(dir!.FullName, "config", "examples", "service-balancer.json"));
        // The template's roles share the bridge network "lan" (guests on user-mode networks cannot reach each other).
        if ((await _admin.GetAsync("/api/v1/networks/lan")).StatusCode == System.Net.HttpStatusCode.NotFound)
            await (await _admin.PostAsJsonAsync("/api/v1/networks", new { name = "lan", driver = "bridge", cidr = "10.79.0.0/24", gateway = "10.79.0.1" })).Json(201);
        var created = await (await _admin.PostAsync("/api/v1/services", Http.RawJson(template))).Json(201);
        var id = created["id"]!.GetValue<long>();
        try
        {
            var up = await WaitForAsync(_admin, id, s => s["state"]!.GetValue<string>() == "RUNNING", "RUNNING");
            var frontend = Members(up, "frontend").Single();
            var balancer = Members(up, "balancer").Single();
            Assert.That(balancer["instanceId"]!.GetValue<long>(), Is.GreaterThan(frontend["instanceId"]!.GetValue<long>()), "the balancer starts after the front-end");
            var script = await ContextScriptAsync(balancer["instanceId"]!.GetValue<long>());
            Assert.That(frontend["ip"]!.GetValue<string>(), Does.StartWith("10.79.0."), "the front-end is on the bridge network 'lan'");
            Assert.That(script, Does.Contain($"ROLE_FRONTEND_IPS='{frontend["ip"]!.GetValue<string>()}'").And.Contain("STRATUSLAB_LB_ROLE='frontend'"), script);
        }
        finally { await _admin.DeleteAsync($"/api/v1/services/{id}"); }
    }

    static IEnumerable<TestCaseData> BadTemplates()
    {
        object R(string name, string? image = null, string type = "t1.tiny", object? cardinality = null, string[]? dependsOn = null, object[]? elasticity = null, object[]? scheduled = null) =>
            new { name, image, type, cardinality = cardinality ?? new { min = 1, max = 1 }, dependsOn, elasticity, scheduled };
        yield return new TestCaseData(new object[] { R("a", dependsOn: ["b"]), R("b", dependsOn: ["c"]), R("c", dependsOn: ["a"]) }, "roles[0].dependsOn[0]", "cycle").SetName("A dependency cycle names the role and position");
        yield return new TestCaseData(new object[] { R("a"), R("b", cardinality: new { min = 3, max = 2 }) }, "roles[1].cardinality.min", "greater than max").SetName("min above max is refused");
        yield return new TestCaseData(new object[] { R("a", image: "no-such-image-anywhere") }, "roles[0].image", "no-such-image").SetName("An unknown image is refused");
        yield return new TestCaseData(new object[] { R("a"), R("b", type: "t9.huge") }, "roles[1].type", "t9.huge").SetName("An unknown type is refused");
        yield return new TestCaseData(new object[] { R("a"), R("b", elasticity: [new { expression = "avg(rps) >> 5", adjustment = "+1" }]) }, "roles[1].elasticity[0].expression", "avg(rps) >> 5")
            .SetName("A rule expression that does not parse is refused");
        yield return new TestCaseData(new object[] { R("a", elasticity: [new { expression = "avg(rps) > 5", adjustment = "twice" }]) }, "roles[0].elasticity[0].adjustment", "twice")
            .SetName("An adjustment that does not parse is refused");
        yield return new TestCaseData(new object[] { R("a", scheduled: [new { cron = "every morning", cardinality = 1 }]) }, "roles[0].scheduled[0].cron", "cron")
            .SetName("A cron expression that does not parse is refused");
        yield return new TestCaseData(new object[] { R("a", dependsOn: ["nobody"]) }, "roles[0].dependsOn[0]", "nobody").SetName("A dependency on an unknown role is refused");
    }

    [TestCaseSource(nameof(BadTemplates))]
    public async Task Bad_templates_are_400_naming_the_field_and_nothing_is_created(object[] roles, string field, string mention)
    {
        using var http = _server.Client(await _server.CreateUserAsync("bad" + Guid.NewGuid().ToString("N")[..6]));
        var problem = await (await http.PostAsJsonAsync("/api/v1/services", new { name = "bad", roles })).Problem(400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field), problem.ToJsonString());
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain(field).And.Contain(mention), problem.ToJsonString());
        Assert.That((await (await http.GetAsync("/api/v1/services")).Json(200)).AsArray(), Is.Empty, "nothing was created");
        Assert.That((await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Is.Empty, "no instance was launched");
    }
}
