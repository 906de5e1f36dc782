using System.Security.Cryptography;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Access keys: ids shaped like AWS's (20 upper-case characters), 40-character secrets sealed at rest.</summary>
internal sealed class AccessKeys(IdentityStore store, SecretBox box, CredentialValidator principals, TimeProvider clock) : IAccessKeys
{
    public const int MaxKeysPerUser = 10;
    const string IdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const string SecretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    public async Task<AccessKeyCreated> CreateAsync(Caller caller, string user, CancellationToken ct)
    {
        var owner = await VisibleUserAsync(caller, user);
        var id = "SLAK" + RandomNumberGenerator.GetString(IdAlphabet, 16);
        var secret = RandomNumberGenerator.GetString(SecretAlphabet, 40);
        var now = clock.GetUtcNow();
        await store.Store.WriteAsync(async (c, tx) =>
        {
            if (await store.CountAccessKeysAsync(c, tx, owner.Id) >= MaxKeysPerUser)
                throw new ConflictException($"User '{owner.Name}' already has {MaxKeysPerUser} access keys; delete one first ('stratuslab access-key-delete ID').");
            await store.InsertAccessKeyAsync(c, tx, id, owner.Id, box.Seal(secret), now);
        });
        return new AccessKeyCreated(id, secret, owner.Name, now);
    }

    public async Task<IReadOnlyList<AccessKeyView>> ListAsync(Caller caller, string user, CancellationToken ct)
    {
        var owner = await VisibleUserAsync(caller, user);
        return (await store.ListAccessKeysAsync(owner.Id)).Select(k => new AccessKeyView(k.Id, owner.Name, k.CreatedAt, k.LastUsedAt)).ToList();
    }

    public async Task DeleteAsync(Caller caller, string user, string accessKeyId, CancellationToken ct)
    {
        var owner = await VisibleUserAsync(caller, user);
        if (!await store.DeleteAccessKeyAsync(owner.Id, accessKeyId))
            throw new NotFoundException($"Access key '{accessKeyId}' of user '{owner.Name}'");
    }

    public async Task<AccessKeySecret?> FindAsync(string accessKeyId, CancellationToken ct)
    {
        if (accessKeyId.Length is < 16 or > 128) return null;
        if (await store.FindAccessKeyAsync(accessKeyId) is not { } key) return null;
        string secret;
        try { secret = box.Open(key.SecretSealed); }
        catch (CryptographicException) { return null; } // sealed under another server key: the key is unusable
        // Recorded once a minute at most: a write transaction per signed request would cost more than the request.
        var now = clock.GetUtcNow();
        if (key.LastUsedAt is not { } last || now - last >= TimeSpan.FromMinutes(1)) await store.TouchAccessKeyAsync(accessKeyId, now);
        return new AccessKeySecret(secret, await principals.PrincipalForAsync(key.UserId));
    }

    async Task<UserRow> VisibleUserAsync(Caller caller, string user)
    {
        var row = await store.FindUserAsync(user);
        if (row is null || !caller.IsAdmin && row.Id != caller.UserId) throw new NotFoundException($"User '{user}'");
        return row;
    }
}
