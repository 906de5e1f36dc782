using Dapper;
using StratusLab.Server.Modules.Scheduling;
using StratusLab.Server.Modules.Scheduling.Expressions;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Scheduling;

public class CapacityReservationTests
{
    [Test, CancelAfter(60_000)]
    public async Task Concurrent_passes_never_overcommit_a_host()
    {
        var dir = TempDir.Create("capacity");
        try
        {
            DapperTypes.Register();
            var store = new Store(Path.Combine(dir, "stratuslab.db"), 10_000);
            Migrator.Migrate(store, Program.StoreSchemas());
            var scheduling = new SchedulingStore(store);
            await scheduling.InsertHostAsync("h1", "simulated", 10, 100_000, false);
            await scheduling.InsertHostAsync("h2", "simulated", 10, 100_000, false);
            var policy = Policy.Parse("striping");
            // 8 concurrent passes each try to place 10 one-CPU instances: 80 requests for 20 CPUs.
            var passes = Enumerable.Range(0, 8).Select(p => Task.Run(() => scheduling.PlaceAsync(
                Enumerable.Range(0, 10).Select(i => new PlacementRequest(p * 100 + i, 1, 512, null, null, policy)).ToList()))).ToList();
            var results = await Task.WhenAll(passes);
            var placed = results.SelectMany(r => r.Values).Count(d => d.Host is not null);
            Assert.That(placed, Is.EqualTo(20));
            var hosts = await scheduling.ListHostsAsync();
            Assert.That(hosts.Select(h => h.AllocatedCpus), Is.All.EqualTo(10));
            Assert.That(results.SelectMany(r => r.Values).Where(d => d.Host is null).Select(d => d.Message),
                Is.All.Contain("needs 1 CPU, 0 free"));

            var someone = results.SelectMany(r => r).First(d => d.Value.Host is not null).Key;
            Assert.That(await scheduling.ReleaseAsync(someone), Is.EqualTo(1));
            var again = await scheduling.PlaceAsync([new PlacementRequest(999, 1, 512, null, null, policy)]);
            Assert.That(again[999].Host, Is.Not.Null, "released capacity can be used again");
        }
        finally { TempDir.Delete(dir); }
    }
}
