using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Cli;

/// <summary>'stratuslab admin': local operations on a data dir, with or without a running server.</summary>
public static class AdminCli
{
    public static readonly IReadOnlyList<ClientCommand> Commands =
    [
        new("backup", "FILE [--data-dir DIR]", "online backup of the store into FILE (safe while the server runs)", Backup)
            { Example = "stratuslab admin backup /srv/backups/stratuslab-$(date +%F).db" },
        new("check", "[--repair] [--data-dir DIR]", "integrity and foreign-key check of the store, and quota usage against what instances and volumes hold; --repair (server stopped) recomputes drifted usage", Check)
            { Example = "stratuslab admin check --data-dir /srv/stratuslab" },
        new("migrate", "[--data-dir DIR]", "apply pending schema migrations", Migrate) { Example = "stratuslab admin migrate" },
        new("admin-token", "[--data-dir DIR]", "issue a new token for 'admin' and rewrite <data-dir>/admin.token", AdminToken) { Example = "stratuslab admin admin-token" },
    ];

    /// <summary>Runs 'stratuslab admin ARGS' (kept for callers that hold the admin words only).</summary>
    public static Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null) =>
        ClientCli.RunAsync(["admin", .. args], output, error);

    static (string DataDir, string DbPath, Store Store) Open(CliContext cx)
    {
        var dataDir = ServerConfiguration.ResolveDataDir(cx.Args.Option("--data-dir") ?? Environment.GetEnvironmentVariable("STRATUSLAB__DataDir") ?? "");
        var dbPath = Path.Combine(dataDir, "stratuslab.db");
        return (dataDir, dbPath, new Store(dbPath, 10_000));
    }

    static Task<int> Backup(CliContext cx) => Guarded(() =>
    {
        var (_, dbPath, store) = Open(cx);
        var target = cx.Args.Positional(0, "the backup file name");
        RequireDatabase(dbPath);
        StoreMaintenance.Backup(store, target);
        cx.Out.WriteLine($"backed up {dbPath} to {Path.GetFullPath(target)}");
        return Task.FromResult(0);
    });

    static Task<int> Check(CliContext cx) => Guarded(async () =>
    {
        var (dataDir, dbPath, store) = Open(cx);
        RequireDatabase(dbPath);
        var repair = cx.Args.Has("--repair");
        // A running server reserves and releases quota as it goes: repairing under it could undo its work.
        using var serverLock = repair ? LockStoppedServer(dataDir) : null;
        var result = StoreMaintenance.Check(store);
        var drifts = result.Ok ? await QuotaAudit.CheckAsync(store, [ComputeQuota.Holder, PdiskQuota.Holder], repair) : [];
        var problems = result.Problems.Concat(drifts.Select(d => d + (repair ? " (repaired)" : ""))).ToList();
        var ok = result.Ok && (drifts.Count == 0 || repair);
        if (cx.Json)
            cx.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(result with { Ok = ok, Problems = problems }, ApiClient.Json));
        else if (problems.Count == 0)
            cx.Out.WriteLine($"ok: {dbPath} (schema versions {string.Join(", ", result.SchemaVersions.Select(v => $"{v.Key} {v.Value}"))}) passed the integrity, foreign-key and quota usage checks");
        else
        {
            foreach (var p in problems) cx.Out.WriteLine(p);
            if (drifts.Count > 0 && !repair)
                cx.Out.WriteLine("quota usage drifted: run 'stratuslab admin check --repair' with the server stopped, or restart the server (it recomputes usage at start-up)");
        }
        return ok ? 0 : 1;
    });

    static Task<int> Migrate(CliContext cx) => Guarded(() =>
    {
        var (dataDir, _, store) = Open(cx);
        Directory.CreateDirectory(dataDir);
        var applied = Migrator.Migrate(store, Program.StoreSchemas());
        cx.Out.WriteLine(applied.Count == 0 ? "the store is up to date" : $"applied migration(s) {string.Join(", ", applied)}");
        return Task.FromResult(0);
    });

    static Task<int> AdminToken(CliContext cx) => Guarded(async () =>
    {
        var (dataDir, dbPath, store) = Open(cx);
        RequireDatabase(dbPath);
        Migrator.Migrate(store, Program.StoreSchemas());
        DapperTypes.Register();
        var options = new ServerOptions { DataDir = dataDir };
        var token = await IdentityAdmin.IssueAdminTokenAsync(store, options, "issued by 'stratuslab admin admin-token'");
        cx.Out.WriteLine($"wrote a new admin token to {options.AdminTokenPath}");
        return token.Length > 0 ? 0 : 1;
    });

    static async Task<int> Guarded(Func<Task<int>> run)
    {
        try { return await run(); }
        catch (Exception e) when (e is IOException or StoreTooNewException or Microsoft.Data.Sqlite.SqliteException)
        {
            throw new CliException(e.Message);
        }
    }

    static FileStream LockStoppedServer(string dataDir)
    {
        try { return DataDirectory.Lock(new ServerOptions { DataDir = dataDir }); }
        catch (DataDirectoryException)
        {
            throw new CliException($"a server is running on {dataDir}; stop it before 'check --repair' (or just restart it: it recomputes quota usage at start-up).");
        }
    }

    static void RequireDatabase(string path)
    {
        if (!File.Exists(path))
            throw new CliException($"there is no store at {path}; pass --data-dir, or start 'stratuslab serve' once to create it.");
    }
}
