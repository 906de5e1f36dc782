using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>A lease changes state only from the state the change expects; anything else leaves it as it is.</summary>
public class LeaseStateTests
{
    string _dir = "";
    NetworkingStore _store = null!;
    long _network;

    static uint Ip(string text) => Ipv4.TryParse(text, out var a) ? a : throw new ArgumentException(text);

    [SetUp]
    public async Task Create()
    {
        _dir = TempDir.Create("leasestate");
        DapperTypes.Register();
        var store = new Store(Path.Combine(_dir, "test.db"), 30_000);
        Migrator.Migrate(store, Program.StoreSchemas());
        _store = new NetworkingStore(store);
        var range = AddressRange.FromCidr("10.61.0.0/29");
        _network = await _store.WriteAsync((c, tx) => _store.InsertNetworkAsync(c, tx, new NewNetwork("states", "private", "bridge", 1, 1, 384, range.Subnet,
            "10.61.0.1", [], null, null, null, [range], [(Ip("10.61.0.1"), "gateway")], [0])));
    }

    [TearDown]
    public void Remove()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        TempDir.Delete(_dir);
    }

    [Test]
    public async Task Holding_a_free_address_holds_it_and_holding_it_again_changes_nothing()
    {
        var (lease, held) = await _store.HoldAsync(_network, Ip("10.61.0.5"), "held by alice");
        Assert.That((held, lease.State, lease.Reason), Is.EqualTo((true, "held", "held by alice")));
        (lease, held) = await _store.HoldAsync(_network, Ip("10.61.0.5"), "held by bob");
        Assert.That((held, lease.Reason), Is.EqualTo((false, "held by alice")));
    }

    [Test]
    public async Task An_address_in_use_can_be_neither_held_nor_released()
    {
        var used = (await _store.AllocateAsync(7, [_network], null, null))[0];
        var (lease, held) = await _store.HoldAsync(_network, (uint)used.Address, "held by alice");
        Assert.That((held, lease.State, lease.InstanceId), Is.EqualTo((false, "used", (long?)7)));
        var (found, released) = await _store.ReleaseHeldAsync(_network, (uint)used.Address);
        Assert.That((released, found?.State), Is.EqualTo((false, "used")));
        Assert.That(await _store.LeasesOfInstanceAsync(7), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task The_gateway_stays_reserved_and_a_free_address_has_nothing_to_release()
    {
        var (gateway, released) = await _store.ReleaseHeldAsync(_network, Ip("10.61.0.1"));
        Assert.That((released, gateway?.Reason), Is.EqualTo((false, "gateway")));
        var (free, releasedFree) = await _store.ReleaseHeldAsync(_network, Ip("10.61.0.6"));
        Assert.That((releasedFree, free), Is.EqualTo((false, (LeaseRow?)null)));
        await _store.HoldAsync(_network, Ip("10.61.0.6"), "held by alice");
        Assert.That((await _store.ReleaseHeldAsync(_network, Ip("10.61.0.6"))).Released, Is.True);
    }

    [Test]
    public async Task Only_the_instance_that_uses_a_lease_can_mark_it_plumbed_or_give_it_back()
    {
        var lease = (await _store.AllocateAsync(8, [_network], null, null))[0];
        Assert.That(await _store.SetPlumbedAsync(9, _network, (uint)lease.Address), Is.False, "another instance's lease");
        Assert.That(await _store.SetPlumbedAsync(8, _network, (uint)lease.Address), Is.True);
        await _store.DeleteLeaseAsync(9, _network, lease.Address);
        Assert.That(await _store.LeasesOfInstanceAsync(8), Has.Count.EqualTo(1), "another instance cannot give it back");
        await _store.DeleteLeaseAsync(8, _network, lease.Address);
        Assert.That(await _store.LeasesOfInstanceAsync(8), Is.Empty);
    }

    [Test]
    public void Network_drivers_are_keyed_services_and_an_unknown_name_gets_a_clear_error()
    {
        var services = new ServiceCollection();
        services.AddKeyedSingleton<INetworkDriver, UserNetworkDriver>(NetworkDriverNames.User);
        using var provider = services.BuildServiceProvider();
        Assert.That(provider.GetNetworkDriver("user"), Is.InstanceOf<UserNetworkDriver>());
        Assert.That(() => provider.GetNetworkDriver("vxlan"), Throws.InvalidOperationException.With.Message.EqualTo("no network driver named 'vxlan'"));
    }
}
