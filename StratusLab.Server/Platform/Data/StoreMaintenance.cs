using Dapper;
using Microsoft.Data.Sqlite;

namespace StratusLab.Server.Platform.Data;

/// <summary>Online backup and integrity check; both safe while the server runs (WAL readers do not block).</summary>
public static class StoreMaintenance
{
    public static void Backup(Store store, string destination)
    {
        var full = Path.GetFullPath(destination);
        if (File.Exists(full))
            throw new IOException($"{full} already exists; choose a new file name for the backup.");
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        using var source = store.Open();
        using var target = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = full, Pooling = false }.ToString());
        target.Open();
        source.BackupDatabase(target);
    }

    /// <summary>The check's verdict; <see cref="SchemaVersions"/> is each module's schema version.</summary>
    public sealed record CheckResult(bool Ok, IReadOnlyDictionary<string, int> SchemaVersions, IReadOnlyList<string> Problems);

    public static CheckResult Check(Store store)
    {
        using var connection = store.Open();
        var problems = new List<string>();
        foreach (var line in connection.Query<string>("PRAGMA integrity_check;"))
            if (line != "ok") problems.Add("integrity: " + line);
        foreach (var row in connection.Query("PRAGMA foreign_key_check;"))
        {
            var r = (IDictionary<string, object>)row;
            problems.Add($"foreign key: table {r["table"]} rowid {r["rowid"]} references missing {r["parent"]}");
        }
        return new CheckResult(problems.Count == 0, Migrator.Versions(connection), problems);
    }
}
