using Dapper;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

public class MigratorTests
{
    string _dir = "";

    [SetUp] public void Create() => _dir = TempDir.Create("store");
    [TearDown] public void Remove() => TempDir.Delete(_dir);

    Store NewStore() => new(Path.Combine(_dir, "stratuslab.db"), 5000);

    [Test]
    public void Migrations_are_numbered_from_one_without_gaps()
    {
        var all = Migrator.Embedded();
        Assert.That(all.Select(m => m.Version), Is.EqualTo(Enumerable.Range(1, all.Count)));
    }

    [Test]
    public void A_new_store_gets_every_migration_once_and_uses_wal()
    {
        var store = NewStore();
        Assert.That(Migrator.Migrate(store), Has.Count.EqualTo(Migrator.LatestVersion));
        Assert.That(Migrator.Migrate(store), Is.Empty);
        using var c = store.Open();
        Assert.That(c.ExecuteScalar<string>("PRAGMA journal_mode"), Is.EqualTo("wal"));
        Assert.That(c.ExecuteScalar<long>("PRAGMA foreign_keys"), Is.EqualTo(1));
        Assert.That(c.ExecuteScalar<long>("PRAGMA user_version"), Is.EqualTo(Migrator.LatestVersion));
    }

    [Test]
    public void A_store_from_a_newer_binary_is_refused_with_a_clear_message()
    {
        var store = NewStore();
        Migrator.Migrate(store);
        using (var c = store.Open()) c.Execute($"PRAGMA user_version = {Migrator.LatestVersion + 5}");
        var e = Assert.Throws<StoreTooNewException>(() => Migrator.Migrate(store));
        Assert.That(e!.Message, Does.Contain("newer").And.Contain("backup"));
    }

    [Test]
    public void A_failing_migration_leaves_the_previous_version()
    {
        var store = NewStore();
        var migrations = new List<Migrator.Migration>
        {
            new(1, "ok", "CREATE TABLE t1 (x INTEGER);"),
            new(2, "broken", "CREATE TABLE t2 (x INTEGER); THIS IS NOT SQL;"),
        };
        Assert.That(() => Migrator.Migrate(store, migrations), Throws.Exception);
        using var c = store.Open();
        Assert.That(c.ExecuteScalar<long>("PRAGMA user_version"), Is.EqualTo(1));
        Assert.That(c.ExecuteScalar<long>("SELECT count(*) FROM sqlite_master WHERE name = 't2'"), Is.EqualTo(0));
    }

    [Test]
    public void Backup_makes_a_consistent_copy_and_check_passes_on_it()
    {
        var store = NewStore();
        Migrator.Migrate(store);
        using (var c = store.Open()) c.Execute("INSERT INTO id_groups (name, created_at) VALUES ('physics', '2026-01-01T00:00:00Z')");
        var backup = Path.Combine(_dir, "backup.db");
        StoreMaintenance.Backup(store, backup);
        var copy = new Store(backup, 5000);
        Assert.That(StoreMaintenance.Check(copy).Ok, Is.True);
        using var cc = copy.Open();
        Assert.That(cc.ExecuteScalar<long>("SELECT count(*) FROM id_groups WHERE name = 'physics'"), Is.EqualTo(1));
        Assert.Throws<IOException>(() => StoreMaintenance.Backup(store, backup), "an existing file is never overwritten");
    }
}
