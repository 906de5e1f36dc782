using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>The instance lifecycle over HTTP with the simulated driver.</summary>
public class InstanceApiTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:BootTimeoutSeconds"] = "5",
            ["Compute:MonitorIntervalSeconds"] = "1",
        });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    [TearDown]
    public async Task ClearFaults() => await _admin.DeleteAsync("/api/v1/simulator/faults");

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    public static async Task<JsonNode> CreateAsync(HttpClient http, object body, int status = 201) =>
        await (await http.PostAsJsonAsync("/api/v1/instances", body)).Json(status);

    public static async Task<JsonNode> WaitAsync(HttpClient http, long id, string state, int timeout = 30)
    {
        var node = await (await http.GetAsync($"/api/v1/instances/{id}/wait?state={state}&timeout={timeout}")).Json(200);
        return node;
    }

    static async Task<JsonNode> ActAsync(HttpClient http, long id, string action, int status = 202) =>
        await (await http.PostAsync($"/api/v1/instances/{id}/actions/{action}", null)).Json(status);

    static long Id(JsonNode node) => node["id"]!.GetValue<long>();
    static string State(JsonNode node) => node["state"]!.GetValue<string>();

    [Test, CancelAfter(60_000)]
    public async Task An_instance_goes_through_every_state_to_DONE_and_gives_its_quota_back()
    {
        var user = Unique("life");
        using var http = _server.Client(await _server.CreateUserAsync(user));
        var created = await CreateAsync(http, new { name = "web" });
        Assert.That(State(created), Is.EqualTo("PENDING"));
        var id = Id(created);
        Assert.That(State(await WaitAsync(http, id, "RUNNING")), Is.EqualTo("RUNNING"));
        var quota = await (await http.GetAsync($"/api/v1/quotas/{user}")).Json(200);
        Assert.That(quota["usage"]!["vms"]!.GetValue<long>(), Is.EqualTo(1));
        Assert.That(quota["usage"]!["memoryMiB"]!.GetValue<long>(), Is.EqualTo(128));

        await ActAsync(http, id, "suspend");
        Assert.That(State(await WaitAsync(http, id, "SUSPENDED")), Is.EqualTo("SUSPENDED"));
        await ActAsync(http, id, "resume");
        Assert.That(State(await WaitAsync(http, id, "RUNNING")), Is.EqualTo("RUNNING"));
        await ActAsync(http, id, "reboot");
        await ActAsync(http, id, "stop");
        Assert.That(State(await WaitAsync(http, id, "STOPPED")), Is.EqualTo("STOPPED"));
        await ActAsync(http, id, "start");
        Assert.That(State(await WaitAsync(http, id, "RUNNING")), Is.EqualTo("RUNNING"));
        await ActAsync(http, id, "shutdown");
        var done = await WaitAsync(http, id, "DONE");
        Assert.That(State(done), Is.EqualTo("DONE"));
        Assert.That(done["endedAt"], Is.Not.Null);

        quota = await (await http.GetAsync($"/api/v1/quotas/{user}")).Json(200);
        Assert.That(quota["usage"]!["vms"]!.GetValue<long>(), Is.EqualTo(0));
        Assert.That(quota["usage"]!["cpus"]!.GetValue<long>(), Is.EqualTo(0));
    }

    [Test, CancelAfter(60_000)]
    public async Task An_illegal_action_is_409_listing_the_allowed_ones()
    {
        var id = Id(await CreateAsync(_admin, new { }));
        await WaitAsync(_admin, id, "RUNNING");
        await ActAsync(_admin, id, "stop");
        await WaitAsync(_admin, id, "STOPPED");
        var problem = await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/suspend", null)).Problem(409);
        Assert.That(problem["allowedActions"]!.AsArray().Select(a => a!.GetValue<string>()), Is.EqualTo(new[] { "start", "terminate" }));
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("STOPPED").And.Contain("start, terminate"));
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/explode", null)).Problem(404);
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        await WaitAsync(_admin, id, "DONE");
        var again = await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Problem(409);
        Assert.That(again["allowedActions"]!.AsArray(), Is.Empty);
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/start", null)).Problem(409);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_failing_prolog_leaves_the_instance_FAILED_with_step_and_reason_and_no_quota_used()
    {
        var user = Unique("prolog");
        using var http = _server.Client(await _server.CreateUserAsync(user));
        var id = Id(await CreateAsync(http, new { }));
        await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "prolog", mode = "fail", instanceId = id, message = "datastore unreachable" })).Json(201);
        // The fault was added after the request; make sure it applies by using a fresh instance instead.
        await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "prolog", mode = "fail", times = 1, message = "datastore unreachable" })).Json(201);
        var second = Id(await CreateAsync(http, new { }));
        var failed = await WaitAsync(http, second, "FAILED");
        Assert.That(State(failed), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Is.EqualTo("datastore unreachable"));
        Assert.That(failed["allowedActions"]!.AsArray().Select(a => a!.GetValue<string>()), Is.EqualTo(new[] { "terminate" }));
        await (await http.DeleteAsync($"/api/v1/instances/{second}")).Json(202);
        Assert.That(State(await WaitAsync(http, second, "DONE")), Is.EqualTo("DONE"));
        await (await http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        await WaitAsync(http, id, "DONE");
        var quota = await (await http.GetAsync($"/api/v1/quotas/{user}")).Json(200);
        Assert.That(quota["usage"]!["vms"]!.GetValue<long>(), Is.EqualTo(0));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_boot_that_fails_once_fails_that_instance_only()
    {
        await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "start", mode = "fail", times = 1, message = "hypervisor said no" })).Json(201);
        var first = await WaitAsync(_admin, Id(await CreateAsync(_admin, new { })), "RUNNING");
        Assert.That(State(first), Is.EqualTo("FAILED"));
        Assert.That(first["failedStep"]!.GetValue<string>(), Is.EqualTo("BOOT"));
        Assert.That(first["failureReason"]!.GetValue<string>(), Is.EqualTo("hypervisor said no"));
        var second = await WaitAsync(_admin, Id(await CreateAsync(_admin, new { })), "RUNNING");
        Assert.That(State(second), Is.EqualTo("RUNNING"));
        await _admin.DeleteAsync($"/api/v1/instances/{Id(second)}");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_driver_that_never_answers_fails_the_boot_after_the_timeout()
    {
        await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "start", mode = "hang", times = 1 })).Json(201);
        var id = Id(await CreateAsync(_admin, new { }));
        var failed = await WaitAsync(_admin, id, "RUNNING", 30);
        Assert.That(State(failed), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("BOOT"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("not RUNNING within 5 s"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Terminating_during_a_hung_boot_ends_the_instance_at_once()
    {
        await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "start", mode = "hang", times = 1 })).Json(201);
        var id = Id(await CreateAsync(_admin, new { }));
        await WaitAsync(_admin, id, "BOOT");
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        var done = await WaitAsync(_admin, id, "DONE", 4);
        Assert.That(State(done), Is.EqualTo("DONE"));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_vm_that_dies_while_running_makes_its_instance_FAILED()
    {
        var id = Id(await CreateAsync(_admin, new { }));
        await WaitAsync(_admin, id, "RUNNING");
        await (await _admin.PostAsync($"/api/v1/simulator/instances/{id}/crash", null)).Json(204);
        var failed = await WaitAsync(_admin, id, "FAILED", 10);
        Assert.That(State(failed), Is.EqualTo("FAILED"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("stopped running"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Count_starts_several_instances_in_one_request()
    {
        var list = (await CreateAsync(_admin, new { name = "batch", count = 3 })).AsArray();
        Assert.That(list, Has.Count.EqualTo(3));
        Assert.That(list.Select(i => i!["name"]!.GetValue<string>()), Is.EqualTo(new[] { "batch-1", "batch-2", "batch-3" }));
        foreach (var i in list) Assert.That(State(await WaitAsync(_admin, Id(i!), "RUNNING")), Is.EqualTo("RUNNING"));
        foreach (var i in list) await _admin.DeleteAsync($"/api/v1/instances/{Id(i!)}");
    }

    [Test]
    public async Task A_request_over_quota_is_refused_with_the_numbers_and_creates_nothing()
    {
        var user = Unique("quota");
        using var http = _server.Client(await _server.CreateUserAsync(user));
        await (await _admin.PostAsJsonAsync($"/api/v1/quotas/{user}", new { vms = 2 })).Json(200);
        var problem = await (await http.PostAsJsonAsync("/api/v1/instances", new { count = 3 })).Problem(409);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("vms: 0 used + 3 requested > limit 2"));
        var mine = (await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray();
        Assert.That(mine, Is.Empty);
    }

    [TestCase("""{"image": "no-such-image"}""", 422, "image")]
    [TestCase("""{"instanceType": "m9.huge"}""", 422, "instanceType")]
    [TestCase("""{"instanceType": "t1.micro", "cpu": 1, "memoryMiB": 128}""", 400, "instanceType")]
    [TestCase("""{"cpu": 1}""", 400, "memoryMiB")]
    [TestCase("""{"cpu": 0, "memoryMiB": 128}""", 400, "cpu")]
    [TestCase("""{"cpu": 1, "memoryMiB": 1000000}""", 422, "memoryMiB")]
    [TestCase("""{"cpu": 200, "memoryMiB": 128}""", 422, "cpu")]
    [TestCase("""{"count": 0}""", 400, "count")]
    [TestCase("""{"count": 5000}""", 400, "count")]
    [TestCase("""{"name": "web;rm -rf /"}""", 400, "name")]
    [TestCase("""{"name": "../../etc"}""", 400, "name")]
    [TestCase("""{"context": {"lower": "x"}}""", 400, "context.lower")]
    [TestCase("""{"context": {"HOSTNAME": "x"}}""", 400, "context.HOSTNAME")]
    [TestCase("""{"context": {"STRATUSLAB_TOKEN": "x"}}""", 400, "context.STRATUSLAB_TOKEN")]
    [TestCase("""{"sshKeys": ["not a key"]}""", 400, "sshKeys")]
    [TestCase("""{"networks": ["public"]}""", 422, "networks")]
    [TestCase("""{"cpu": "two", "memoryMiB": 128}""", 400, "cpu")]
    [TestCase("""{"flavour": "big"}""", 400, "flavour")]
    public async Task Bad_instance_requests_are_refused_naming_the_field_and_create_nothing(string json, int status, string field)
    {
        var user = Unique("bad");
        using var http = _server.Client(await _server.CreateUserAsync(user));
        var problem = await (await http.PostAsync("/api/v1/instances", Http.RawJson(json))).Problem(status);
        Assert.That(problem["field"]?.GetValue<string>(), Is.EqualTo(field), problem.ToJsonString());
        Assert.That((await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Is.Empty);
        var quota = await (await http.GetAsync($"/api/v1/quotas/{user}")).Json(200);
        Assert.That(quota["usage"]!["vms"]!.GetValue<long>(), Is.EqualTo(0));
    }

    [TestCase("""{"rawQemuArguments": ["-device", "evil"]}""", "rawQemuArguments")]
    [TestCase("""{"mac": "02:00:0a:00:00:05"}""", "mac")]
    [TestCase("""{"context": {"FILES": "http://x/y.sh"}}""", "context.FILES")]
    [TestCase("""{"requirements": "FREE_CPU > 1"}""", "requirements")]
    public async Task Restricted_attributes_are_403_for_users(string json, string field)
    {
        using var http = _server.Client(await _server.CreateUserAsync(Unique("restricted")));
        var problem = await (await http.PostAsync("/api/v1/instances", Http.RawJson(json))).Problem(403);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field));
    }

    [Test, CancelAfter(60_000)]
    public async Task Admins_may_set_a_fixed_mac_and_raw_arguments()
    {
        var id = Id(await CreateAsync(_admin, new { mac = "02:00:0A:00:00:05", rawQemuArguments = new[] { "-rtc", "base=utc" } }));
        Assert.That(State(await WaitAsync(_admin, id, "RUNNING")), Is.EqualTo("RUNNING"));
        await _admin.DeleteAsync($"/api/v1/instances/{id}");
    }

    [Test, CancelAfter(60_000)]
    public async Task Another_users_instance_is_404_and_not_listed()
    {
        using var owner = _server.Client(await _server.CreateUserAsync(Unique("own")));
        using var other = _server.Client(await _server.CreateUserAsync(Unique("oth")));
        var id = Id(await CreateAsync(owner, new { }));
        await (await other.GetAsync($"/api/v1/instances/{id}")).Problem(404);
        await (await other.DeleteAsync($"/api/v1/instances/{id}")).Problem(404);
        await (await other.PostAsync($"/api/v1/instances/{id}/actions/stop", null)).Problem(404);
        await (await other.GetAsync($"/api/v1/instances/{id}/wait?state=RUNNING&timeout=1")).Problem(404);
        Assert.That((await (await other.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Is.Empty);
        Assert.That((await (await _admin.GetAsync("/api/v1/instances")).Json(200)).AsArray().Select(i => Id(i!)), Has.Member(id));
        await owner.DeleteAsync($"/api/v1/instances/{id}");
    }

    [Test]
    public async Task Listing_filters_by_state_and_rejects_unknown_states()
    {
        var running = (await (await _admin.GetAsync("/api/v1/instances?state=RUNNING")).Json(200)).AsArray();
        Assert.That(running.All(i => State(i!) == "RUNNING"), Is.True);
        var problem = await (await _admin.GetAsync("/api/v1/instances?state=EXPLODED")).Problem(400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("state"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Lifecycle_changes_arrive_as_server_sent_events()
    {
        using var events = _server.Client();
        using var response = await events.GetAsync("/api/v1/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var id = Id(await CreateAsync(_admin, new { }));
        var seen = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!seen.Contains("RUNNING"))
        {
            var line = await reader.ReadLineAsync(timeout.Token);
            if (line is null) break;
            if (!line.StartsWith("data: ")) continue;
            var evt = JsonNode.Parse(line[6..])!;
            if (evt["id"]!.GetValue<long>() == id) seen.Add(evt["state"]!.GetValue<string>());
        }
        Assert.That(seen, Is.SupersetOf(new[] { "PROLOG", "BOOT", "RUNNING" }));
        await _admin.DeleteAsync($"/api/v1/instances/{id}");
    }

    [Test]
    public async Task Instance_types_are_the_StratusLab_table_and_admins_add_their_own()
    {
        var types = (await (await _admin.GetAsync("/api/v1/instance-types")).Json(200)).AsArray();
        var byName = types.ToDictionary(t => t!["name"]!.GetValue<string>(), t => (t!["cpu"]!.GetValue<long>(), t["memoryMiB"]!.GetValue<long>()));
        Assert.That(byName["t1.micro"], Is.EqualTo((1L, 512L)));
        Assert.That(byName["m1.small"], Is.EqualTo((1L, 1536L)));
        Assert.That(byName["m1.large"], Is.EqualTo((2L, 6144L)));
        Assert.That(byName["c1.xlarge"], Is.EqualTo((4L, 6144L)));
        Assert.That(byName["t1.tiny"], Is.EqualTo((1L, 128L)));
        var name = Unique("custom");
        await (await _admin.PostAsJsonAsync("/api/v1/instance-types", new { name, cpu = 1, memoryMiB = 256 })).Json(201);
        await (await _admin.PostAsJsonAsync("/api/v1/instance-types", new { name, cpu = 1, memoryMiB = 256 })).Problem(409);
        await (await _admin.PostAsJsonAsync("/api/v1/instance-types", new { name = Unique("neg"), cpu = -1, memoryMiB = 256 })).Problem(400);
        await (await _admin.DeleteAsync("/api/v1/instance-types/m1.small")).Problem(409);
        await (await _admin.DeleteAsync($"/api/v1/instance-types/{name}")).Json(204);
        using var user = _server.Client(await _server.CreateUserAsync(Unique("typ")));
        await (await user.PostAsJsonAsync("/api/v1/instance-types", new { name = Unique("x"), cpu = 1, memoryMiB = 64 })).Problem(403);
    }

    [Test]
    public async Task Fault_injection_rejects_unknown_actions_and_modes()
    {
        (await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "explode" })).Problem(400))["field"]!.GetValue<string>().ShouldBe("action");
        (await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "start", mode = "maybe" })).Problem(400))["field"]!.GetValue<string>().ShouldBe("mode");
        using var user = _server.Client(await _server.CreateUserAsync(Unique("fault")));
        await (await user.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "start" })).Problem(403);
    }
}

static class Should
{
    public static void ShouldBe(this string actual, string expected) => Assert.That(actual, Is.EqualTo(expected));
}
