using Microsoft.Extensions.Logging.Abstractions;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>
/// Identity's local administration of a data dir, for 'stratuslab admin': works on the store directly, with or
/// without a running server. The store must already be migrated.
/// </summary>
public static class IdentityAdmin
{
    /// <summary>
    /// Issues a new API token for the user 'admin', named <paramref name="name"/>, and (re)writes
    /// <see cref="ServerOptions.AdminTokenPath"/> with it (mode 0600). Returns the token.
    /// Throws <see cref="InvalidOperationException"/> when the store has no 'admin' user.
    /// </summary>
    public static Task<string> IssueAdminTokenAsync(Store store, ServerOptions options, string name) =>
        new IdentityBootstrap(new IdentityStore(store), options, NullLogger<IdentityBootstrap>.Instance).IssueAdminTokenAsync(name);
}
