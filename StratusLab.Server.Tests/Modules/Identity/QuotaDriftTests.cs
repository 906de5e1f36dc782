using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Dapper;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Platform;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Identity;

/// <summary>Stored quota usage follows what instances and volumes hold: drift is reported, repaired, recomputed at start-up, and not made by a crash.</summary>
[NonParallelizable]
public class QuotaDriftTests
{
    static async Task<(long Vms, long Cpus, long MemoryMib, long StorageGib)> StoredUsageAsync(string dataDir)
    {
        await using var c = await new StratusLab.Server.Platform.Data.Store(Path.Combine(dataDir, "stratuslab.db"), 5000).OpenAsync();
        return await c.QuerySingleAsync<(long, long, long, long)>(
            "SELECT vms, cpus, memory_mib, storage_gib FROM id_quota_usage WHERE user_id = (SELECT id FROM id_users WHERE name = 'admin')");
    }

    static async Task InjectDriftAsync(string dataDir)
    {
        await using var c = await new StratusLab.Server.Platform.Data.Store(Path.Combine(dataDir, "stratuslab.db"), 5000).OpenAsync();
        await c.ExecuteAsync("""
            UPDATE id_quota_usage SET vms = vms + 50, cpus = cpus + 50, storage_gib = storage_gib + 1
            WHERE user_id = (SELECT id FROM id_users WHERE name = 'admin')
            """);
    }

    static async Task<(int Exit, string Out)> AdminAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await AdminCli.RunAsync(args, output, error);
        return (exit, output + error.ToString());
    }

    [Test, CancelAfter(120_000)]
    public async Task Drifted_quota_usage_is_reported_by_admin_check_repaired_with_repair_and_recomputed_at_start_up()
    {
        var dataDir = TempDir.Create("quota-drift");
        try
        {
            (long, long, long, long) held;
            await using (var first = await TestServer.StartAsync(dataDir: dataDir))
            {
                await TestImages.RegisterDefaultAsync(first);
                using var http = first.Client();
                var created = await (await http.PostAsJsonAsync("/api/v1/instances", new { name = "held", count = 2, cpu = 1, memoryMiB = 64 })).Json(201);
                await Volumes.CreateAsync(http, new { size = 1, tag = "held" });
                await InstanceApiTests.WaitAsync(http, created.AsArray()[0]!["id"]!.GetValue<long>(), "RUNNING");
                held = await StoredUsageAsync(dataDir);
                // Storage also counts the cached image's origin, which the admin (the site owner) holds: at least the 1 GiB volume.
                Assert.That((held.Item1, held.Item2, held.Item3), Is.EqualTo((2L, 2L, 128L)), "two instances of 1 CPU / 64 MiB");
                Assert.That(held.Item4, Is.GreaterThanOrEqualTo(1), "the 1 GiB volume");
            }

            var clean = await AdminAsync("check", "--data-dir", dataDir);
            Assert.That(clean.Exit, Is.EqualTo(0), clean.Out);
            Assert.That(clean.Out, Does.Contain("passed the integrity, foreign-key and quota usage checks"));

            await InjectDriftAsync(dataDir);
            var drifted = await AdminAsync("check", "--data-dir", dataDir);
            Assert.That(drifted.Exit, Is.EqualTo(1), drifted.Out);
            Assert.That(drifted.Out, Does.Contain("quota drift for user 'admin'")
                .And.Contain($"stored usage vms=52 cpus=52 memoryMiB=128 storageGiB={held.Item4 + 1}")
                .And.Contain($"held by instances and volumes vms=2 cpus=2 memoryMiB=128 storageGiB={held.Item4}")
                .And.Contain("--repair"));
            Assert.That(await StoredUsageAsync(dataDir), Is.EqualTo((52L, 52L, 128L, held.Item4 + 1)), "check alone changes nothing");

            var repaired = await AdminAsync("check", "--repair", "--data-dir", dataDir);
            Assert.That(repaired.Exit, Is.EqualTo(0), repaired.Out);
            Assert.That(repaired.Out, Does.Contain("(repaired)"));
            Assert.That(await StoredUsageAsync(dataDir), Is.EqualTo(held));
            Assert.That((await AdminAsync("check", "--data-dir", dataDir)).Exit, Is.EqualTo(0));

            // The server recomputes at start-up too, before it admits anything.
            await InjectDriftAsync(dataDir);
            await using (var second = await TestServer.StartAsync(dataDir: dataDir))
            {
                using var http = second.Client();
                var usage = (await (await http.GetAsync("/api/v1/quotas/admin")).Json(200))["usage"]!;
                Assert.That(usage["vms"]!.GetValue<long>(), Is.EqualTo(2), usage.ToJsonString());
                Assert.That(usage["storageGiB"]!.GetValue<long>(), Is.EqualTo(held.Item4), usage.ToJsonString());

                var running = await AdminAsync("check", "--repair", "--data-dir", dataDir);
                Assert.That(running.Exit, Is.EqualTo(1), "--repair refuses to run under a live server");
                Assert.That(running.Out, Does.Contain("a server is running"));
            }
        }
        finally
        {
            TempDir.Delete(dataDir);
        }
    }

    [Test, CancelAfter(180_000)]
    public async Task A_server_killed_during_bulk_admissions_leaves_no_quota_drift()
    {
        var dataDir = TempDir.Create("quota-kill");
        var port = ServerProcessTests.FreePort();
        var server = ServerProcessTests.StartServer(dataDir, port, ("STRATUSLAB__Compute__SimulatedDelayMs", "0"));
        try
        {
            await ServerProcessTests.WaitHealthy(port, server, TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(dataDir, "admin.token")).Trim());
            await (await http.PutAsJsonAsync("/api/v1/quotas/admin", new { vms = -1, cpus = -1, memoryMiB = -1, storageGiB = -1 })).Json(200);

            // Bulk requests back to back, some still being admitted when the server is killed.
            var admitted = 0;
            var refusal = "";
            using var stop = new CancellationTokenSource();
            var load = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var response = await http.PostAsJsonAsync("/api/v1/instances", new { name = "bulk", count = 8, cpu = 1, memoryMiB = 32 }, stop.Token);
                        if ((int)response.StatusCode == 201) Interlocked.Increment(ref admitted);
                        else refusal = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                    }
                    catch (Exception e) when (e is HttpRequestException or OperationCanceledException) { return; }
                }
            });
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Volatile.Read(ref admitted) < 3 && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.That(Volatile.Read(ref admitted), Is.GreaterThanOrEqualTo(3), "bulk requests were admitted before the kill; last refusal: " + refusal);
            server.Kill(); // SIGKILL, mid-request
            server.WaitForExit(10_000);
            stop.Cancel();
            await load.WaitAsync(TimeSpan.FromSeconds(30));

            // Checked before any restart: the store as the crash left it.
            using var output = new StringWriter();
            var exit = await AdminCli.RunAsync(["check", "--data-dir", dataDir], output, output);
            Assert.That(exit, Is.EqualTo(0), output.ToString());
            Assert.That(output.ToString(), Does.Not.Contain("quota drift"));
        }
        finally
        {
            ServerProcessTests.Kill(server);
            TempDir.Delete(dataDir);
        }
    }
}
