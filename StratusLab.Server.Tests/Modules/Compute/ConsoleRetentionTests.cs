using Dapper;
using Microsoft.Data.Sqlite;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>
/// The console log's two limits, over HTTP with simulated VMs: its size (Compute:ConsoleLogMaxKiB, the older part is
/// dropped while the VM runs) and its life (it goes with the instance record, Compute:EndedInstanceRetentionHours
/// after the instance ended).
/// </summary>
public class ConsoleRetentionTests
{
    static long Id(System.Text.Json.Nodes.JsonNode node) => node["id"]!.GetValue<long>();

    [Test, CancelAfter(90_000)]
    public async Task A_console_log_past_its_bound_keeps_its_newest_lines_and_says_the_older_ones_were_dropped()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:ConsoleLogMaxKiB"] = "16",
            ["Compute:MonitorIntervalSeconds"] = "1",
        });
        await TestImages.RegisterDefaultAsync(server);
        using var admin = server.Client();
        var id = Id(await InstanceApiTests.CreateAsync(admin, new { name = "chatty" }));
        Assert.That((await InstanceApiTests.WaitAsync(admin, id, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));

        // 100 KiB of serial output appended to the log, as QEMU's serial chardev appends to it.
        var log = Path.Combine(server.DataDir, "consoles", id + ".log");
        var output = new System.Text.StringBuilder();
        for (var line = 0; line < 2000; line++) output.Append($"serial line {line:D5} {new string('.', 40)}\n");
        await File.AppendAllTextAsync(log, output.ToString());
        Assert.That(new FileInfo(log).Length, Is.GreaterThan(100_000));

        for (var i = 0; i < 100 && new FileInfo(log).Length > 16 * 1024; i++) await Task.Delay(100);
        Assert.That(new FileInfo(log).Length, Is.LessThanOrEqualTo(16 * 1024), "the monitor pass cut the log to its bound");
        var text = await admin.GetStringAsync($"/api/v1/instances/{id}/console");
        Assert.That(text, Does.Contain("older console output dropped"));
        Assert.That(text, Does.Contain("serial line 01999"), "the newest line is kept");
        Assert.That(text, Does.Not.Contain("serial line 00000"), "the oldest is gone");
        Assert.That(text, Does.Not.Contain("chatty booted"), "and so is the boot, older still");
        await admin.DeleteAsync($"/api/v1/instances/{id}");
    }

    [Test, CancelAfter(120_000)]
    public async Task An_ended_instance_and_its_console_log_are_removed_once_their_retention_time_is_past()
    {
        var dataDir = TempDir.Create("retention");
        try
        {
            var settings = new Dictionary<string, string?>
            {
                ["Compute:EndedInstanceRetentionHours"] = "1",
                ["Compute:MonitorIntervalSeconds"] = "1",
            };
            long old, recent;
            await using (var server = await TestServer.StartAsync(settings, dataDir))
            {
                await TestImages.RegisterDefaultAsync(server);
                using var admin = server.Client();
                old = Id(await InstanceApiTests.CreateAsync(admin, new { name = "old" }));
                recent = Id(await InstanceApiTests.CreateAsync(admin, new { name = "recent" }));
                foreach (var id in new[] { old, recent })
                {
                    await InstanceApiTests.WaitAsync(admin, id, "RUNNING");
                    await (await admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
                    Assert.That((await InstanceApiTests.WaitAsync(admin, id, "DONE"))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
                }
                Assert.That(File.Exists(Path.Combine(dataDir, "consoles", old + ".log")), Is.True, "the log outlives the instance");
            }

            // The first instance ended two hours ago (past the 1 h retention); the second just now.
            SqliteConnection.ClearAllPools();
            await using (var connection = new SqliteConnection($"Data Source={Path.Combine(dataDir, "stratuslab.db")};Pooling=False"))
                Assert.That(await connection.ExecuteAsync("UPDATE compute_instances SET ended_at = @ended WHERE id = @old",
                    new { ended = DapperTypes.Format(DateTimeOffset.UtcNow.AddHours(-2)), old }), Is.EqualTo(1));

            await using (var server = await TestServer.StartAsync(settings, dataDir))
            {
                using var admin = server.Client();
                var gone = false;
                for (var i = 0; i < 100 && !gone; i++)
                {
                    gone = (int)(await admin.GetAsync($"/api/v1/instances/{old}")).StatusCode == 404;
                    if (!gone) await Task.Delay(100);
                }
                Assert.That(gone, Is.True, "the instance past its retention time is removed");
                Assert.That(File.Exists(Path.Combine(dataDir, "consoles", old + ".log")), Is.False, "with its console log");
                await (await admin.GetAsync($"/api/v1/instances/{old}/console")).Problem(404);
                Assert.That((await (await admin.GetAsync($"/api/v1/instances/{recent}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("DONE"),
                    "an instance that ended within its retention time stays");
                Assert.That(await admin.GetStringAsync($"/api/v1/instances/{recent}/console"), Does.Contain("recent booted"));
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            TempDir.Delete(dataDir);
        }
    }
}
