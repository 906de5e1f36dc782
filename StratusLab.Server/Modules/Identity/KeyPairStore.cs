using Dapper;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Identity;

/// <summary>The SQL of users' key pairs (table id_key_pairs); the first key of a user becomes the default.</summary>
internal sealed class KeyPairStore(Store store)
{
    const string Columns = "name AS Name, public_key AS PublicKey, fingerprint AS Fingerprint, origin AS Origin, is_default AS IsDefault, created_at AS CreatedAt";

    public async Task<IReadOnlyList<KeyPair>> ListAsync(long userId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<KeyPairRow>($"SELECT {Columns} FROM id_key_pairs WHERE user_id = @userId ORDER BY name", new { userId }))
            .Select(r => r.ToKeyPair()).ToList();
    }

    public async Task<KeyPair?> FindAsync(long userId, string name, CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync();
        return (await c.QuerySingleOrDefaultAsync<KeyPairRow>($"SELECT {Columns} FROM id_key_pairs WHERE user_id = @userId AND name = @name",
            new { userId, name }))?.ToKeyPair();
    }

    public async Task<KeyPair?> DefaultOfAsync(long userId, CancellationToken ct = default)
    {
        await using var c = await store.OpenAsync();
        return (await c.QuerySingleOrDefaultAsync<KeyPairRow>($"SELECT {Columns} FROM id_key_pairs WHERE user_id = @userId AND is_default = 1",
            new { userId }))?.ToKeyPair();
    }

    /// <summary>Adds a key pair; it is the default when asked, or when it is the user's first. False when the name is taken.</summary>
    public Task<bool> InsertAsync(long userId, string name, string publicKey, string fingerprint, string origin, bool makeDefault) =>
        store.WriteAsync(async (c, tx) =>
        {
            if (await c.ExecuteScalarAsync<long>("SELECT count(*) FROM id_key_pairs WHERE user_id = @userId AND name = @name", new { userId, name }, tx) > 0)
                return false;
            var first = await c.ExecuteScalarAsync<long>("SELECT count(*) FROM id_key_pairs WHERE user_id = @userId", new { userId }, tx) == 0;
            if (makeDefault) await c.ExecuteAsync("UPDATE id_key_pairs SET is_default = 0 WHERE user_id = @userId", new { userId }, tx);
            await c.ExecuteAsync("""
                INSERT INTO id_key_pairs (user_id, name, public_key, fingerprint, origin, is_default, created_at)
                VALUES (@userId, @name, @publicKey, @fingerprint, @origin, @isDefault, @now)
                """, new { userId, name, publicKey, fingerprint, origin, isDefault = makeDefault || first ? 1 : 0, now = DateTimeOffset.UtcNow }, tx);
            return true;
        });

    /// <summary>Makes the named key the default. False when the user has no such key.</summary>
    public Task<bool> SetDefaultAsync(long userId, string name) =>
        store.WriteAsync(async (c, tx) =>
        {
            if (await c.ExecuteScalarAsync<long>("SELECT count(*) FROM id_key_pairs WHERE user_id = @userId AND name = @name", new { userId, name }, tx) == 0)
                return false;
            await c.ExecuteAsync("UPDATE id_key_pairs SET is_default = 0 WHERE user_id = @userId", new { userId }, tx);
            await c.ExecuteAsync("UPDATE id_key_pairs SET is_default = 1 WHERE user_id = @userId AND name = @name", new { userId, name }, tx);
            return true;
        });

    /// <summary>Deletes a key pair; when it was the default, the oldest remaining key becomes the default. False when there was none.</summary>
    public Task<bool> DeleteAsync(long userId, string name) =>
        store.WriteAsync(async (c, tx) =>
        {
            if (await c.ExecuteAsync("DELETE FROM id_key_pairs WHERE user_id = @userId AND name = @name", new { userId, name }, tx) == 0)
                return false;
            await c.ExecuteAsync("""
                UPDATE id_key_pairs SET is_default = 1
                WHERE id = (SELECT id FROM id_key_pairs WHERE user_id = @userId ORDER BY created_at, id LIMIT 1)
                  AND NOT EXISTS (SELECT 1 FROM id_key_pairs WHERE user_id = @userId AND is_default = 1)
                """, new { userId }, tx);
            return true;
        });

    sealed record KeyPairRow(string Name, string PublicKey, string Fingerprint, string Origin, long IsDefault, string CreatedAt)
    {
        public KeyPair ToKeyPair() => new(Name, PublicKey, Fingerprint, Origin, IsDefault != 0,
            DateTimeOffset.Parse(CreatedAt, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal));
    }
}
