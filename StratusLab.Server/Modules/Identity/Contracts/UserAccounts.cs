namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>A user as administration shows it; <see cref="DisabledAt"/> is set while an administrator has disabled the account.</summary>
public sealed record UserAccount(long Id, string Name, string Role, string PrimaryGroup, IReadOnlyList<string> Groups, DateTimeOffset CreatedAt,
    string Source = UserSources.Local, DateTimeOffset? DirectorySyncedAt = null, DateTimeOffset? DisabledAt = null);

/// <summary>A user to create: role 'user' by default; no password means the user signs in with tokens only (or LDAP).</summary>
public sealed record NewUser(string Name, string? Password = null, string? Role = null, IReadOnlyList<string>? Groups = null);

/// <summary>A group of users.</summary>
public sealed record GroupInfo(long Id, string Name, DateTimeOffset CreatedAt);

/// <summary>An API token as lists show it (never the secret). <see cref="State"/> is active, expired or revoked.</summary>
public sealed record TokenInfo(string Id, string User, string? Name, string State, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt);

/// <summary>A user's quota limits to set: each -1 for unlimited, null for the site default.</summary>
public sealed record QuotaLimits(long? Vms = null, long? Cpus = null, long? MemoryMiB = null, long? StorageGiB = null);

/// <summary>
/// Identity's application service for users, groups, tokens and quotas: the REST API and the dashboard's admin pages
/// both go through it, so its permission checks and validation are the only ones.
/// </summary>
public interface IUserAccounts
{
    /// <summary>Every user for an administrator; only the caller for anyone else.</summary>
    Task<IReadOnlyList<UserAccount>> ListUsersAsync(Caller caller, int limit = 100, int offset = 0, CancellationToken ct = default);

    /// <summary>Administrators only (403); 409 when the name is taken, 400 naming the field when a value is not accepted.</summary>
    Task<UserAccount> CreateUserAsync(Caller caller, NewUser user, CancellationToken ct = default);

    Task<IReadOnlyList<GroupInfo>> ListGroupsAsync(int limit = 100, int offset = 0, CancellationToken ct = default);

    /// <summary>Administrators only (403); 409 when the name is taken.</summary>
    Task<GroupInfo> CreateGroupAsync(Caller caller, string name, CancellationToken ct = default);

    /// <summary>
    /// An administrator sees every token (or one user's with <paramref name="user"/>); anyone else only their own
    /// (another user's name is 404).
    /// </summary>
    Task<IReadOnlyList<TokenInfo>> ListTokensAsync(Caller caller, string? user = null, int limit = 100, int offset = 0, CancellationToken ct = default);

    /// <summary>Revokes a token of the caller's (any token for an administrator); another user's token is 404.</summary>
    Task RevokeTokenAsync(Caller caller, string id, CancellationToken ct = default);

    /// <summary>
    /// Disables or enables a user; administrators only (403), 404 for an unknown user, 409 for the caller's own account.
    /// While disabled, every credential of the user is refused (passwords, tokens, access keys, dashboard sessions at their
    /// next request); nothing of theirs is deleted, and enabling restores them all. Idempotent.
    /// </summary>
    Task<UserAccount> SetDisabledAsync(Caller caller, string user, bool disabled, CancellationToken ct = default);

    /// <summary>Every user's limits and usage; administrators only (403).</summary>
    Task<IReadOnlyList<QuotaView>> ListQuotasAsync(Caller caller, int limit = 100, int offset = 0, CancellationToken ct = default);

    /// <summary>Sets a user's limits; administrators only (403), 404 for an unknown user, 400 naming the field for a limit below -1.</summary>
    Task<QuotaView> SetQuotaAsync(Caller caller, string user, QuotaLimits limits, CancellationToken ct = default);
}
