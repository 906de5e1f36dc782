using System.Security.Claims;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Resolves API tokens (by hash) and passwords to principals; a disabled user's are refused (<see cref="AccountDisabledException"/>).</summary>
internal sealed class CredentialValidator(IdentityStore store, TimeProvider clock, PasswordThrottle throttle, LdapAuthenticator ldap,
    LdapBindCache ldapCache, ILogger<CredentialValidator> log) : ICredentialValidator
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
        // Local users (any user not created by an LDAP sign-in) are checked locally only, LDAP or not: a directory
        // entry can never take over a local account of the same name.
        if (row is not null && (row.PasswordHash is not null || !ldap.Enabled || !await store.IsLdapUserAsync(row.Id)))
        {
            if (!Secrets.VerifyPassword(password, row.PasswordHash))
            {
                throttle.Failed(user);
                return null;
            }
            throttle.Succeeded(user);
            return await PrincipalAsync(row);
        }
        if (!ldap.Enabled)
        {
            throttle.Failed(user);
            return null;
        }
        var userId = await LdapSignInAsync(user, password, row?.Id, ct);
        if (userId is null)
        {
            throttle.Failed(user);
            return null;
        }
        throttle.Succeeded(user);
        return await PrincipalForAsync(userId.Value);
    }

    /// <summary>
    /// Binds as the user (or answers from the short-lived cache of successful binds); on success creates or refreshes
    /// the local record (no local password, role user, groups = the directory groups that exist locally).
    /// </summary>
    async Task<long?> LdapSignInAsync(string user, string password, long? localId, CancellationToken ct)
    {
        // A deleted user is not resurrected from the cache; a cached user whose groups are due goes to the directory.
        var cached = ldapCache.Lookup(user, password) is { } hit && hit == localId ? hit : (long?)null;
        DateTimeOffset? synced = cached is { } known ? await store.LdapSyncedAtAsync(known) : null;
        if (cached is not null && synced is { } at && clock.GetUtcNow() - at < TimeSpan.FromSeconds(ldap.Options.GroupRefreshSeconds))
            return cached;
        var result = await ldap.CheckAsync(user, password, ct);
        if (!result.Ok)
        {
            if (cached is { } still && result.DirectoryDown)
            {
                log.LogInformation("LDAP sign-in of {User} answered from the bind cache: the directory is down ({Reason}); groups kept from {Synced:O}",
                    user, result.Reason, synced);
                return still;
            }
            if (cached is not null) ldapCache.Forget(user);
            log.LogInformation("LDAP sign-in of {User} refused: {Reason}", user, result.Reason);
            return null;
        }
        try { Validate.Name(user, "user"); }
        catch (InvalidInputException)
        {
            log.LogWarning("LDAP sign-in of {User} refused: the directory accepted it but it is not a valid local user name", user);
            return null;
        }
        var userId = await store.Store.WriteAsync(async (c, tx) =>
        {
            var existing = await store.FindUserAsync(user, c, tx);
            if (existing is not null && (existing.PasswordHash is not null || !await store.IsLdapUserAsync(existing.Id, c, tx)))
                return (long?)null;   // a local user of that name appeared meanwhile: it keeps its account
            var id = existing?.Id ?? await store.InsertUserAsync(c, tx, user, null, IdentityClaims.UserRole, 1);
            await store.MarkLdapUserAsync(c, tx, id, result.Dn!);
            var groupIds = new List<long>();
            foreach (var cn in result.Groups)
                if (await store.FindGroupAsync(cn, c, tx) is { } g) groupIds.Add(g.Id);
            await store.SetGroupsAsync(c, tx, id, groupIds);
            return (long?)id;
        });
        if (userId is { } found) ldapCache.Remember(user, password, found);
        return userId;
    }

    public async Task<ClaimsPrincipal?> CurrentPrincipalAsync(long userId, CancellationToken ct) =>
        await store.FindUserAsync(userId) is { } user ? await PrincipalAsync(user) : null;

    /// <summary>The principal of a user by id (for credentials that are not tokens: access keys).</summary>
    public async Task<ClaimsPrincipal> PrincipalForAsync(long userId) =>
        await PrincipalAsync(await store.FindUserAsync(userId) ?? throw new InvalidOperationException($"user {userId} vanished"));

    /// <summary>Every credential ends here, so a disabled account is refused once for all doors (after its secret was checked).</summary>
    async Task<ClaimsPrincipal> PrincipalAsync(UserRow user)
    {
        if (user.DisabledAt is { } since) throw new AccountDisabledException(user.Name, since);
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
