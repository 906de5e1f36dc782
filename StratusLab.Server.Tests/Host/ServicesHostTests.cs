using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>Host tier: a service of real appliance VMs under QEMU scales on the request rate its guests' probe pushes (the test never pushes a KPI itself).</summary>
[NonParallelizable]
public class ServicesHostTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        HostTools.AppliancePath();
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:Driver"] = "qemu",
            ["Compute:Accelerator"] = "auto",
            ["Compute:ShutdownTimeoutSeconds"] = "30",
            ["Compute:BootTimeoutSeconds"] = "120",
            ["Compute:MonitorIntervalSeconds"] = "2",
            ["Services:EvaluateIntervalSeconds"] = "2",
        });
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        var dataDir = _server.DataDir;
        await _server.DisposeAsync();
        HostTools.KillQemu(dataDir);
    }

    static List<JsonNode> Members(JsonNode service) =>
        service["roles"]!.AsArray()[0]!["members"]!.AsArray().Select(m => m!).Where(m => !m["leaving"]!.GetValue<bool>()).ToList();

    static bool Settled(JsonNode service, int count) =>
        Members(service) is { } m && m.Count == count && m.All(x => x["state"]!.GetValue<string>() == "RUNNING" && x["ready"]!.GetValue<bool>());

    async Task<JsonNode> WaitForAsync(long id, Func<JsonNode, bool> done, string what, int seconds)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var node = await (await _admin.GetAsync($"/api/v1/services/{id}")).Json(200);
            if (done(node)) return node;
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) Assert.Fail($"timed out after {seconds} s waiting for {what}: {node.ToJsonString()}");
            await Task.Delay(1000);
        }
    }

    [Test, CancelAfter(600_000)]
    public async Task Front_ends_scale_from_one_to_two_on_the_request_rate_their_probe_pushes_and_back_when_it_falls()
    {
        // The front-end of config/examples/service-balancer.json: the probe turns /cgi-bin/hits' counter into rps every 2 s.
        const string rpsProbe = """
            n=$(cat /run/http_requests 2>/dev/null || echo 0)
            now=$(date +%s)
            if [ -f /run/rps.last ]; then
              read pn pt < /run/rps.last
              [ "$now" -gt "$pt" ] && echo "rps $(( (n - pn) / (now - pt) ))"
            fi
            echo "$n $now" > /run/rps.last
            """;
        var created = await (await _admin.PostAsJsonAsync("/api/v1/services", new
        {
            name = "demo",
            roles = new[]
            {
                new
                {
                    name = "front", readyGate = "guest", cardinality = new { min = 1, max = 2 },
                    context = new Dictionary<string, string> { ["STRATUSLAB_PROBE_INTERVAL"] = "2", ["STRATUSLAB_PROBE"] = rpsProbe },
                    elasticity = new object[]
                    {
                        new { expression = "max(rps, 6s) >= 1", periods = 2, adjustment = "+1", cooldownSeconds = 4 },
                        new { expression = "max(rps, 8s) < 1", periods = 3, adjustment = "-1", cooldownSeconds = 0 },
                    },
                },
            },
        })).Json(201);
        var id = created["id"]!.GetValue<long>();
        try
        {
            var up = await WaitForAsync(id, s => s["state"]!.GetValue<string>() == "RUNNING" && Settled(s, 1), "the first front-end ready", 240);
            var first = Members(up)[0]["instanceId"]!.GetValue<long>();
            var view = await (await _admin.GetAsync($"/api/v1/instances/{first}")).Json(200);
            var httpPort = view["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 80)!["hostPort"]!.GetValue<int>();

            // Load: requests to the first front-end's counted page until a second front-end is RUNNING and ready.
            using var load = new CancellationTokenSource();
            var hits = Task.Run(async () =>
            {
                using var web = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
                while (!load.IsCancellationRequested)
                {
                    try { await web.GetStringAsync($"http://127.0.0.1:{httpPort}/cgi-bin/hits", load.Token); }
                    catch (Exception) when (!load.IsCancellationRequested) { }
                    catch (OperationCanceledException) { }
                    await Task.Delay(150, CancellationToken.None);
                }
            });
            JsonNode two;
            try { two = await WaitForAsync(id, s => Settled(s, 2), "a second front-end ready", 300); }
            finally { load.Cancel(); await hits; }
            var scaleOut = two["decisions"]!.AsArray().Single(d => d!["kind"]!.GetValue<string>() == "elasticity")!;
            TestContext.Progress.WriteLine($"scale-out: {scaleOut.ToJsonString()}");
            Assert.That(scaleOut["to"]!.GetValue<int>(), Is.EqualTo(2));
            Assert.That(scaleOut["values"]!["perMember"]![first.ToString()]!.GetValue<double>(), Is.GreaterThanOrEqualTo(1),
                "the first front-end's own probe reported the request rate");
            var second = Members(two).Select(m => m["instanceId"]!.GetValue<long>()).Single(i => i != first);

            // Quiet: back to one front-end, the newest leaving, shut down through ACPI.
            var one = await WaitForAsync(id, s => Settled(s, 1) && s["decisions"]!.AsArray().Count(d => d!["kind"]!.GetValue<string>() == "elasticity") == 2,
                "scale-in to one front-end", 240);
            Assert.That(Members(one)[0]["instanceId"]!.GetValue<long>(), Is.EqualTo(first));
            var gone = await InstanceApiTests.WaitAsync(_admin, second, "DONE", 90);
            Assert.That(gone["state"]!.GetValue<string>(), Is.EqualTo("DONE"), gone.ToJsonString());
        }
        finally { await _admin.DeleteAsync($"/api/v1/services/{id}"); }
    }
}
