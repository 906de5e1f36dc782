namespace StratusLab.Server.Modules.Identity.Contracts;

// The REST API's records of /api/v1/users, /groups and /tokens: the server returns them and the CLI reads them.

/// <summary>
/// A user as the API shows it. <c>source</c> is <c>ldap</c> for a user made by a directory sign-in (Identity:Ldap: no
/// local password, groups from the directory, last refreshed at <c>directorySyncedAt</c>), else <c>local</c>.
/// <c>disabledAt</c> is set while an administrator has disabled the account (every credential of it is refused).
/// </summary>
public sealed record UserView(long Id, string Name, string Role, string PrimaryGroup, IReadOnlyList<string> Groups, DateTimeOffset CreatedAt,
    string Source = UserSources.Local, DateTimeOffset? DirectorySyncedAt = null, DateTimeOffset? DisabledAt = null);

/// <summary>Where a user's password is checked: here, or in the LDAP directory.</summary>
public static class UserSources
{
    public const string Local = "local", Ldap = "ldap";
}
/// <summary>Body of POST /users.</summary>
public sealed record CreateUserRequest(string Name, string? Password = null, string? Role = null, IReadOnlyList<string>? Groups = null);
/// <summary>Body of PUT /users/{name}; absent fields are left as they are.</summary>
public sealed record UpdateUserRequest(string? Password = null, string? Role = null, IReadOnlyList<string>? Groups = null);
/// <summary>A group as the API shows it.</summary>
public sealed record GroupView(long Id, string Name, DateTimeOffset CreatedAt);
/// <summary>Body of POST /groups.</summary>
public sealed record CreateGroupRequest(string Name);
/// <summary>Body of POST /tokens; an admin may name another user.</summary>
public sealed record CreateTokenRequest(string? User = null, DateTimeOffset? ExpiresAt = null, string? Name = null);
/// <summary>A new token: the secret is shown only in this response.</summary>
public sealed record TokenCreated(string Id, string Token, string User, string? Name, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);
/// <summary>A token as lists show it (never the secret).</summary>
public sealed record TokenView(string Id, string User, string? Name, string State, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt);
/// <summary>Body of POST /quotas/{user}: each limit, -1 for unlimited, null for the site default.</summary>
public sealed record SetQuotaRequest(long? Vms = null, long? Cpus = null, long? MemoryMiB = null, long? StorageGiB = null);
