using StratusLab.Server.Modules.Pdisk;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>The store's state changes happen only from the state they start from, and say whether they happened.</summary>
public class PdiskStoreTests
{
    string _dir = "";
    PdiskStore _store = null!;

    [SetUp]
    public void Create()
    {
        DapperTypes.Register();
        _dir = TempDir.Create("pdisk-store");
        var store = new Store(Path.Combine(_dir, "stratuslab.db"), 5000);
        Migrator.Migrate(store, Program.StoreSchemas());
        _store = new PdiskStore(store);
    }

    [TearDown] public void Remove() => TempDir.Delete(_dir);

    async Task<string> InsertAsync(string state)
    {
        var uuid = Guid.NewGuid().ToString("D");
        await _store.Store.WriteAsync(async (c, tx) => await _store.InsertAsync(c, tx, new VolumeRow
        {
            Uuid = uuid, OwnerId = 1, Type = VolumeTypes.Name(VolumeType.MachineImageLive), State = state, Backend = "file", Format = "qcow2",
            Path = $"/v/{uuid}.qcow2", Sharing = "local", SizeBytes = 1 << 20, CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
        }));
        return uuid;
    }

    [Test]
    public async Task A_volume_becomes_ready_only_from_creating()
    {
        var uuid = await InsertAsync(VolumeStates.Creating);
        var location = new VolumeLocation($"/v/{uuid}.raw", "raw", 2 << 20);
        Assert.That(await _store.MarkReadyAsync(uuid, location), Is.True);
        Assert.That(await _store.MarkReadyAsync(uuid, location with { SizeBytes = 3 << 20 }), Is.False, "already READY");
        var row = (await _store.GetAsync(uuid))!;
        Assert.That((row.State, row.Path, row.Format, row.SizeBytes), Is.EqualTo((VolumeStates.Ready, location.Path, "raw", 2L << 20)));
    }

    [Test]
    public async Task A_transition_happens_only_from_the_state_it_names()
    {
        var uuid = await InsertAsync(VolumeStates.Ready);
        Assert.That(await _store.TransitionAsync(uuid, VolumeStates.Quarantined, VolumeStates.Deleting), Is.False);
        Assert.That(await _store.TransitionAsync(uuid, VolumeStates.Ready, VolumeStates.Deleting), Is.True);
        Assert.That(await _store.TransitionAsync(uuid, VolumeStates.Ready, VolumeStates.Deleting), Is.False);
        Assert.That((await _store.GetAsync(uuid))!.State, Is.EqualTo(VolumeStates.Deleting));
    }

    [Test]
    public async Task Only_a_ready_volume_goes_to_quarantine_or_is_rebased()
    {
        var creating = await InsertAsync(VolumeStates.Creating);
        var ready = await InsertAsync(VolumeStates.Ready);
        var now = DateTimeOffset.UtcNow;
        var quarantined = await _store.Store.WriteAsync(async (c, tx) =>
            (await _store.QuarantineAsync(creating, now, now.AddHours(1), c, tx), await _store.QuarantineAsync(ready, now, now.AddHours(1), c, tx)));
        Assert.That(quarantined, Is.EqualTo((false, true)));
        Assert.That(await _store.MarkRebasedAsync(ready, VolumeType.MachineImageOrigin, new VolumeLocation("/v/x", "qcow2", 1)), Is.False, "in quarantine now");
    }
}
