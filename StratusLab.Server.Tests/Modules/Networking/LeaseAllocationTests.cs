using System.Collections.Concurrent;
using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>The allocator against a real SQLite store: no address or port is ever given twice, even under concurrency.</summary>
public class LeaseAllocationTests
{
    string _dir = "";
    NetworkingStore _store = null!;

    [SetUp]
    public void Create()
    {
        _dir = TempDir.Create("leases");
        DapperTypes.Register();
        var store = new Store(Path.Combine(_dir, "test.db"), 30_000);
        Migrator.Migrate(store, Program.StoreSchemas());
        _store = new NetworkingStore(store);
    }

    [TearDown]
    public void Remove()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        TempDir.Delete(_dir);
    }

    async Task<long> NetworkAsync(string name, params AddressRange[] ranges) => await NetworkAsync(name, [], ranges);

    async Task<long> NetworkAsync(string name, IReadOnlyList<(uint, string)> held, params AddressRange[] ranges) =>
        await _store.WriteAsync((c, tx) => _store.InsertNetworkAsync(c, tx, new NewNetwork(name, "private", "user", 1, 1, 384, ranges[0].Subnet,
            null, [], null, null, null, ranges, held, [0])));

    static uint Ip(string text) => Ipv4.TryParse(text, out var a) ? a : throw new ArgumentException(text);

    [Test, CancelAfter(60_000)]
    public async Task Concurrent_allocations_never_share_an_address_and_stop_exactly_when_the_network_is_full()
    {
        var network = await NetworkAsync("full", AddressRange.FromCidr("10.60.0.0/26"));
        var got = new ConcurrentBag<long>();
        var refused = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(1, 80), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
        {
            try { got.Add((await _store.AllocateAsync(i, [network], null, null))[0].Address); }
            catch (NetworkUnavailableException e) { refused.Add(e.Message); }
        });
        Assert.That(got, Has.Count.EqualTo(62));
        Assert.That(got.Distinct().Count(), Is.EqualTo(62), "no address was given twice");
        Assert.That(got.Select(a => Ipv4.Format((uint)a)), Is.All.Matches<string>(a => AddressRange.FromCidr("10.60.0.0/26").Contains(Ip(a))));
        Assert.That(refused, Has.Count.EqualTo(18));
        Assert.That(refused.First(), Does.Contain("network 'full' has no free address (62 of 62 leased or held)"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Releases_and_allocations_interleaved_keep_every_lease_unique()
    {
        var network = await NetworkAsync("churn", AddressRange.FromCidr("10.61.0.0/28"));
        var live = new ConcurrentDictionary<long, long>();
        await Parallel.ForEachAsync(Enumerable.Range(1, 200), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            try
            {
                var lease = (await _store.AllocateAsync(i, [network], null, null))[0];
                Assert.That(live.Values, Does.Not.Contain(lease.Address), $"{Ipv4.Format((uint)lease.Address)} given while still leased");
                live[i] = lease.Address;
                await Task.Yield();
                live.TryRemove(i, out var _);
                await _store.DeleteLeaseAsync(i, network, lease.Address);
            }
            catch (NetworkUnavailableException) { }
        });
        Assert.That(await _store.LeasingInstancesAsync(), Is.Empty, "every lease was given back");
    }

    [Test]
    public async Task A_released_address_is_not_given_out_again_at_once_and_held_ones_never()
    {
        var network = await NetworkAsync("cursor", [(Ip("10.62.0.2"), "gateway")], AddressRange.FromCidr("10.62.0.0/29"));
        var first = (await _store.AllocateAsync(1, [network], null, null))[0];
        Assert.That(first.Ip, Is.EqualTo("10.62.0.1"));
        var second = (await _store.AllocateAsync(2, [network], null, null))[0];
        Assert.That(second.Ip, Is.EqualTo("10.62.0.3"), "the held gateway is skipped");
        await _store.DeleteLeaseAsync(1, network, first.Address);
        Assert.That((await _store.AllocateAsync(3, [network], null, null))[0].Ip, Is.EqualTo("10.62.0.4"), "the cursor moves on");
        Assert.That((await _store.AllocateAsync(4, [network], null, null))[0].Ip, Is.EqualTo("10.62.0.5"));
        Assert.That((await _store.AllocateAsync(5, [network], null, null))[0].Ip, Is.EqualTo("10.62.0.6"));
        Assert.That((await _store.AllocateAsync(6, [network], null, null))[0].Ip, Is.EqualTo("10.62.0.1"), "it wraps around to the freed address");
    }

    [Test]
    public async Task Several_ranges_are_used_in_turn()
    {
        var network = await NetworkAsync("two", AddressRange.FromFirstLast("10.63.0.10", "10.63.0.11", "24"), AddressRange.FromFirstLast("10.63.0.20", "10.63.0.20", "24"));
        var ips = new List<string>();
        for (var i = 1; i <= 3; i++) ips.Add((await _store.AllocateAsync(i, [network], null, null))[0].Ip);
        Assert.That(ips, Is.EqualTo(new[] { "10.63.0.10", "10.63.0.11", "10.63.0.20" }));
        Assert.That(async () => await _store.AllocateAsync(4, [network], null, null), Throws.InstanceOf<NetworkUnavailableException>());
    }

    [Test]
    public async Task Every_nic_gets_a_lease_and_the_pat_ports_go_to_one_all_or_nothing()
    {
        var a = await NetworkAsync("a", AddressRange.FromCidr("10.64.0.0/24"));
        var b = await NetworkAsync("b", AddressRange.FromCidr("10.65.0.0/29"));
        var ports = new PortWant(1, [22, 80], "127.0.0.1", 20000, 20003, null);
        var leases = await _store.AllocateAsync(1, [a, b], "02:00:aa:bb:cc:dd", ports);
        Assert.That(leases.Select(l => (l.Nic, l.Ip, l.Mac)), Is.EqualTo(new (int?, string, string)[]
        {
            (0, "10.64.0.1", "02:00:aa:bb:cc:dd"), (1, "10.65.0.1", "02:00:0a:41:00:01"),
        }), "an admin-set MAC applies to the first NIC; the others are derived from their address");
        var forwarded = await _store.PortsOfInstanceAsync(1);
        Assert.That(forwarded.Select(p => (p.Port, p.GuestPort, p.Address)), Is.EqualTo(new[] { (20000L, 22L, (long)Ip("10.65.0.1")), (20001L, 80L, (long)Ip("10.65.0.1")) }));
        Assert.That((await _store.AllocateAsync(1, [a, b], null, ports)).Select(l => l.Ip), Is.EqualTo(new[] { "10.64.0.1", "10.65.0.1" }), "allocating again returns the same leases");

        await _store.AllocateAsync(2, [a, b], null, ports);
        var error = Assert.ThrowsAsync<NetworkUnavailableException>(() => _store.AllocateAsync(3, [a, b], null, ports));
        Assert.That(error!.Message, Does.Contain("no free PAT port left in 20000-20003"));
        Assert.That(await _store.LeasesOfInstanceAsync(3), Is.Empty, "the leases taken before the ports ran out were rolled back");
    }

    [Test, CancelAfter(60_000)]
    public async Task Concurrent_instances_never_share_a_pat_port()
    {
        var network = await NetworkAsync("pat", AddressRange.FromCidr("10.66.0.0/24"));
        var ports = new PortWant(0, [22, 80, 443], "127.0.0.1", 21000, 21299, null);
        await Parallel.ForEachAsync(Enumerable.Range(1, 100), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
            await _store.AllocateAsync(i, [network], null, ports));
        var all = new List<long>();
        for (var i = 1; i <= 100; i++) all.AddRange((await _store.PortsOfInstanceAsync(i)).Select(p => p.Port));
        Assert.That(all, Has.Count.EqualTo(300).And.Unique);
    }
}
