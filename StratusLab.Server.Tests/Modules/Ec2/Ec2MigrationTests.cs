using Dapper;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Ec2;

/// <summary>The ec2 module's migrations over a store that already holds ids and tags.</summary>
public class Ec2MigrationTests
{
    string _dir = "";

    [SetUp] public void Create() => _dir = TempDir.Create("ec2-store");
    [TearDown] public void Remove() => TempDir.Delete(_dir);

    [Test]
    public void Migration_2_keeps_stored_ids_and_tags_and_accepts_vpc_and_subnet_ids()
    {
        var store = new Store(Path.Combine(_dir, "stratuslab.db"), 5000);
        var ec2 = Program.StoreSchemas().Single(s => s.Module == "ec2");
        Assert.That(ec2.LatestVersion, Is.GreaterThanOrEqualTo(2));
        Migrator.Migrate(store, [ModuleSchema.Create("ec2", ec2.Migrations.Where(m => m.Version == 1))]);
        using (var c = store.Open())
        {
            c.Execute("INSERT INTO ec2_ids (aws_id, kind, native_id, created_at) VALUES ('sg-0123456789abcdef0', 'security-group', '7', '2026-01-01T00:00:00Z')");
            c.Execute("INSERT INTO ec2_tags (aws_id, key, value) VALUES ('sg-0123456789abcdef0', 'role', 'web')");
            Assert.Throws<Microsoft.Data.Sqlite.SqliteException>(() =>
                c.Execute("INSERT INTO ec2_ids (aws_id, kind, native_id, created_at) VALUES ('vpc-0123456789abcdef0', 'vpc', 'r', 'now')"));
        }

        var applied = Migrator.Migrate(store, [ec2]);
        Assert.That(applied.Select(a => a.Version), Does.Contain(2));
        using var after = store.Open();
        Assert.That(after.QuerySingle<string>("SELECT value FROM ec2_tags WHERE aws_id = 'sg-0123456789abcdef0' AND key = 'role'"), Is.EqualTo("web"));
        after.Execute("INSERT INTO ec2_ids (aws_id, kind, native_id, created_at) VALUES ('vpc-0123456789abcdef0', 'vpc', 'r', 'now')");
        after.Execute("INSERT INTO ec2_ids (aws_id, kind, native_id, created_at) VALUES ('subnet-0123456789abcdef0', 'subnet', '1', 'now')");
        Assert.Throws<Microsoft.Data.Sqlite.SqliteException>(() =>
            after.Execute("INSERT INTO ec2_tags (aws_id, key, value) VALUES ('sg-fffffffffffffffff', 'k', 'v')"), "tags still reference ec2_ids");
        after.Execute("DELETE FROM ec2_ids WHERE aws_id = 'sg-0123456789abcdef0'");
        Assert.That(after.QuerySingle<long>("SELECT COUNT(*) FROM ec2_tags"), Is.EqualTo(0), "deleting an id still deletes its tags");
        Assert.That(after.QuerySingle<long>("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_new'"), Is.EqualTo(0));
        Assert.That(after.QuerySingle<long>("SELECT COUNT(*) FROM sqlite_master WHERE name = 'ec2_tags_key'"), Is.EqualTo(1));
    }
}
