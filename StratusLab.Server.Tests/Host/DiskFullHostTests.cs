using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// The data dir on a real 64 MiB tmpfs that the test fills up: requests are refused with 507 naming the filesystem and its
/// free space, /health is degraded, the server keeps serving reads, and what the full disk stranded (instances whose
/// failure could not be written) finishes on its own once space is freed.
/// </summary>
[NonParallelizable]
[Category("FaultInjection")] // the fault-injection tier: dotnet test --filter TestCategory=FaultInjection
public class DiskFullHostTests
{
    static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    [Test, CancelAfter(420_000)]
    public async Task A_full_data_dir_gives_507s_and_degraded_health_and_what_it_stranded_finishes_once_space_is_freed()
    {
        if (!Environment.IsPrivilegedProcess) Assert.Ignore("mounting a tmpfs as the data dir needs root");
        var mount = TempDir.Create("diskfull");
        var (exit, _, err) = await HostTools.RunAsync("mount", ["-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", mount], ToolTimeout);
        Assert.That(exit, Is.EqualTo(0), "mount -t tmpfs: " + err);
        try
        {
            await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
            {
                ["Disk:MinFreeMiB"] = "4",
                ["Compute:MonitorIntervalSeconds"] = "1",
            }, dataDir: mount);
            await ExerciseAsync(server, mount);
        }
        finally
        {
            // Pooled SQLite connections keep the store open; the mount can go only once they are closed.
            SqliteConnection.ClearAllPools();
            var (umount, _, umountErr) = await HostTools.RunAsync("umount", [mount], ToolTimeout);
            if (umount != 0)
            {
                TestContext.Out.WriteLine($"umount {mount} failed ({umountErr.Trim()}); detaching it lazily");
                await HostTools.RunAsync("umount", ["-l", mount], ToolTimeout);
            }
            TempDir.Delete(mount);
        }
    }

    static async Task ExerciseAsync(TestServer server, string mount)
    {
        using var admin = server.Client();
        using var anonymous = server.Client(token: null);
        var health = await (await anonymous.GetAsync("/health")).Json(200);
        Assert.That(health["status"]!.GetValue<string>(), Is.EqualTo("ok"), health.ToJsonString());
        Assert.That(health["disk"]!["filesystem"]!.GetValue<string>(), Is.EqualTo(mount));

        var steady = Id(await (await admin.PostAsJsonAsync("/api/v1/instances", new { name = "steady" })).Json(201));
        Assert.That(State(await InstanceApiTests.WaitAsync(admin, steady, "RUNNING")), Is.EqualTo("RUNNING"));

        // Two deployments wait in PROLOG while the disk fills up: their next writes, and the writes of their failure paths, fail.
        await (await admin.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "prolog", mode = "delay", delayMs = 6000, times = 2 })).Json(201);
        var launched = await (await admin.PostAsJsonAsync("/api/v1/instances", new { name = "caught", count = 2 })).Json(201);
        var caught = launched.AsArray().Select(n => Id(n!)).ToList();
        await WaitUntilAsync(async () => (await StatesAsync(admin, caught)).All(s => s == "PROLOG"), TimeSpan.FromSeconds(30), "both instances in PROLOG");

        var filler = Path.Combine(mount, "filler");
        var filled = Fill(filler);
        TestContext.Out.WriteLine($"filled {mount} with {filled / 1048576.0:0.0} MiB");
        try
        {
            foreach (var (path, body) in new (string, object)[]
                     {
                         ("/api/v1/instances", new { name = "refused" }),
                         ("/api/v1/volumes", new { size = 1 }),
                         ("/api/v1/users", new { name = "refused", password = "password-refused" }),
                     })
            {
                var problem = await (await admin.PostAsJsonAsync(path, body)).Problem(507);
                Assert.Multiple(() =>
                {
                    Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain($"the filesystem {mount} holding the data dir has").And.Contain("MiB free"), path);
                    Assert.That(problem["filesystem"]!.GetValue<string>(), Is.EqualTo(mount), path);
                    Assert.That(problem["freeBytes"]!.GetValue<long>(), Is.LessThan(4L * 1048576), path);
                });
            }

            var degraded = await (await anonymous.GetAsync("/health")).Json(200);
            Assert.That(degraded["status"]!.GetValue<string>(), Is.EqualTo("degraded"), degraded.ToJsonString());
            Assert.That(degraded["problems"]!.AsArray().Select(p => p!.GetValue<string>()), Has.Some.Contains($"the filesystem {mount} holding the data dir"));

            // Terminating is never refused up front; on a full disk its first write may fail, and then it says why.
            var terminate = await admin.DeleteAsync($"/api/v1/instances/{steady}");
            if ((int)terminate.StatusCode == 507)
                Assert.That((await terminate.Problem(507))["filesystem"]!.GetValue<string>(), Is.EqualTo(mount));
            else
                Assert.That((int)terminate.StatusCode, Is.EqualTo(202), await terminate.Content.ReadAsStringAsync());

            // The deployments' delay is over: they tried to go on, and to record their failure, on a full disk. Reads still work.
            await Task.Delay(TimeSpan.FromSeconds(9));
            var whileFull = await StatesAsync(admin, caught);
            TestContext.Out.WriteLine($"while the disk was full: {string.Join(", ", whileFull)}");
            Assert.That(whileFull, Has.None.EqualTo("RUNNING"), "a deployment cannot record RUNNING on a full disk");
            Assert.That((await (await admin.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Has.Count.GreaterThanOrEqualTo(3), "reads go on");

            // With no floor, a write is tried and fails for lack of space: a 507 that says so, and /health names the failed write.
            var options = server.App.Services.GetRequiredService<StratusLab.Server.Platform.Configuration.ServerOptions>();
            options.Disk.MinFreeMiB = 0;
            var full = await (await admin.PostAsJsonAsync("/api/v1/users", new { name = "tried", password = "password-tried" })).Problem(507);
            Assert.That(full["detail"]!.GetValue<string>(), Does.Contain($"The filesystem {mount} holding the data dir is full").And.Contain("database or disk is full"));
            var failedWrite = await (await anonymous.GetAsync("/health")).Json(200);
            Assert.That(failedWrite["status"]!.GetValue<string>(), Is.EqualTo("degraded"));
            Assert.That(failedWrite["disk"]!["lastWriteError"]!.GetValue<string>(), Does.Contain("database or disk is full"));
            options.Disk.MinFreeMiB = 4;
        }
        finally
        {
            File.Delete(filler);
        }

        // With space back, no instance stays in PROLOG or BOOT: whatever the full disk stranded finishes (FAILED, with the reason
        // it failed for) within a bounded time, and health turns ok.
        await WaitUntilAsync(async () => (await StatesAsync(admin, caught)).All(s => s is "FAILED" or "RUNNING"), TimeSpan.FromSeconds(60),
            "both caught instances finished (FAILED or RUNNING)");
        foreach (var id in caught)
        {
            var node = await (await admin.GetAsync($"/api/v1/instances/{id}")).Json(200);
            TestContext.Out.WriteLine($"instance {id}: {State(node)} {node["failedStep"]} {node["failureReason"]}");
            if (State(node) == "FAILED") Assert.That(node["failureReason"]!.GetValue<string>(), Does.Contain("filesystem is full"), node.ToJsonString());
        }
        if ((await StatesAsync(admin, [steady])).Single() is not ("EPILOG" or "DONE"))
            await (await admin.DeleteAsync($"/api/v1/instances/{steady}")).Json(202);
        await WaitUntilAsync(async () => (await StatesAsync(admin, [steady])).Single() is "DONE" or "FAILED", TimeSpan.FromSeconds(60), "the terminated instance ended");
        await WaitUntilAsync(async () => (await (await anonymous.GetAsync("/health")).Json(200))["status"]!.GetValue<string>() == "ok",
            TimeSpan.FromSeconds(30), "/health ok again");

        // The server still serves new work.
        var after = Id(await (await admin.PostAsJsonAsync("/api/v1/instances", new { name = "after" })).Json(201));
        Assert.That(State(await InstanceApiTests.WaitAsync(admin, after, "RUNNING")), Is.EqualTo("RUNNING"));
        var volume = await (await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1 })).Json(201);
        Assert.That(volume["state"]!.GetValue<string>(), Is.EqualTo("READY"));
        var volumes = await (await admin.GetAsync("/api/v1/volumes?state=CREATING")).Json(200);
        Assert.That(volumes.AsArray(), Is.Empty, "no volume is left CREATING");
        // The fault-injection tier's invariants: nothing without an owner, quota equal to what holds it, admin check clean.
        Assert.That(await SiteInvariants.ViolationsAsync(server.DataDir), Is.Empty);
    }

    /// <summary>Writes zeros until the filesystem refuses (ENOSPC), in big then small pieces; returns the bytes written.</summary>
    static long Fill(string path)
    {
        long written = 0;
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1);
        foreach (var size in new[] { 1 << 20, 64 << 10, 4 << 10, 512 })
        {
            var chunk = new byte[size];
            try
            {
                while (true)
                {
                    stream.Write(chunk);
                    written += size;
                }
            }
            catch (IOException) { }
        }
        return written;
    }

    static async Task<IReadOnlyList<string>> StatesAsync(HttpClient http, IEnumerable<long> ids)
    {
        var states = new List<string>();
        foreach (var id in ids) states.Add(State(await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200)));
        return states;
    }

    static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(250);
        }
        Assert.Fail($"not within {timeout.TotalSeconds:0} s: {what}");
    }

    static long Id(JsonNode node) => node["id"]!.GetValue<long>();
    static string State(JsonNode node) => node["state"]!.GetValue<string>();
}
