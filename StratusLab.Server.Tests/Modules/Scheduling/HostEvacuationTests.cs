using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Scheduling;

/// <summary>
/// Host outages and evacuation on simulated hosts (the local host is disabled): a host that does not answer makes its
/// instances UNKNOWN with the reason, holding their capacity, until it answers again; host-evacuate drains a host and
/// moves its instances, or says per instance why one stays.
/// </summary>
public class HostEvacuationTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [SetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:MonitorIntervalSeconds"] = "1",
            ["Compute:UnknownAfterSeconds"] = "3",
        });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
        foreach (var host in (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray())
            await (await _admin.PostAsync($"/api/v1/hosts/{host!["name"]}/disable", null)).Json(200);
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-a", driver = "simulated", cpus = 4, memoryMiB = 4096 })).Json(201);
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-b", driver = "simulated", cpus = 4, memoryMiB = 4096 })).Json(201);
        // Everything the tests launch lands on sim-a; sim-b is enabled when there is somewhere to go.
        await (await _admin.PostAsync("/api/v1/hosts/sim-b/disable", null)).Json(200);
    }

    [TearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    async Task<long> RunOnAsync(string name, string? requirements = null)
    {
        var created = await (await _admin.PostAsJsonAsync("/api/v1/instances", new { name, instanceType = "t1.tiny", count = 1, requirements })).Json(201);
        var id = (created is JsonArray array ? array[0]! : created)["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 20);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        Assert.That(running["host"]!.GetValue<string>(), Is.EqualTo("sim-a"));
        return id;
    }

    async Task<JsonNode> InstanceAsync(long id) => await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200);

    async Task<JsonNode> HostAsync(string name) => await (await _admin.GetAsync($"/api/v1/hosts/{name}")).Json(200);

    async Task<JsonNode> UntilAsync(long id, Func<JsonNode, bool> done, string what, int seconds = 20)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (true)
        {
            var instance = await InstanceAsync(id);
            if (done(instance)) return instance;
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{what}: {instance.ToJsonString()}");
            await Task.Delay(100);
        }
    }

    static string State(JsonNode instance) => instance["state"]!.GetValue<string>();

    async Task ActAsync(long id, string action) => await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/{action}", null)).Json(202);

    [Test, CancelAfter(90_000)]
    public async Task A_host_that_stops_answering_makes_its_instances_UNKNOWN_holding_capacity_and_they_come_back_or_fail_when_it_answers()
    {
        var running = await RunOnAsync("up");
        var paused = await RunOnAsync("paused");
        await ActAsync(paused, "suspend");
        Assert.That(State(await InstanceApiTests.WaitAsync(_admin, paused, "SUSPENDED", 20)), Is.EqualTo("SUSPENDED"));

        await (await _admin.PostAsync("/api/v1/simulator/hosts/sim-a/outage", null)).Json(204);
        foreach (var id in new[] { running, paused })
        {
            var unknown = await UntilAsync(id, i => State(i) == "UNKNOWN", "UNKNOWN while its host does not answer");
            Assert.That(unknown["failureReason"]!.GetValue<string>(), Does.Contain("simulated host sim-a does not answer"), unknown.ToJsonString());
            Assert.That(unknown["allowedActions"]!.AsArray().Select(a => a!.GetValue<string>()), Is.EqualTo(new[] { "terminate" }));
            Assert.That(unknown["host"]!.GetValue<string>(), Is.EqualTo("sim-a"));
        }
        var held = await HostAsync("sim-a");
        Assert.That(held["allocatedCpus"]!.GetValue<long>(), Is.EqualTo(2), "UNKNOWN instances keep their capacity: " + held.ToJsonString());
        var refused = await (await _admin.PostAsync($"/api/v1/instances/{running}/actions/stop", null)).Problem(409);
        Assert.That(refused["detail"]!.GetValue<string>(), Does.Contain("UNKNOWN"));
        var listed = (await (await _admin.GetAsync("/api/v1/instances?state=UNKNOWN")).Json(200)).AsArray();
        Assert.That(listed.Select(i => i!["id"]!.GetValue<long>()), Is.EquivalentTo(new[] { running, paused }), "UNKNOWN is a state one can list by");

        // Back: each VM is re-attached as it is (running, paused), and the reason goes.
        await (await _admin.DeleteAsync("/api/v1/simulator/hosts/sim-a/outage")).Json(204);
        var back = await UntilAsync(running, i => State(i) == "RUNNING", "RUNNING again once the host answers");
        Assert.That(back["failureReason"]?.GetValue<string>(), Is.Null);
        var resumed = await UntilAsync(paused, i => State(i) == "SUSPENDED", "SUSPENDED again: it was paused");
        Assert.That(resumed["failureReason"]?.GetValue<string>(), Is.Null);

        // Down again, and one VM dies meanwhile: FAILED with the reason when the host answers; its capacity goes back.
        await (await _admin.PostAsync("/api/v1/simulator/hosts/sim-a/outage", null)).Json(204);
        await UntilAsync(running, i => State(i) == "UNKNOWN", "UNKNOWN again");
        await (await _admin.PostAsync($"/api/v1/simulator/instances/{running}/crash", null)).Json(204);
        await (await _admin.DeleteAsync("/api/v1/simulator/hosts/sim-a/outage")).Json(204);
        var failed = await UntilAsync(running, i => State(i) == "FAILED", "FAILED: the VM is gone when the host answers");
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("stopped running while its host did not answer"));
        await UntilAsync(paused, i => State(i) == "SUSPENDED", "the other one is re-attached");
        Assert.That((await HostAsync("sim-a"))["allocatedCpus"]!.GetValue<long>(), Is.EqualTo(1), "the failed one's capacity is given back");
    }

    [Test, CancelAfter(90_000)]
    public async Task A_VM_silent_past_UnknownAfterSeconds_goes_UNKNOWN_after_a_warning()
    {
        var id = await RunOnAsync("silent");
        // Its QEMU stops answering (as a wedged one whose QMP times out), its host is fine.
        await (await _admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "query", mode = "silent", instanceId = id })).Json(201);
        var warned = await UntilAsync(id, i => i["failureReason"] is not null || State(i) != "RUNNING", "a warning first");
        Assert.That(State(warned), Is.EqualTo("RUNNING"), "one silent answer is not UNKNOWN yet: " + warned.ToJsonString());
        Assert.That(warned["failureReason"]!.GetValue<string>(), Does.StartWith("monitor: ").And.Contain("not answering").And.Contain("UNKNOWN if it is still silent after 3 s"));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var unknown = await UntilAsync(id, i => State(i) == "UNKNOWN", "UNKNOWN once silent for Compute:UnknownAfterSeconds");
        Assert.That(unknown["failureReason"]!.GetValue<string>(), Does.Contain("not answering").And.Contain("Compute:UnknownAfterSeconds"));
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(1)), "not before the configured time");
        await (await _admin.DeleteAsync("/api/v1/simulator/faults")).Json(204);
        var back = await UntilAsync(id, i => State(i) == "RUNNING", "RUNNING again once it answers");
        Assert.That(back["failureReason"]?.GetValue<string>(), Is.Null);
    }

    [Test, CancelAfter(90_000)]
    public async Task Evacuating_a_host_drains_it_moves_running_and_stopped_instances_and_says_why_the_others_stay()
    {
        var moving = await RunOnAsync("moving");
        var stopped = await RunOnAsync("stopped");
        await ActAsync(stopped, "stop");
        Assert.That(State(await InstanceApiTests.WaitAsync(_admin, stopped, "STOPPED", 20)), Is.EqualTo("STOPPED"));
        var pinned = await RunOnAsync("pinned", requirements: "NAME = \"sim-a\"");
        await (await _admin.PostAsync("/api/v1/hosts/sim-b/enable", null)).Json(200);

        var result = await (await _admin.PostAsync("/api/v1/hosts/sim-a/evacuate", null)).Json(200);
        TestContext.Progress.WriteLine(result.ToJsonString());
        Assert.That(result["host"]!.GetValue<string>(), Is.EqualTo("sim-a"));
        Assert.That(result["moved"]!.GetValue<int>(), Is.EqualTo(2));
        Assert.That(result["refused"]!.GetValue<int>(), Is.EqualTo(1));
        var byId = result["instances"]!.AsArray().ToDictionary(i => i!["id"]!.GetValue<long>(), i => i!);
        Assert.That(byId[moving]["movedTo"]!.GetValue<string>(), Is.EqualTo("sim-b"));
        Assert.That(byId[moving]["stateBefore"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(byId[moving]["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(byId[stopped]["movedTo"]!.GetValue<string>(), Is.EqualTo("sim-b"));
        Assert.That(byId[stopped]["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"), "a stopped instance moves, and stays stopped");
        Assert.That(byId[pinned]["movedTo"], Is.Null);
        Assert.That(byId[pinned]["reason"]!.GetValue<string>(), Does.Contain("no other host fits").And.Contain("sim-b: requirement NAME = \"sim-a\" is false"));

        // The instances say the same, the capacity followed them, and sim-a is drained.
        var moved = await InstanceAsync(moving);
        Assert.That((moved["host"]!.GetValue<string>(), State(moved)), Is.EqualTo(("sim-b", "RUNNING")));
        var console = await _admin.GetStringAsync($"/api/v1/instances/{moving}/console");
        Assert.That(console, Does.Contain("ACPI power button: powered off"), "stopped on the old host, then started on the new one: " + console);
        Assert.That(console.Split("booted").Length - 1, Is.EqualTo(2), console);
        Assert.That((await InstanceAsync(stopped))["host"]!.GetValue<string>(), Is.EqualTo("sim-b"));
        var stays = await InstanceAsync(pinned);
        Assert.That((stays["host"]!.GetValue<string>(), State(stays)), Is.EqualTo(("sim-a", "RUNNING")), "nothing changed for the one that could not move");
        var a = await HostAsync("sim-a");
        var b = await HostAsync("sim-b");
        Assert.That(a["enabled"]!.GetValue<bool>(), Is.False, "evacuation drains the host");
        Assert.That((a["allocatedCpus"]!.GetValue<long>(), b["allocatedCpus"]!.GetValue<long>()), Is.EqualTo((1L, 2L)));

        // The moved stopped instance starts on its new host.
        await ActAsync(stopped, "start");
        var started = await InstanceApiTests.WaitAsync(_admin, stopped, "RUNNING", 20);
        Assert.That((started["host"]!.GetValue<string>(), State(started)), Is.EqualTo(("sim-b", "RUNNING")));

        // A host that does not answer: its UNKNOWN instance stays, with why.
        await (await _admin.PostAsync("/api/v1/simulator/hosts/sim-a/outage", null)).Json(204);
        await UntilAsync(pinned, i => State(i) == "UNKNOWN", "UNKNOWN during the outage");
        var again = await (await _admin.PostAsync("/api/v1/hosts/sim-a/evacuate", null)).Json(200);
        var line = again["instances"]!.AsArray().Single()!;
        Assert.That((line["id"]!.GetValue<long>(), line["state"]!.GetValue<string>()), Is.EqualTo((pinned, "UNKNOWN")));
        Assert.That(line["reason"]!.GetValue<string>(), Does.Contain("does not answer").And.Contain("terminate it"));
        await (await _admin.DeleteAsync("/api/v1/simulator/hosts/sim-a/outage")).Json(204);

        var missing = await (await _admin.PostAsync("/api/v1/hosts/nowhere/evacuate", null)).Problem(404);
        Assert.That(missing["detail"]!.GetValue<string>(), Does.Contain("nowhere"));
    }

    [Test, CancelAfter(90_000)]
    public async Task The_cli_host_evacuate_prints_where_each_instance_went_and_exits_1_when_one_stayed()
    {
        var moving = await RunOnAsync("cli-moving");
        var pinned = await RunOnAsync("cli-pinned", requirements: "NAME = \"sim-a\"");
        async Task<(int Code, string Out, string Err)> Run(params string[] args)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var code = await ClientCli.RunAsync(["--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken, .. args], output, error);
            return (code, output.ToString(), error.ToString());
        }
        var empty = await Run("host-evacuate", "sim-b");
        Assert.That(empty.Code, Is.Zero, empty.Err);
        Assert.That(empty.Out, Does.Contain("host sim-b drained: 0 instance(s) moved, 0 stayed"));
        await (await _admin.PostAsync("/api/v1/hosts/sim-b/enable", null)).Json(200);
        var evacuated = await Run("host-evacuate", "sim-a");
        Assert.That(evacuated.Code, Is.EqualTo(1), "one instance stayed: " + evacuated.Out + evacuated.Err);
        Assert.That(evacuated.Out, Does.Contain("host sim-a drained: 1 instance(s) moved, 1 stayed")
            .And.Contain($"{moving} cli-moving: RUNNING -> RUNNING on sim-b")
            .And.Contain($"{pinned} cli-pinned: stays RUNNING on sim-a: no other host fits"));
        var unknownHost = await Run("host-evacuate", "nowhere");
        Assert.That(unknownHost.Code, Is.Not.Zero);
        Assert.That(unknownHost.Err, Does.Contain("nowhere"));
    }
}
