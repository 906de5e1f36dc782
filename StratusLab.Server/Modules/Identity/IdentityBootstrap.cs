using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Identity;

/// <summary>First start: creates the 'admin' user and writes its token to &lt;data-dir&gt;/admin.token (0600).</summary>
internal sealed class IdentityBootstrap(IdentityStore store, ServerOptions options, ILogger<IdentityBootstrap> logger)
{
    /// <summary>Returns the new admin token when one was created, else null.</summary>
    public async Task<string?> EnsureAdminAsync()
    {
        var created = await store.Store.WriteAsync(async (c, tx) =>
        {
            if (await store.FindUserAsync("admin", c, tx) is not null) return false;
            await store.InsertUserAsync(c, tx, "admin", null, "admin", 0);
            return true;
        });
        if (!created) return null;
        var token = await IssueAdminTokenAsync("created on first start");
        logger.LogWarning("First start: created user 'admin'. Its token is in {Path} (mode 0600) and shown once here: {Token}",
            options.AdminTokenPath, token);
        return token;
    }

    /// <summary>
    /// At start-up, before any request: stored quota usage is set to what instances and volumes hold, so a crash between
    /// a reservation and its rows (or an older server's drift) does not stay. Each correction is logged.
    /// </summary>
    public async Task RecomputeQuotaUsageAsync(IEnumerable<IQuotaHolder> holders)
    {
        foreach (var drift in await QuotaLedger.AuditAsync(store, holders, repair: true, CancellationToken.None))
            logger.LogWarning("Corrected {Drift}: usage now follows what is held", drift);
    }

    /// <summary>Issues a new admin token and (re)writes admin.token.</summary>
    public async Task<string> IssueAdminTokenAsync(string name)
    {
        var admin = await store.FindUserAsync("admin") ?? throw new InvalidOperationException("there is no 'admin' user");
        var token = Secrets.NewToken();
        await store.InsertTokenAsync(Secrets.NewId(), admin.Id, TokenHash.Of(token), name, null);
        WriteTokenFile(options.AdminTokenPath, token);
        return token;
    }

    static void WriteTokenFile(string path, string token)
    {
        var temp = path + ".tmp";
        File.Delete(temp);
        using (var stream = new FileStream(temp, new FileStreamOptions
               {
                   Mode = FileMode.CreateNew, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        using (var writer = new StreamWriter(stream))
            writer.Write(token + "\n");
        File.Move(temp, path, overwrite: true);
    }
}
