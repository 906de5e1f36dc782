using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Cli;

/// <summary>'stratuslab admin': local operations on a data dir, with or without a running server.</summary>
public static class AdminCli
{
    const string Usage = """
        usage: stratuslab admin <command> [--data-dir DIR]
          backup FILE      online backup of the store into FILE (safe while the server runs)
          check [--repair] integrity and foreign-key check of the store, and quota usage against what instances
                           and volumes hold; --repair (server stopped) recomputes drifted usage
          migrate          apply pending schema migrations
          admin-token      issue a new token for 'admin' and rewrite <data-dir>/admin.token
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            output.Write(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            var parsed = CliArgs.Parse(args.Skip(1));
            var dataDir = ServerConfiguration.ResolveDataDir(parsed.Option("--data-dir") ?? Environment.GetEnvironmentVariable("STRATUSLAB__DataDir") ?? "");
            var dbPath = Path.Combine(dataDir, "stratuslab.db");
            var store = new Store(dbPath, 10_000);
            switch (args[0])
            {
                case "backup":
                {
                    var target = parsed.Positional(0, "the backup file name");
                    RequireDatabase(dbPath);
                    StoreMaintenance.Backup(store, target);
                    output.WriteLine($"backed up {dbPath} to {Path.GetFullPath(target)}");
                    return 0;
                }
                case "check":
                {
                    RequireDatabase(dbPath);
                    var repair = parsed.Has("--repair");
                    // A running server reserves and releases quota as it goes: repairing under it could undo its work.
                    using var serverLock = repair ? LockStoppedServer(dataDir) : null;
                    var result = StoreMaintenance.Check(store);
                    var drifts = result.Ok ? await QuotaAudit.CheckAsync(store, [ComputeQuota.Holder, PdiskQuota.Holder], repair) : [];
                    var problems = result.Problems.Concat(drifts.Select(d => d + (repair ? " (repaired)" : ""))).ToList();
                    var ok = result.Ok && (drifts.Count == 0 || repair);
                    if (parsed.Has("--json"))
                        output.WriteLine(System.Text.Json.JsonSerializer.Serialize(result with { Ok = ok, Problems = problems }, ApiClient.Json));
                    else if (problems.Count == 0)
                        output.WriteLine($"ok: {dbPath} (schema versions {string.Join(", ", result.SchemaVersions.Select(v => $"{v.Key} {v.Value}"))}) passed the integrity, foreign-key and quota usage checks");
                    else
                    {
                        foreach (var p in problems) output.WriteLine(p);
                        if (drifts.Count > 0 && !repair)
                            output.WriteLine("quota usage drifted: run 'stratuslab admin check --repair' with the server stopped, or restart the server (it recomputes usage at start-up)");
                    }
                    return ok ? 0 : 1;
                }
                case "migrate":
                {
                    Directory.CreateDirectory(dataDir);
                    var applied = Migrator.Migrate(store, Program.StoreSchemas());
                    output.WriteLine(applied.Count == 0 ? "the store is up to date" : $"applied migration(s) {string.Join(", ", applied)}");
                    return 0;
                }
                case "admin-token":
                {
                    RequireDatabase(dbPath);
                    Migrator.Migrate(store, Program.StoreSchemas());
                    DapperTypes.Register();
                    var options = new ServerOptions { DataDir = dataDir };
                    var token = await IdentityAdmin.IssueAdminTokenAsync(store, options, "issued by 'stratuslab admin admin-token'");
                    output.WriteLine($"wrote a new admin token to {options.AdminTokenPath}");
                    return token.Length > 0 ? 0 : 1;
                }
                default:
                    error.Write($"stratuslab admin: unknown command '{args[0]}'.\n{Usage}");
                    return 2;
            }
        }
        catch (UsageException e)
        {
            error.WriteLine($"stratuslab admin {args[0]}: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is CliException or IOException or StoreTooNewException or Microsoft.Data.Sqlite.SqliteException)
        {
            error.WriteLine($"stratuslab admin {args[0]}: {e.Message}");
            return 1;
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
