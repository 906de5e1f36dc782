using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier, inside a network namespace the test creates and deletes: the demonstrator of config/examples/service-balancer.json on real
/// appliance VMs under QEMU, on a bridge network. The balancer's /cgi-bin/lb proxies round-robin to the front-ends it reads from
/// GET /guest/v1/service per request; the front-ends' probe pushes the request rate, which scales them 1 → 2 → 1 (the test never
/// pushes a KPI itself).
/// </summary>
[NonParallelizable]
public class ServicesHostTests
{
    static List<JsonNode> Members(JsonNode service, string role) =>
        service["roles"]!.AsArray().Single(r => r!["name"]!.GetValue<string>() == role)!["members"]!.AsArray()
            .Select(m => m!).Where(m => !m["leaving"]!.GetValue<bool>()).ToList();

    static bool Settled(JsonNode service, string role, int count) =>
        Members(service, role) is { } m && m.Count == count && m.All(x => x["state"]!.GetValue<string>() == "RUNNING" && x["ready"]!.GetValue<bool>());

    static async Task<JsonNode> WaitForAsync(HttpClient http, long id, Func<JsonNode, bool> done, string what, int seconds)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var node = await (await http.GetAsync($"/api/v1/services/{id}")).Json(200);
            if (done(node)) return node;
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) Assert.Fail($"timed out after {seconds} s waiting for {what}: {node.ToJsonString()}");
            await Task.Delay(1000);
        }
    }

    [Test, CancelAfter(840_000)]
    public async Task The_balancer_proxies_to_its_front_ends_which_scale_from_one_to_two_on_the_request_rate_their_probe_pushes_and_back_when_it_falls()
    {
        HostTools.AppliancePath();
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        var dataDir = TempDir.Create("svcvm");
        await using var ns = await NetworkNamespace.CreateAsync("slsvc");
        try
        {
            using var server = await NamespacedServer.StartAsync(ns, dataDir, new Dictionary<string, string>
            {
                ["Compute:Driver"] = "qemu",
                ["Compute:Accelerator"] = "auto",
                ["Compute:ShutdownTimeoutSeconds"] = "30",
                ["Compute:BootTimeoutSeconds"] = "150",
                ["Compute:MonitorIntervalSeconds"] = "2",
                ["Services:EvaluateIntervalSeconds"] = "2",
            });
            var http = server.Http;
            await (await http.PostAsJsonAsync("/api/v1/networks", new { name = "lan", driver = "bridge", cidr = "10.78.0.0/24", gateway = "10.78.0.1" })).Json(201);

            // config/examples/service-balancer.json with quicker probes and rules: the front-ends' probe turns the hit counter (which
            // /cgi-bin/hello increments) into rps every 2 s; the balancer is the appliance's /cgi-bin/lb.
            const string rpsProbe = """
                n=$(cat /run/http_requests 2>/dev/null || echo 0)
                now=$(date +%s)
                if [ -f /run/rps.last ]; then
                  read pn pt < /run/rps.last
                  [ "$now" -gt "$pt" ] && echo "rps $(( (n - pn) / (now - pt) ))"
                fi
                echo "$n $now" > /run/rps.last
                """;
            var created = await (await http.PostAsJsonAsync("/api/v1/services", new
            {
                name = "demo",
                roles = new object[]
                {
                    new
                    {
                        name = "front", readyGate = "guest", cardinality = new { min = 1, max = 2 }, networks = new[] { "lan" },
                        context = new Dictionary<string, string> { ["STRATUSLAB_PROBE_INTERVAL"] = "2", ["STRATUSLAB_PROBE"] = rpsProbe },
                        elasticity = new object[]
                        {
                            new { expression = "max(rps, 6s) >= 1", periods = 2, adjustment = "+1", cooldownSeconds = 4 },
                            new { expression = "max(rps, 8s) < 1", periods = 3, adjustment = "-1", cooldownSeconds = 0 },
                        },
                    },
                    new
                    {
                        name = "balancer", readyGate = "guest", cardinality = new { min = 1, max = 1 }, networks = new[] { "lan" }, dependsOn = new[] { "front" },
                        context = new Dictionary<string, string> { ["STRATUSLAB_LB_ROLE"] = "front", ["STRATUSLAB_PROBE_INTERVAL"] = "0" },
                    },
                },
            })).Json(201);
            var id = created["id"]!.GetValue<long>();

            var up = await WaitForAsync(http, id, s => s["state"]!.GetValue<string>() == "RUNNING" && Settled(s, "front", 1) && Settled(s, "balancer", 1),
                "the first front-end and the balancer ready", 300);
            var first = Members(up, "front")[0]["instanceId"]!.GetValue<long>();
            var balancer = await (await http.GetAsync($"/api/v1/instances/{Members(up, "balancer")[0]["instanceId"]}")).Json(200);
            var lbPort = balancer["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 80)!["hostPort"]!.GetValue<int>();
            async Task<string> Name(long instance) => (await (await http.GetAsync($"/api/v1/instances/{instance}")).Json(200))["name"]!.GetValue<string>();
            var firstName = await Name(first);
            Assert.That(firstName, Is.EqualTo("demo-front-1"), "members are numbered, so each has its own hostname");

            // One request through the balancer's PAT port (from the server's namespace, as a client of the site would).
            async Task<string> ThroughBalancer() =>
                (await ns.TryAsync("curl", ["-s", "-m", "25", $"http://127.0.0.1:{lbPort}/cgi-bin/lb"], TimeSpan.FromSeconds(40))).Out;
            var answer = "";
            for (var attempt = 0; attempt < 3 && !answer.Contains("hello from"); attempt++) answer = await ThroughBalancer();
            Assert.That(answer, Does.Contain($"hello from {firstName}"), "the balancer forwarded the request to the only front-end");

            // Load through the balancer (three clients) until a second front-end is RUNNING and ready; every answer is kept.
            var answers = new System.Collections.Concurrent.ConcurrentBag<string>();
            using var load = new CancellationTokenSource();
            var clients = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
            {
                while (!load.IsCancellationRequested) answers.Add(await ThroughBalancer());
            })).ToList();
            JsonNode two;
            string secondName;
            try
            {
                two = await WaitForAsync(http, id, s => Settled(s, "front", 2), "a second front-end ready", 300);
                var second = Members(two, "front").Select(m => m["instanceId"]!.GetValue<long>()).Single(i => i != first);
                secondName = await Name(second);
                // The balancer reads the members per request: answers from the new front-end follow without any restart.
                var clock = Stopwatch.StartNew();
                while (!answers.Any(a => a.Contains($"hello from {secondName}")) && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(500);
            }
            finally { load.Cancel(); await Task.WhenAll(clients); }
            var scaleOut = two["decisions"]!.AsArray().Single(d => d!["kind"]!.GetValue<string>() == "elasticity")!;
            TestContext.Progress.WriteLine($"scale-out: {scaleOut.ToJsonString()}");
            Assert.That(scaleOut["to"]!.GetValue<int>(), Is.EqualTo(2));
            Assert.That(scaleOut["values"]!["perMember"]![first.ToString()]!.GetValue<double>(), Is.GreaterThanOrEqualTo(1),
                "the first front-end's own probe reported the request rate the balancer sent it");
            var served = answers.Where(a => a.Contains("hello from")).ToList();
            TestContext.Progress.WriteLine($"{answers.Count} requests through the balancer, {served.Count} answered: " +
                $"{served.Count(a => a.Contains(firstName))} by {firstName}, {served.Count(a => a.Contains(secondName))} by {secondName}");
            Assert.That(served, Has.Some.Contains($"hello from {firstName}").And.Some.Contains($"hello from {secondName}"), "after scale-out both front-ends answer");

            // Quiet: back to one front-end, the newest leaving, shut down through ACPI; the balancer stops sending to it.
            var one = await WaitForAsync(http, id, s => Settled(s, "front", 1) && s["decisions"]!.AsArray().Count(d => d!["kind"]!.GetValue<string>() == "elasticity") == 2,
                "scale-in to one front-end", 240);
            Assert.That(Members(one, "front")[0]["instanceId"]!.GetValue<long>(), Is.EqualTo(first));
            var second2 = Members(two, "front").Select(m => m["instanceId"]!.GetValue<long>()).Single(i => i != first);
            var gone = await InstanceApiTests.WaitAsync(http, second2, "DONE", 90);
            Assert.That(gone["state"]!.GetValue<string>(), Is.EqualTo("DONE"), gone.ToJsonString());
            var after = new List<string>();
            for (var i = 0; i < 4; i++) after.Add(await ThroughBalancer());
            Assert.That(after, Has.All.Contains($"hello from {firstName}"), "after scale-in only the remaining front-end answers");

            await (await http.DeleteAsync($"/api/v1/services/{id}")).Json(200);
        }
        finally
        {
            await ns.DisposeAsync();
            TempDir.Delete(dataDir);
        }
    }
}
