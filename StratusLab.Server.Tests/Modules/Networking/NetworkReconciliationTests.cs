using System.Net.Http.Json;
using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Networking.Jobs;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>Leases whose instance ended while the server was down are given back when it starts again.</summary>
public class NetworkReconciliationTests
{
    [Test, CancelAfter(60_000)]
    public async Task A_lease_of_an_instance_that_is_gone_is_released_on_start()
    {
        var dataDir = TempDir.Create("netrec");
        try
        {
            long network;
            await using (var first = await TestServer.StartAsync(dataDir: dataDir))
            {
                using var admin = first.Client();
                network = (await (await admin.PostAsJsonAsync("/api/v1/networks", new { name = "orphans", cidr = "10.70.0.0/28" })).Json(201))["id"]!.GetValue<long>();
            }
            // What a crash between a VM's end and its clean-up leaves: a lease (and its PAT port) of an instance that no longer exists.
            var store = new NetworkingStore(new Store(Path.Combine(dataDir, "stratuslab.db"), 10_000));
            await store.AllocateAsync(424242, [network], null, new PortWant(0, [22], "127.0.0.1", 32000, 32010, null));
            Assert.That(await store.LeasingInstancesAsync(), Does.Contain(424242L));

            await using var second = await TestServer.StartAsync(dataDir: dataDir);
            using var http = second.Client();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await (await http.GetAsync("/api/v1/networks/orphans/leases?state=used")).Json(200)).AsArray().Count > 0)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the orphaned lease was not released");
                await Task.Delay(100);
            }
            Assert.That(await store.PortsOfInstanceAsync(424242), Is.Empty, "its PAT port went with it");
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            TempDir.Delete(dataDir);
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task The_reconcile_job_runs_on_the_configured_interval_and_releases_leases_of_instances_that_ended_while_the_server_ran()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Networking:ReconcileIntervalSeconds"] = "600" });
        using var admin = server.Client();
        var network = (await (await admin.PostAsJsonAsync("/api/v1/networks", new { name = "latecomers", cidr = "10.71.0.0/28" })).Json(201))["id"]!.GetValue<long>();
        var store = server.App.Services.GetRequiredService<NetworkingStore>();
        await store.AllocateAsync(535353, [network], null, null);

        var scheduler = await server.App.Services.GetRequiredService<Quartz.ISchedulerFactory>().GetScheduler();
        var trigger = (Quartz.ISimpleTrigger)(await scheduler.GetTrigger(new Quartz.TriggerKey("network-reconcile", "networking")))!;
        Assert.That(trigger.RepeatInterval, Is.EqualTo(TimeSpan.FromMinutes(10)));
        await scheduler.TriggerJob(NetworkReconcileJob.Key);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await store.LeasingInstancesAsync()).Contains(535353))
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the job did not release the lease");
            await Task.Delay(100);
        }
    }
}
