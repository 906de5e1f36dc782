using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>After a restart the store is matched with what runs (simulated driver).</summary>
public class ReconciliationTests
{
    [Test, CancelAfter(90_000)]
    public async Task After_a_restart_live_vms_stay_RUNNING_and_dead_ones_are_FAILED()
    {
        var dataDir = TempDir.Create("reconcile");
        try
        {
            long alive, dead, pending;
            var first = await TestServer.StartAsync(dataDir: dataDir);
            await using (first)
            {
                await TestImages.RegisterDefaultAsync(first);
                using var http = first.Client();
                alive = (await (await http.PostAsJsonAsync("/api/v1/instances", new { name = "alive" })).Json(201))["id"]!.GetValue<long>();
                dead = (await (await http.PostAsJsonAsync("/api/v1/instances", new { name = "dead" })).Json(201))["id"]!.GetValue<long>();
                await InstanceApiTests.WaitAsync(http, alive, "RUNNING");
                await InstanceApiTests.WaitAsync(http, dead, "RUNNING");
                // The monitor would notice the crash at once; stop the server first, then crash the VM behind its back.
                await (await http.PostAsJsonAsync("/api/v1/simulator/faults", new { action = "start", mode = "hang" })).Json(201);
                pending = (await (await http.PostAsJsonAsync("/api/v1/instances", new { name = "interrupted" })).Json(201))["id"]!.GetValue<long>();
                await InstanceApiTests.WaitAsync(http, pending, "BOOT");
            }
            await using (var c = await new StratusLab.Server.Platform.Data.Store(Path.Combine(dataDir, "stratuslab.db"), 5000).OpenAsync())
            {
                await Dapper.SqlMapper.ExecuteAsync(c, "DELETE FROM compute_simulated_vms WHERE instance_id = @dead", new { dead });
            }

            await using var second = await TestServer.StartAsync(dataDir: dataDir);
            using var admin = second.Client();
            await Task.Delay(500);
            var aliveNow = await InstanceApiTests.WaitAsync(admin, alive, "RUNNING", 5);
            Assert.That(aliveNow["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
            var deadNow = await InstanceApiTests.WaitAsync(admin, dead, "FAILED", 10);
            Assert.That(deadNow["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
            Assert.That(deadNow["failureReason"]!.GetValue<string>(), Does.Contain("no longer running"));
            var interrupted = await InstanceApiTests.WaitAsync(admin, pending, "RUNNING", 10);
            Assert.That(interrupted["state"]!.GetValue<string>(), Is.Not.EqualTo("BOOT"), "an interrupted boot does not stay BOOT forever");

            await (await admin.PostAsync($"/api/v1/instances/{alive}/actions/shutdown", null)).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(admin, alive, "DONE"))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        }
        finally
        {
            TempDir.Delete(dataDir);
        }
    }
}
