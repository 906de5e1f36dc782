using Dapper;
using Microsoft.Data.Sqlite;

namespace StratusLab.Server.Platform.Data;

/// <summary>The database was written by a newer binary; refusing to start protects it.</summary>
public sealed class StoreTooNewException(string message) : Exception(message);

/// <summary>One migration the migrator applied.</summary>
public sealed record AppliedMigration(string Module, int Version, string Name)
{
    public override string ToString() => $"{Module} {Version:D4}_{Name}";
}

/// <summary>
/// Brings the store to the schema of every registered module. Each module's version is kept in
/// <c>platform_schema (module, version)</c>; the schemas are applied in registration order, each migration in its own
/// transaction together with its version row, so a failing migration leaves the module at its previous version.
/// A store from before per-module versions (its schema version in PRAGMA user_version, 1..7) is adopted: every
/// module is recorded at the version that store already has, and nothing is run again.
/// </summary>
public static class Migrator
{
    /// <summary>
    /// PRAGMA user_version of a store with per-module versions. Above every old global version, so a binary from
    /// before per-module versions refuses the store as "written by a newer version" instead of migrating it again.
    /// </summary>
    public const int PerModuleUserVersion = 100;

    /// <summary>The key <see cref="Versions"/> reports the old global version under, for a store not migrated since.</summary>
    public const string LegacyKey = "global (before per-module versions)";

    /// <summary>Brings the store to the newest schema of every module, in the order given. Returns the migrations applied.</summary>
    public static IReadOnlyList<AppliedMigration> Migrate(Store store, IEnumerable<ModuleSchema> schemas)
    {
        var ordered = schemas.ToList();
        var duplicate = ordered.GroupBy(s => s.Module).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new InvalidOperationException($"module '{duplicate.Key}' registers its store schema twice");

        Directory.CreateDirectory(Path.GetDirectoryName(store.DatabasePath)!);
        using var connection = store.Open();
        connection.Execute("PRAGMA journal_mode = WAL;");
        AdoptLegacyStore(store, connection, ordered);

        var versions = Versions(connection);
        foreach (var (module, version) in versions)
        {
            var known = ordered.FirstOrDefault(s => s.Module == module)?.LatestVersion ?? 0;
            if (version > known) throw TooNew(store, $"{module} schema version {version}", known);
        }

        var applied = new List<AppliedMigration>();
        foreach (var schema in ordered)
        {
            var current = versions.GetValueOrDefault(schema.Module);
            foreach (var migration in schema.Migrations.Where(m => m.Version > current))
            {
                using var tx = connection.BeginTransaction();
                connection.Execute(migration.Sql, transaction: tx);
                connection.Execute("""
                    INSERT INTO platform_schema (module, version) VALUES (@module, @version)
                    ON CONFLICT (module) DO UPDATE SET version = excluded.version
                    """, new { module = schema.Module, version = migration.Version }, tx);
                tx.Commit();
                applied.Add(new AppliedMigration(schema.Module, migration.Version, migration.Name));
            }
        }
        return applied;
    }

    /// <summary>
    /// Each module's schema version in the store; empty for a new store, and for a store from before per-module
    /// versions its old global version under the key <see cref="LegacyKey"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, int> Versions(SqliteConnection connection)
    {
        if (!HasSchemaTable(connection))
        {
            var userVersion = connection.ExecuteScalar<int>("PRAGMA user_version;");
            return userVersion == 0 ? new Dictionary<string, int>() : new Dictionary<string, int> { [LegacyKey] = userVersion };
        }
        return connection.Query<(string Module, int Version)>("SELECT module, version FROM platform_schema ORDER BY module")
            .ToDictionary(r => r.Module, r => r.Version, StringComparer.Ordinal);
    }

    /// <summary>Creates platform_schema; in a store at an old global user_version, records each module at the version it already has.</summary>
    static void AdoptLegacyStore(Store store, SqliteConnection connection, IReadOnlyList<ModuleSchema> schemas)
    {
        if (HasSchemaTable(connection)) return;
        var userVersion = connection.ExecuteScalar<int>("PRAGMA user_version;");
        var legacyLatest = schemas.SelectMany(s => s.LegacyUserVersions).DefaultIfEmpty(0).Max();
        if (userVersion > legacyLatest) throw TooNew(store, $"schema version {userVersion}", legacyLatest);
        using var tx = connection.BeginTransaction();
        connection.Execute("""
            CREATE TABLE platform_schema (
                module   TEXT PRIMARY KEY,
                version  INTEGER NOT NULL CHECK (version >= 0)
            );
            """, transaction: tx);
        foreach (var schema in schemas)
        {
            var version = schema.VersionAtLegacy(userVersion);
            if (version > 0)
                connection.Execute("INSERT INTO platform_schema (module, version) VALUES (@module, @version)",
                    new { module = schema.Module, version }, tx);
        }
        connection.Execute($"PRAGMA user_version = {PerModuleUserVersion};", transaction: tx);
        tx.Commit();
    }

    static bool HasSchemaTable(SqliteConnection connection) =>
        connection.ExecuteScalar<long>("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'platform_schema'") == 1;

    static StoreTooNewException TooNew(Store store, string found, int latest) => new(
        $"the database {store.DatabasePath} has {found}, but this stratuslab binary knows only up to {latest}. " +
        "It was written by a newer version: run that version (or newer), or restore a backup made with 'stratuslab admin backup'.");
}
