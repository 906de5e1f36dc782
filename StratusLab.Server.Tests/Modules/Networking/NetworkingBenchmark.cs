using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>
/// The figures for the note: lease allocation rate on a /16 (the allocator on the store, and holds through the API), and
/// the time to bring a bridge NIC with its rules up and down (the real driver, inside a network namespace).
/// Not part of the suite: run scripts/bench/networking-leases.sh and scripts/bench/networking-nic.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/networking-*.sh")]
[Category("Benchmark")]
public class NetworkingBenchmark
{
    static void Report(string line)
    {
        TestContext.Progress.WriteLine(line);
        if (Environment.GetEnvironmentVariable("NETWORKING_BENCH_OUT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    static double Rate(int count, TimeSpan elapsed) => count / elapsed.TotalSeconds;

    [Test]
    public async Task Lease_allocation_rate_on_a_slash_16()
    {
        var dir = TempDir.Create("leasebench");
        try
        {
            DapperTypes.Register();
            var raw = new Store(Path.Combine(dir, "bench.db"), 30_000);
            Migrator.Migrate(raw, Program.StoreSchemas());
            var store = new NetworkingStore(raw);
            var range = AddressRange.FromCidr("10.50.0.0/16");
            var network = await store.WriteAsync((c, tx) => store.InsertNetworkAsync(c, tx, new NewNetwork("big", "private", "user", 1, 1, 384, range.Subnet,
                null, [], null, null, null, [range], [], [0])));

            // Fill the /16 one lease per instance, as PROLOG does; report the rate of the first 10 000 and of the last 5 534.
            var sw = Stopwatch.StartNew();
            for (var i = 1; i <= 10_000; i++) await store.AllocateAsync(i, [network], null, null);
            var first = sw.Elapsed;
            sw.Restart();
            for (var i = 10_001; i <= 60_000; i++) await store.AllocateAsync(i, [network], null, null);
            sw.Restart();
            for (var i = 60_001; i <= range.Size; i++) await store.AllocateAsync(i, [network], null, null);
            var last = sw.Elapsed;
            Report($"leases, one at a time, empty /16: {Rate(10_000, first):0} leases/s (first 10000); nearly full: {Rate((int)range.Size - 60_000, last):0} leases/s (last {range.Size - 60_000})");
            Assert.That(async () => await store.AllocateAsync(range.Size + 1, [network], null, null), Throws.InstanceOf<NetworkUnavailableException>());

            // Free every other address of the first 20 000, then allocate: the cursor has wrapped, each search skips a used address.
            for (var i = 2; i <= 20_000; i += 2)
                await store.DeleteLeaseAsync(i, network, (await store.LeasesOfInstanceAsync(i))[0].Address);
            sw.Restart();
            for (var i = 0; i < 5_000; i++) await store.AllocateAsync(100_000 + i, [network], null, null);
            Report($"leases on a full /16 with every other address of the first 20000 freed (wrapped cursor): {Rate(5_000, sw.Elapsed):0} leases/s");

            // Sixteen allocators at once on a fresh /16 (the IMMEDIATE transaction serialises them).
            var fresh = AddressRange.FromCidr("10.51.0.0/16");
            var second = await store.WriteAsync((c, tx) => store.InsertNetworkAsync(c, tx, new NewNetwork("big2", "private", "user", 1, 1, 384, fresh.Subnet,
                null, [], null, null, null, [fresh], [], [0])));
            sw.Restart();
            await Parallel.ForEachAsync(Enumerable.Range(200_001, 20_000), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
                await store.AllocateAsync(i, [second], null, null));
            Report($"leases, 16 allocators at once on a /16: {Rate(20_000, sw.Elapsed):0} leases/s (20000 leases, all distinct: {(await store.LeasesOfNetworkAsync(second, null, 30_000, 0)).Select(l => l.Address).Distinct().Count() == 20_000})");
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            TempDir.Delete(dir);
        }
    }

    [Test]
    public async Task Holds_per_second_through_the_api_on_a_slash_16()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Warning" });
        using var admin = server.Client();
        await (await admin.PostAsJsonAsync("/api/v1/networks", new { name = "big", cidr = "10.52.0.0/16" })).Json(201);
        const int count = 5_000;
        var sw = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            var ip = $"10.52.{10 + i / 250}.{1 + i % 250}";
            var response = await admin.PostAsJsonAsync("/api/v1/networks/big/hold", new { ip }, ct);
            Assert.That((int)response.StatusCode, Is.EqualTo(200), ip);
        });
        Report($"holds through the API (POST /networks/big/hold, 8 clients, HTTP on 127.0.0.1): {Rate(count, sw.Elapsed):0} leases/s over {count}");
    }

