using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Platform;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// The fault-injection tier: kill -9 of the real server at random points of its work, then a restart. After each
/// trial nothing is left without an owner, quota usage equals what holds it, 'admin check' is clean and the server
/// still serves (<see cref="SiteInvariants"/>). Trials are few and bounded; the seed is printed so a failure replays.
/// </summary>
[NonParallelizable]
[Category("FaultInjection")] // the fault-injection tier: dotnet test --filter TestCategory=FaultInjection
public class FaultInjectionTests
{
    static readonly string[] Settled = ["RUNNING", "FAILED", "DONE"];

    [Test, CancelAfter(480_000)]
    public async Task Killing_the_server_at_random_points_of_a_bulk_start_leaves_every_resource_owned_and_quota_exact()
    {
        HostTools.AppliancePath();
        var seed = Environment.TickCount;
        var random = new Random(seed);
        TestContext.Progress.WriteLine($"fault injection: seed {seed}");
        var dataDir = TempDir.Create("faults-bulk");
        var port = ServerProcessTests.FreePort();
        (string, string)[] env = [("STRATUSLAB__Compute__SimulatedMedia", "true"), ("STRATUSLAB__Compute__SimulatedDelayMs", "300")];
        var server = ServerProcessTests.StartServer(dataDir, port, env);
        var report = new List<string>();
        try
        {
            using var http = await ClientAsync(port, server, dataDir);
            const int trials = 4, perTrial = 15;
            // Room for every trial's instances at once: this machine's own host holds only a few.
            await (await http.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-faults", driver = "simulated", cpus = 64, memoryMiB = 65536 })).Json(201);
            await (await http.PutAsJsonAsync("/api/v1/quotas/admin", new { vms = 1000, cpus = 1000, memoryMiB = 1_000_000, storageGiB = 1000 })).Json(200);
            for (var trial = 1; trial <= trials; trial++)
            {
                await (await http.PostAsJsonAsync("/api/v1/instances", new { name = $"bulk{trial}", count = perTrial })).Json(201);
                var delay = random.Next(50, 2500);
                await Task.Delay(delay);
                server.Kill(); // SIGKILL, the server alone
                server.WaitForExit(10_000);

                server = ServerProcessTests.StartServer(dataDir, port, env);
                await ServerProcessTests.WaitHealthy(port, server, TimeSpan.FromSeconds(60));
                var states = await SettleAsync(http, TimeSpan.FromSeconds(120));
                var violations = await SiteInvariants.ViolationsAsync(dataDir);
                report.Add($"trial {trial}: killed after {delay} ms; then {Summary(states)}; violations: {violations.Count}");
                TestContext.Progress.WriteLine(report[^1]);
                Assert.That(violations, Is.Empty, $"trial {trial} (seed {seed}, killed after {delay} ms):\n" + string.Join("\n", violations));
            }

            // Everything given back: terminate all, and usage must fall to zero with nothing left behind.
            foreach (var instance in await ListAsync(http))
                if (instance["state"]!.GetValue<string>() != "DONE")
                    await http.DeleteAsync($"/api/v1/instances/{instance["id"]}");
            var after = await SettleAsync(http, TimeSpan.FromSeconds(120), final: "DONE");
            Assert.That(after.Values.Distinct(), Is.EqualTo(new[] { "DONE" }), Summary(after));
            Assert.That(await SiteInvariants.ViolationsAsync(dataDir), Is.Empty);
            var quota = await (await http.GetAsync("/api/v1/quotas/admin")).Content.ReadFromJsonAsync<JsonNode>();
            TestContext.Progress.WriteLine($"after terminating everything: {quota}");
            Assert.That((await http.GetAsync("/health")).IsSuccessStatusCode, Is.True, "the server still serves");
        }
        finally
        {
            TestContext.Progress.WriteLine(string.Join("\n", report));
            ServerProcessTests.Kill(server);
            HostTools.KillQemu(dataDir);
            TempDir.Delete(dataDir);
        }
    }

    [Test, CancelAfter(420_000)]
    public async Task Killing_the_server_during_a_real_qemu_launch_leaves_no_orphan()
    {
        HostTools.AppliancePath();
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var dataDir = TempDir.Create("faults-qemu");
        var port = ServerProcessTests.FreePort();
        (string, string)[] env = [("STRATUSLAB__Compute__Driver", "qemu"), ("STRATUSLAB__Compute__Accelerator", "tcg")];
        var server = ServerProcessTests.StartServer(dataDir, port, env);
        var report = new List<string>();
        try
        {
            using var http = await ClientAsync(port, server, dataDir);
            const int trials = 2;
            for (var trial = 1; trial <= trials; trial++)
            {
                var id = (await InstanceApiTests.CreateAsync(http, new { name = $"launch{trial}" }))["id"]!.GetValue<long>();
                // Trial 1 kills as soon as QEMU runs but before RUNNING (BOOT); later trials at a random point from
                // admission to a few seconds into the boot: PROLOG, BOOT or just RUNNING.
                var watch = Stopwatch.StartNew();
                string seen;
                if (trial == 1)
                {
                    // BOOT can last less than a poll (QEMU reports running at once), so the moment is "QEMU runs, the guest is
                    // not ready yet": BOOT, or RUNNING before the guest's ready call (the appliance takes seconds under TCG).
                    JsonNode view;
                    do
                    {
                        await Task.Delay(50);
                        view = await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200);
                        seen = view["state"]!.GetValue<string>();
                    } while ((seen is "PENDING" or "PROLOG" || HostTools.QemuProcesses(dataDir).Count == 0) && watch.Elapsed < TimeSpan.FromSeconds(60));
                    Assert.That(seen, Is.EqualTo("BOOT").Or.EqualTo("RUNNING"), "the instance should be launching");
                    Assert.That(view["ready"]!.GetValue<bool>(), Is.False, "killed before the guest is ready: " + view.ToJsonString());
                    Assert.That(HostTools.QemuProcesses(dataDir), Is.Not.Empty, "QEMU runs while the launch is in progress");
                }
                else
                {
                    await Task.Delay(random.Next(200, 6000));
                    seen = (await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200))["state"]!.GetValue<string>();
                }
                var delay = watch.ElapsedMilliseconds;
                server.Kill();
                server.WaitForExit(10_000);

                server = ServerProcessTests.StartServer(dataDir, port, env);
                await ServerProcessTests.WaitHealthy(port, server, TimeSpan.FromSeconds(60));
                var states = await SettleAsync(http, TimeSpan.FromSeconds(200));
                var violations = await SiteInvariants.ViolationsAsync(dataDir);
                report.Add($"trial {trial}: killed after {delay} ms in {seen}; then {Summary(states)}; violations: {violations.Count}");
                TestContext.Progress.WriteLine(report[^1]);
                Assert.That(violations, Is.Empty, $"trial {trial} (seed {seed}):\n" + string.Join("\n", violations));

                await http.DeleteAsync($"/api/v1/instances/{id}");
                await InstanceApiTests.WaitAsync(http, id, "DONE", 90);
                Assert.That(HostTools.QemuProcesses(dataDir), Is.Empty, "terminating the instance stops its QEMU");
                Assert.That(await SiteInvariants.ViolationsAsync(dataDir), Is.Empty);
            }
        }
        finally
        {
            TestContext.Progress.WriteLine(string.Join("\n", report));
            ServerProcessTests.Kill(server);
            HostTools.KillQemu(dataDir);
            TempDir.Delete(dataDir);
        }
    }

    static async Task<HttpClient> ClientAsync(int port, Process server, string dataDir)
    {
        await ServerProcessTests.WaitHealthy(port, server, TimeSpan.FromSeconds(60));
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(100) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(dataDir, "admin.token")).Trim());
        return http;
    }

    static async Task<IReadOnlyList<JsonNode>> ListAsync(HttpClient http)
    {
        var all = new List<JsonNode>();
        for (var offset = 0; ; offset += 1000)
        {
            var page = (await (await http.GetAsync($"/api/v1/instances?limit=1000&offset={offset}")).Json(200)).AsArray();
            all.AddRange(page.Select(n => n!));
            if (page.Count < 1000) return all;
        }
    }

    /// <summary>Waits (bounded) until no instance is in a transient state; returns id → state.</summary>
    static async Task<Dictionary<long, string>> SettleAsync(HttpClient http, TimeSpan timeout, string? final = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var states = (await ListAsync(http)).ToDictionary(n => n["id"]!.GetValue<long>(), n => n["state"]!.GetValue<string>());
            var done = final is null ? states.Values.All(s => Settled.Contains(s)) : states.Values.All(s => s == final);
            if (done) return states;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"instances did not settle within {timeout}: {Summary(states)}");
            await Task.Delay(500);
        }
    }

    static string Summary(Dictionary<long, string> states) =>
        string.Join(", ", states.Values.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}"));
}
