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

    static readonly IReadOnlyList<ModuleSchema> Schemas = Program.StoreSchemas();

    /// <summary>The global migrations 0001..0007 exactly as the last binary before per-module versions shipped them.</summary>
    static IEnumerable<(int Version, string Sql)> LegacyMigrations() =>
        Directory.GetFiles(Path.Combine(TestContext.CurrentContext.TestDirectory, "Platform", "LegacyMigrations"), "*.sql")
            .Select(f => (int.Parse(Path.GetFileName(f)[..4]), File.ReadAllText(f)))
            .OrderBy(m => m.Item1);

    /// <summary>A store as an old binary left it at global schema version <paramref name="userVersion"/>.</summary>
    void CreateLegacyStore(Store store, int userVersion)
    {
        using var c = store.Open();
        c.Execute("PRAGMA journal_mode = WAL;");
        foreach (var (version, sql) in LegacyMigrations().Where(m => m.Version <= userVersion))
        {
            using var tx = c.BeginTransaction();
            c.Execute(sql, transaction: tx);
            c.Execute($"PRAGMA user_version = {version};", transaction: tx);
            tx.Commit();
        }
    }

    /// <summary>Every table, index and column of a store, to compare two schemas.</summary>
    static string SchemaOf(Store store)
    {
        using var c = store.Open();
        var lines = new List<string>();
        foreach (var (type, name, table) in c.Query<(string, string, string)>(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name <> 'platform_schema' ORDER BY type, name"))
        {
            lines.Add($"{type} {name} on {table}");
            if (type == "table")
                lines.AddRange(c.Query<(long, string, string, long, string?, long)>($"PRAGMA table_info('{name}')")
                    .Select(col => $"  {name}.{col.Item2} {col.Item3} notnull={col.Item4} default={col.Item5} pk={col.Item6}"));
            if (type == "index")
                lines.AddRange(c.Query<(long, long, string?)>($"PRAGMA index_info('{name}')").Select(col => $"  {name}: {col.Item3}"));
        }
        return string.Join("\n", lines);
    }

    [Test]
    public void Every_module_schema_is_numbered_from_one_without_gaps()
    {
        Assert.That(Schemas, Is.Not.Empty);
        foreach (var schema in Schemas)
            Assert.That(schema.Migrations.Select(m => m.Version), Is.EqualTo(Enumerable.Range(1, schema.LatestVersion)), schema.Module);
    }

    [Test]
    public void Module_schemas_come_in_the_order_Program_registers_the_modules()
    {
        Assert.That(Schemas.Select(s => s.Module),
            Is.EqualTo(new[] { "identity", "marketplace", "images", "compute", "networking", "pdisk", "scheduling", "ec2", "occi", "monitoring", "services" }));
    }

    [Test]
    public void No_module_migration_touches_another_modules_tables()
    {
        var prefixes = new Dictionary<string, string[]>
        {
            ["identity"] = ["id_"], ["marketplace"] = ["mkt_", "policy_"], ["images"] = ["img_"], ["compute"] = ["compute_"],
            ["networking"] = ["net_"], ["pdisk"] = ["pdisk_"], ["scheduling"] = ["sched_"], ["ec2"] = ["ec2_"], ["occi"] = ["occi_"], ["monitoring"] = ["mon_", "acct_"], ["services"] = ["svc_"],
        };
        var statement = new System.Text.RegularExpressions.Regex(
            @"\b(?:CREATE\s+(?:UNIQUE\s+)?INDEX\s+\w+\s+ON|CREATE\s+(?:VIRTUAL\s+)?TABLE|ALTER\s+TABLE|DROP\s+TABLE|INSERT\s+INTO|UPDATE|DELETE\s+FROM|REFERENCES)\s+(\w+)",
            System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        foreach (var schema in Schemas)
            foreach (var migration in schema.Migrations)
                foreach (System.Text.RegularExpressions.Match m in statement.Matches(migration.Sql))
                {
                    var table = m.Groups[1].Value;
                    // "UPDATE SET", and a trigger's "AFTER UPDATE ON table" (the table follows ON, checked by the trigger's own statements).
                    if (table.Equals("SET", StringComparison.OrdinalIgnoreCase) || table.Equals("ON", StringComparison.OrdinalIgnoreCase)) continue;
                    Assert.That(prefixes[schema.Module].Any(p => table.StartsWith(p, StringComparison.Ordinal)),
                        $"{schema.Module} {migration.Version:D4}_{migration.Name} touches {table}, which is not a {schema.Module} table");
                }
    }

    [Test]
    public void A_new_store_gets_every_migration_once_in_module_order_and_uses_wal()
    {
        var store = NewStore();
        var applied = Migrator.Migrate(store, Schemas);
        Assert.That(applied, Has.Count.EqualTo(Schemas.Sum(s => s.LatestVersion)));
        Assert.That(applied.Select(a => a.Module).Distinct(), Is.EqualTo(Schemas.Select(s => s.Module)), "module by module, in registration order");
        Assert.That(Migrator.Migrate(store, Schemas), Is.Empty);
        using var c = store.Open();
        Assert.That(c.ExecuteScalar<string>("PRAGMA journal_mode"), Is.EqualTo("wal"));
        Assert.That(c.ExecuteScalar<long>("PRAGMA foreign_keys"), Is.EqualTo(1));
        Assert.That(c.ExecuteScalar<long>("PRAGMA user_version"), Is.EqualTo(Migrator.PerModuleUserVersion));
        Assert.That(Migrator.Versions(c), Is.EquivalentTo(Schemas.ToDictionary(s => s.Module, s => s.LatestVersion)));
    }

    [Test]
    public void Migrations_run_module_by_module_in_the_order_given()
    {
        var store = NewStore();
        var first = ModuleSchema.Create("first", [new(1, "a", "CREATE TABLE first_a (x INTEGER);"), new(2, "b", "CREATE TABLE first_b (x INTEGER);")]);
        // Would fail if 'second' ran before 'first': it copies from first's table.
        var second = ModuleSchema.Create("second", [new(1, "a", "CREATE TABLE second_a AS SELECT * FROM first_a;")]);
        Assert.That(Migrator.Migrate(store, [first, second]).Select(a => a.ToString()),
            Is.EqualTo(new[] { "first 0001_a", "first 0002_b", "second 0001_a" }));
    }

    [Test]
    public void A_store_at_the_old_global_version_7_is_adopted_without_running_anything_again_and_keeps_its_data()
    {
        var store = NewStore();
        CreateLegacyStore(store, 7);
        using (var c = store.Open())
        {
            c.Execute("INSERT INTO id_groups (name, created_at) VALUES ('physics', '2026-01-01T00:00:00Z')");
            c.Execute("""
                INSERT INTO compute_instances (name, owner_id, group_id, permissions, state, image, cpu, memory_mib, driver, created_at, updated_at, networks_json)
                VALUES ('old-vm', 1, 1, 384, 'RUNNING', 'ttylinux', 1, 128, 'simulated', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '["default"]')
                """);
        }

        var applied = Migrator.Migrate(store, Schemas);

        // Only what came after the global version 7: the new index migrations, none of the old tables again.
        var legacy = Schemas.ToDictionary(s => s.Module, s => s.VersionAtLegacy(7));
        Assert.That(applied.All(a => a.Version > legacy[a.Module]), Is.True, string.Join(", ", applied));
        using var cc = store.Open();
        Assert.That(cc.ExecuteScalar<long>("SELECT count(*) FROM id_groups WHERE name = 'physics'"), Is.EqualTo(1));
        Assert.That(cc.ExecuteScalar<string>("SELECT networks_json FROM compute_instances WHERE name = 'old-vm'"), Is.EqualTo("[\"default\"]"));
        Assert.That(Migrator.Versions(cc), Is.EquivalentTo(Schemas.ToDictionary(s => s.Module, s => s.LatestVersion)));
        Assert.That(cc.ExecuteScalar<long>("PRAGMA user_version"), Is.EqualTo(Migrator.PerModuleUserVersion));
    }

    [Test]
    public void The_check_of_an_old_store_not_yet_migrated_reports_its_global_version()
    {
        var store = NewStore();
        CreateLegacyStore(store, 7);
        Assert.That(StoreMaintenance.Check(store).SchemaVersions, Is.EquivalentTo(new Dictionary<string, int> { [Migrator.LegacyKey] = 7 }));
    }

    [Test]
    public void An_upgraded_old_store_has_the_same_schema_as_a_new_one()
    {
        var upgraded = NewStore();
        CreateLegacyStore(upgraded, 7);
        Migrator.Migrate(upgraded, Schemas);
        var fresh = new Store(Path.Combine(_dir, "fresh.db"), 5000);
        Migrator.Migrate(fresh, Schemas);
        Assert.That(SchemaOf(upgraded), Is.EqualTo(SchemaOf(fresh)));
    }

    [TestCase(3)]
    [TestCase(5)]
    public void A_store_at_an_older_global_version_gets_only_the_modules_it_lacked(int userVersion)
    {
        var store = NewStore();
        CreateLegacyStore(store, userVersion);
        var applied = Migrator.Migrate(store, Schemas);
        Assert.That(applied.Where(a => a.Version == 1).Select(a => a.Module),
            Is.EquivalentTo(Schemas.Where(s => s.VersionAtLegacy(userVersion) == 0).Select(s => s.Module)));
        var fresh = new Store(Path.Combine(_dir, "fresh.db"), 5000);
        Migrator.Migrate(fresh, Schemas);
        Assert.That(SchemaOf(store), Is.EqualTo(SchemaOf(fresh)));
    }

    [Test]
    public void A_store_whose_module_is_newer_than_the_binary_is_refused_with_a_clear_message()
    {
        var store = NewStore();
        Migrator.Migrate(store, Schemas);
        using (var c = store.Open()) c.Execute("UPDATE platform_schema SET version = version + 5 WHERE module = 'compute'");
        var e = Assert.Throws<StoreTooNewException>(() => Migrator.Migrate(store, Schemas));
        Assert.That(e!.Message, Does.Contain("newer").And.Contain("backup").And.Contain("compute"));
    }

    [Test]
    public void A_store_with_a_module_the_binary_does_not_know_is_refused()
    {
        var store = NewStore();
        Migrator.Migrate(store, Schemas);
        using (var c = store.Open()) c.Execute("INSERT INTO platform_schema (module, version) VALUES ('future', 1)");
        Assert.Throws<StoreTooNewException>(() => Migrator.Migrate(store, Schemas));
    }

    [Test]
    public void A_store_at_an_old_global_version_above_7_is_refused_as_too_new()
    {
        var store = NewStore();
        using (var c = store.Open()) c.Execute("PRAGMA user_version = 8");
        var e = Assert.Throws<StoreTooNewException>(() => Migrator.Migrate(store, Schemas));
        Assert.That(e!.Message, Does.Contain("schema version 8").And.Contain("newer"));
    }

    [Test]
    public void A_failing_migration_leaves_its_module_at_the_previous_version()
    {
        var store = NewStore();
        var schema = ModuleSchema.Create("demo",
        [
            new(1, "ok", "CREATE TABLE demo_t1 (x INTEGER);"),
            new(2, "broken", "CREATE TABLE demo_t2 (x INTEGER); THIS IS NOT SQL;"),
        ]);
        Assert.That(() => Migrator.Migrate(store, [schema]), Throws.Exception);
        using var c = store.Open();
        Assert.That(Migrator.Versions(c)["demo"], Is.EqualTo(1));
        Assert.That(c.ExecuteScalar<long>("SELECT count(*) FROM sqlite_master WHERE name = 'demo_t2'"), Is.EqualTo(0));
    }

    [Test]
    public void Backup_makes_a_consistent_copy_and_check_passes_on_it()
    {
        var store = NewStore();
        Migrator.Migrate(store, Schemas);
        using (var c = store.Open()) c.Execute("INSERT INTO id_groups (name, created_at) VALUES ('physics', '2026-01-01T00:00:00Z')");
        var backup = Path.Combine(_dir, "backup.db");
        StoreMaintenance.Backup(store, backup);
        var copy = new Store(backup, 5000);
        var check = StoreMaintenance.Check(copy);
        Assert.That(check.Ok, Is.True);
        Assert.That(check.SchemaVersions, Is.EquivalentTo(Schemas.ToDictionary(s => s.Module, s => s.LatestVersion)));
        using var cc = copy.Open();
        Assert.That(cc.ExecuteScalar<long>("SELECT count(*) FROM id_groups WHERE name = 'physics'"), Is.EqualTo(1));
        Assert.Throws<IOException>(() => StoreMaintenance.Backup(store, backup), "an existing file is never overwritten");
    }
}
