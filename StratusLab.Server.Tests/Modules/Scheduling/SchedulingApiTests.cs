using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Scheduling;

/// <summary>Placement over HTTP on simulated hosts; the local host is disabled so only the test's hosts count.</summary>
public class SchedulingApiTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [SetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Scheduling:PendingTimeoutSeconds"] = "4" });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
        foreach (var host in (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray())
            await (await _admin.PostAsync($"/api/v1/hosts/{host!["name"]}/disable", null)).Json(200);
    }

    [TearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    async Task AddHostsAsync(int count, long cpus = 4, long memory = 4096)
    {
        for (var i = 1; i <= count; i++)
            await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = $"sim-{i}", driver = "simulated", cpus, memoryMiB = memory })).Json(201);
    }

    async Task<List<string>> RunAsync(int count, string? policy = null, string? requirements = null, string type = "t1.tiny")
    {
        var created = await (await _admin.PostAsJsonAsync("/api/v1/instances", new { instanceType = type, count, policy, requirements })).Json(201);
        var hosts = new List<string>();
        foreach (var node in created.AsArray())
        {
            var running = await InstanceApiTests.WaitAsync(_admin, node!["id"]!.GetValue<long>(), "RUNNING", 20);
            Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
            hosts.Add(running["host"]!.GetValue<string>());
        }
        return hosts;
    }

    [Test, CancelAfter(60_000)]
    public async Task Packing_fills_one_host_before_the_next()
    {
        await AddHostsAsync(3);
        var hosts = await RunAsync(6, policy: "packing");
        Assert.That(hosts.GroupBy(h => h).ToDictionary(g => g.Key, g => g.Count()), Is.EqualTo(new Dictionary<string, int> { ["sim-1"] = 4, ["sim-2"] = 2 }));
    }

    [Test, CancelAfter(60_000)]
    public async Task Striping_spreads_evenly()
    {
        await AddHostsAsync(3);
        var hosts = await RunAsync(6, policy: "striping");
        Assert.That(hosts.GroupBy(h => h).Select(g => g.Count()), Is.All.EqualTo(2));
        Assert.That(hosts.Distinct().Count(), Is.EqualTo(3));
    }

    [Test, CancelAfter(60_000)]
    public async Task Load_aware_follows_measured_load()
    {
        await AddHostsAsync(3);
        await (await _admin.PutAsJsonAsync("/api/v1/hosts/sim-1/metrics", new { cpuUsagePercent = 90.0, memoryUsedMiB = 100 })).Json(200);
        await (await _admin.PutAsJsonAsync("/api/v1/hosts/sim-2/metrics", new { cpuUsagePercent = 10.0, memoryUsedMiB = 100 })).Json(200);
        await (await _admin.PutAsJsonAsync("/api/v1/hosts/sim-3/metrics", new { cpuUsagePercent = 50.0, memoryUsedMiB = 100 })).Json(200);
        Assert.That(await RunAsync(1, policy: "load-aware"), Is.EqualTo(new[] { "sim-2" }));
        await (await _admin.PutAsJsonAsync("/api/v1/hosts/sim-2/metrics", new { cpuUsagePercent = 95.0, memoryUsedMiB = 100 })).Json(200);
        Assert.That(await RunAsync(1, policy: "load-aware"), Is.EqualTo(new[] { "sim-3" }));
    }

    [Test, CancelAfter(60_000)]
    public async Task Requirements_exclude_hosts()
    {
        await AddHostsAsync(3);
        var hosts = await RunAsync(3, policy: "striping", requirements: "NAME != \"sim-2\"");
        Assert.That(hosts, Does.Not.Contain("sim-2"));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_drained_host_gets_nothing()
    {
        await AddHostsAsync(2);
        await (await _admin.PostAsync("/api/v1/hosts/sim-1/disable", null)).Json(200);
        var hosts = await RunAsync(3, policy: "striping");
        Assert.That(hosts, Is.All.EqualTo("sim-2"));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_pending_instance_says_why_each_host_was_rejected_then_times_out()
    {
        await AddHostsAsync(2, cpus: 1, memory: 1024);
        await RunAsync(2);
        var pending = await (await _admin.PostAsJsonAsync("/api/v1/instances", new { instanceType = "t1.tiny" })).Json(201);
        var id = pending["id"]!.GetValue<long>();
        JsonNode node = pending;
        for (var i = 0; i < 30 && node["schedulingMessage"] is null; i++)
        {
            await Task.Delay(100);
            node = await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200);
        }
        Assert.That(node["state"]!.GetValue<string>(), Is.EqualTo("PENDING"));
        Assert.That(node["schedulingMessage"]!.GetValue<string>(), Does.Contain("sim-1: needs 1 CPU, 0 free").And.Contain("sim-2: needs 1 CPU, 0 free"));
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "FAILED", 30);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PENDING"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("sim-1: needs 1 CPU, 0 free").And.Contain("PendingTimeoutSeconds"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Freed_capacity_wakes_the_scheduler_at_once()
    {
        await AddHostsAsync(1, cpus: 1, memory: 1024);
        var first = (await RunAsync(1)).Single();
        var running = (await (await _admin.GetAsync("/api/v1/instances?state=RUNNING")).Json(200)).AsArray()[0]!["id"]!.GetValue<long>();
        var waiting = (await (await _admin.PostAsJsonAsync("/api/v1/instances", new { instanceType = "t1.tiny" })).Json(201))["id"]!.GetValue<long>();
        await Task.Delay(300);
        Assert.That((await (await _admin.GetAsync($"/api/v1/instances/{waiting}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("PENDING"));
        var started = DateTime.UtcNow;
        await (await _admin.DeleteAsync($"/api/v1/instances/{running}")).Json(202);
        var now = await InstanceApiTests.WaitAsync(_admin, waiting, "RUNNING", 20);
        Assert.That(now["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(5)), "not left to the periodic safety-net pass");
        Assert.That(now["host"]!.GetValue<string>(), Is.EqualTo(first));
    }

    [Test]
    public async Task Hosts_show_capacity_and_usage()
    {
        await AddHostsAsync(1, cpus: 4, memory: 4096);
        await RunAsync(2, type: "t1.micro");
        var host = await (await _admin.GetAsync("/api/v1/hosts/sim-1")).Json(200);
        Assert.That(host["allocatedCpus"]!.GetValue<long>(), Is.EqualTo(2));
        Assert.That(host["allocatedMemoryMiB"]!.GetValue<long>(), Is.EqualTo(1024));
        Assert.That(host["freeMemoryMiB"]!.GetValue<long>(), Is.EqualTo(3072));
        Assert.That(host["runningVms"]!.GetValue<long>(), Is.EqualTo(2));
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().Single(h => h!["local"]!.GetValue<bool>());
        Assert.That(local!["cpus"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(Environment.ProcessorCount));
        await (await _admin.DeleteAsync("/api/v1/hosts/sim-1")).Problem(409);
        await (await _admin.DeleteAsync($"/api/v1/hosts/{local["name"]}")).Problem(409);
    }

    [TestCase("""{"name": "bad", "driver": "simulated", "cpus": -4, "memoryMiB": 1024}""", 400, "cpus")]
    [TestCase("""{"name": "bad", "driver": "simulated", "cpus": 4, "memoryMiB": -1}""", 400, "memoryMiB")]
    [TestCase("""{"name": "bad", "driver": "xen", "cpus": 4, "memoryMiB": 1024}""", 400, "driver")]
    [TestCase("""{"name": "bad", "driver": "qemu", "cpus": 4, "memoryMiB": 1024}""", 422, "driver")]
    [TestCase("""{"name": "b/ad", "driver": "simulated", "cpus": 4, "memoryMiB": 1024}""", 400, "name")]
    [TestCase("""{"name": "bad", "driver": "simulated", "cpus": 4, "memoryMiB": 1024, "bootDisks": "iscsi"}""", 400, "bootDisks")]
    [TestCase("""{"name": "bad", "driver": "ssh", "ssh": "root@127.0.0.1", "port": 1, "bootDisks": "nfs"}""", 400, "bootDisks")]
    public async Task Bad_hosts_are_refused_naming_the_field(string json, int status, string field)
    {
        var problem = await (await _admin.PostAsync("/api/v1/hosts", Http.RawJson(json))).Problem(status);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field));
    }

    [TestCase("""{"policy": "spread"}""", "policy", "unknown policy")]
    [TestCase("""{"requirements": "FREE_CPU >"}""", "requirements", "column 11")]
    [TestCase("""{"policy": "rank:- (RUNNING_VMS * 50 + FRE_CPU)"}""", "policy", "column 28")]
    public async Task Bad_policies_and_expressions_are_400_pointing_at_the_error(string json, string field, string detail)
    {
        var problem = await (await _admin.PostAsync("/api/v1/instances", Http.RawJson(json))).Problem(400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field));
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain(detail));
    }

    [Test]
    public async Task More_than_the_site_can_ever_hold_is_refused_at_once_with_the_numbers()
    {
        await AddHostsAsync(2, cpus: 2, memory: 1024);
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().Single(h => h!["local"]!.GetValue<bool>())!["cpus"]!.GetValue<long>();
        var problem = await (await _admin.PostAsJsonAsync("/api/v1/instances", new { instanceType = "t1.tiny", count = local + 5 })).Problem(422);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("count"));
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain($"hold at most {local + 4}"), "2 + 2 on the simulated hosts, the rest on the (disabled) local host");
        Assert.That((await (await _admin.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Is.Empty);
    }

    [Test]
    public async Task Per_instance_placement_attributes_are_for_admins_only()
    {
        using var user = _server.Client(await _server.CreateUserAsync("plain" + Guid.NewGuid().ToString("N")[..6]));
        var problem = await (await user.PostAsJsonAsync("/api/v1/instances", new { policy = "striping" })).Problem(403);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("policy"));
    }

    [Test]
    public async Task An_ssh_node_boots_from_its_cache_unless_told_iscsi_and_shows_its_boot_disk_mode()
    {
        // Nothing listens on port 1: both nodes are added (in ERROR, with the reason), which is all this checks.
        var iscsi = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "boot-iscsi", driver = "ssh", ssh = "root@127.0.0.1", port = 1, bootDisks = "iscsi" })).Json(201);
        var cache = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "boot-cache", driver = "ssh", ssh = "root@127.0.0.2", port = 1 })).Json(201);
        Assert.That(iscsi["bootDisks"]!.GetValue<string>(), Is.EqualTo("iscsi"));
        Assert.That(cache["bootDisks"]!.GetValue<string>(), Is.EqualTo("cache"), "cache is the default");
        Assert.That((await (await _admin.GetAsync("/api/v1/hosts/boot-iscsi")).Json(200))["bootDisks"]!.GetValue<string>(), Is.EqualTo("iscsi"));
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().Single(h => h!["local"]!.GetValue<bool>())!;
        Assert.That(local["bootDisks"], Is.Null, "only SSH nodes have a boot disk mode");
        await (await _admin.DeleteAsync("/api/v1/hosts/boot-iscsi")).Json(204);
        await (await _admin.DeleteAsync("/api/v1/hosts/boot-cache")).Json(204);
    }
}