    [Test]
    public async Task Time_to_bring_a_bridge_nic_with_its_rules_up_and_down()
    {
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        await using var ns = await NetworkNamespace.CreateAsync("slbn");
        var dir = TempDir.Create("nicbench");
        try
        {
            var logs = new TestLoggerProvider();
            var driver = new BridgeNetworkDriver(new NamespacedCommandRunner(new CommandRunner(new LoggerAdapter<CommandRunner>(logs.CreateLogger("r"))), ns.Name),
                new ServerOptions { DataDir = dir }, new NetworkingOptions(), new LoggerAdapter<BridgeNetworkDriver>(logs.CreateLogger("b")));
            var network = new NetworkSpec(9, "bench", Subnet.Parse("10.53.0.0/24", "cidr"), "10.53.0.1", ["10.53.0.1"], null, null, null, 8440);
            SecurityRule[] rules = [new("inbound", "accept", "all", null, null, null), new("outbound", "accept", "all", null, null, null),
                new("inbound", "drop", "tcp", 25, 25, null)];
            NicSpec Nic(int i) => new(1000 + i, 0, Macs.FromAddress(0x0a350000u + (uint)(i + 2)), 0x0a350000u + (uint)(i + 2),
                [new PortForwardPlan(22, "127.0.0.1", 20000 + 2 * i), new PortForwardPlan(80, "127.0.0.1", 20001 + 2 * i)], rules);

            var overhead = Stopwatch.StartNew();
            for (var i = 0; i < 20; i++) await ns.RunAsync("true", []);
            var perCommand = overhead.Elapsed.TotalMilliseconds / 20;

            var anchor = Nic(0);
            var sw = Stopwatch.StartNew();
            await driver.PreBootAsync(network, anchor, [anchor], CancellationToken.None);
            var networkUp = sw.Elapsed.TotalMilliseconds;
            var ups = new List<double>();
            var downs = new List<double>();
            for (var i = 1; i <= 20; i++)
            {
                var nic = Nic(i);
                sw.Restart();
                await driver.PreBootAsync(network, nic, [anchor, nic], CancellationToken.None);
                ups.Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                await driver.CleanAsync(network, nic, [anchor], CancellationToken.None);
                downs.Add(sw.Elapsed.TotalMilliseconds);
            }
            sw.Restart();
            await driver.CleanAsync(network, anchor, [], CancellationToken.None);
            var networkDown = sw.Elapsed.TotalMilliseconds;
            static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
            Report(string.Create(CultureInfo.InvariantCulture,
                $"bridge NIC with 2 PAT ports and 3 rules, on a network that is up: up {Median(ups):0} ms, down {Median(downs):0} ms (median of 20; each includes a dnsmasq restart)"));
            Report(string.Create(CultureInfo.InvariantCulture,
                $"first NIC of a network (bridge, sysctl, nft tables, dnsmasq start): {networkUp:0} ms; last NIC (and the network's teardown): {networkDown:0} ms"));
            Report(string.Create(CultureInfo.InvariantCulture,
                $"  (measured through 'ip netns exec', which adds {perCommand:0.0} ms per command; the server itself runs its tools directly)"));
        }
        finally
        {
            TempDir.Delete(dir);
        }
    }
}
