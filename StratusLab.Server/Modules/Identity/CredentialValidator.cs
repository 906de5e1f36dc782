using System.Security.Claims;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Resolves API tokens (by hash) and passwords to principals.</summary>
internal sealed class CredentialValidator(IdentityStore store, TimeProvider clock, PasswordThrottle throttle) : ICredentialValidator
{
    public async Task<ClaimsPrincipal?> ValidateTokenAsync(string token, CancellationToken ct)
    {
        if (!token.StartsWith(Secrets.TokenPrefix, StringComparison.Ordinal) || token.Length > 200) return null;
        var found = await store.FindByTokenHashAsync(TokenHash.Of(token));
        if (found is not { } pair) return null;
        var now = clock.GetUtcNow();
        if (pair.Token.RevokedAt is not null || pair.Token.ExpiresAt is { } expires && expires <= now) return null;
        return await PrincipalAsync(pair.User);
    }

    public async Task<ClaimsPrincipal?> ValidatePasswordAsync(string user, string password, CancellationToken ct)
    {
        if (user.Length > 63 || password.Length > 1024) return null;
        var wait = throttle.DelayFor(user);
        if (wait > TimeSpan.Zero) await Task.Delay(wait, clock, ct);
        var row = await store.FindUserAsync(user);
        if (row is null || !Secrets.VerifyPassword(password, row.PasswordHash))
        {
            throttle.Failed(user);
            return null;
        }
        throttle.Succeeded(user);
        return await PrincipalAsync(row);
    }

    /// <summary>The principal of a user by id (for credentials that are not tokens: access keys).</summary>
    public async Task<ClaimsPrincipal> PrincipalForAsync(long userId) =>
        await PrincipalAsync(await store.FindUserAsync(userId) ?? throw new InvalidOperationException($"user {userId} vanished"));

    async Task<ClaimsPrincipal> PrincipalAsync(UserRow user)
    {
        var claims = new List<Claim>
        {
            new(IdentityClaims.UserId, user.Id.ToString()),
            new(IdentityClaims.Name, user.Name),
            new(IdentityClaims.Role, user.Role),
            new(IdentityClaims.PrimaryGroup, user.PrimaryGroup.ToString()),
        };
        foreach (var group in await store.GroupIdsOfAsync(user.Id))
            claims.Add(new Claim(IdentityClaims.Group, group.ToString()));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, "Bearer", IdentityClaims.Name, IdentityClaims.Role));
    }
}
