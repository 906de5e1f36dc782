using System.Reflection;
using System.Text.RegularExpressions;
using Dapper;
using Microsoft.Data.Sqlite;

namespace StratusLab.Server.Platform.Data;

/// <summary>The database was written by a newer binary; refusing to start protects it.</summary>
public sealed class StoreTooNewException(string message) : Exception(message);

/// <summary>Applies the numbered embedded migrations (migrations/NNNN_name.sql) against PRAGMA user_version.</summary>
public static partial class Migrator
{
    public sealed record Migration(int Version, string Name, string Sql);

    public static IReadOnlyList<Migration> Embedded()
    {
        var assembly = Assembly.GetExecutingAssembly();
        var list = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            var match = MigrationName().Match(resource);
            if (!match.Success) continue;
            using var reader = new StreamReader(assembly.GetManifestResourceStream(resource)!);
            list.Add(new Migration(int.Parse(match.Groups[1].Value), match.Groups[2].Value, reader.ReadToEnd()));
        }
        list.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < list.Count; i++)
            if (list[i].Version != i + 1)
                throw new InvalidOperationException($"embedded migrations are not numbered 1..N: found {list[i].Version} at position {i + 1}");
        return list;
    }

    public static int LatestVersion => Embedded().Count;

    /// <summary>Brings the store to the newest schema. Returns the versions applied.</summary>
    public static IReadOnlyList<int> Migrate(Store store, IReadOnlyList<Migration>? migrations = null)
    {
        migrations ??= Embedded();
        Directory.CreateDirectory(Path.GetDirectoryName(store.DatabasePath)!);
        using var connection = store.Open();
        connection.Execute("PRAGMA journal_mode = WAL;");
        var current = connection.ExecuteScalar<int>("PRAGMA user_version;");
        var latest = migrations.Count == 0 ? 0 : migrations[^1].Version;
        if (current > latest)
            throw new StoreTooNewException(
                $"the database {store.DatabasePath} has schema version {current}, but this stratuslab binary knows only up to {latest}. " +
                "It was written by a newer version: run that version (or newer), or restore a backup made with 'stratuslab admin backup'.");
        var applied = new List<int>();
        foreach (var migration in migrations.Where(m => m.Version > current))
        {
            using var tx = connection.BeginTransaction();
            connection.Execute(migration.Sql, transaction: tx);
            connection.Execute($"PRAGMA user_version = {migration.Version};", transaction: tx);
            tx.Commit();
            applied.Add(migration.Version);
        }
        return applied;
    }

    public static int CurrentVersion(SqliteConnection connection) => connection.ExecuteScalar<int>("PRAGMA user_version;");

    [GeneratedRegex(@"^migrations/(\d{4})_([a-z0-9_]+)\.sql$")]
    private static partial Regex MigrationName();
}
