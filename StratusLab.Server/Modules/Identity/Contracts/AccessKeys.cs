using System.Security.Claims;

namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>A new access key: the secret is shown only here.</summary>
public sealed record AccessKeyCreated(string AccessKeyId, string SecretAccessKey, string User, DateTimeOffset CreatedAt);

/// <summary>An access key as lists show it (never the secret).</summary>
public sealed record AccessKeyView(string AccessKeyId, string User, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt);

/// <summary>What a signature check needs: the key's secret and the principal of its user.</summary>
public sealed record AccessKeySecret(string SecretAccessKey, ClaimsPrincipal Principal);

/// <summary>
/// Per-user access keys for signed requests (EC2 Signature V4). A user manages their own keys, an admin anyone's;
/// another user's keys are not found.
/// </summary>
public interface IAccessKeys
{
    Task<AccessKeyCreated> CreateAsync(Caller caller, string user, CancellationToken ct);
    Task<IReadOnlyList<AccessKeyView>> ListAsync(Caller caller, string user, CancellationToken ct);
    Task DeleteAsync(Caller caller, string user, string accessKeyId, CancellationToken ct);

    /// <summary>The secret and principal behind an access key id, or null for an unknown key.</summary>
    Task<AccessKeySecret?> FindAsync(string accessKeyId, CancellationToken ct);
}
