using System.Data;
using Dapper;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Identity;

internal sealed record UserRow(long Id, string Name, string? PasswordHash, string Role, long PrimaryGroup, DateTimeOffset CreatedAt, DateTimeOffset? DisabledAt);
internal sealed record GroupRow(long Id, string Name, DateTimeOffset CreatedAt);
internal sealed record TokenRow(string Id, long UserId, string UserName, string? Name, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt);
internal sealed record QuotaRow(long UserId, long? Vms, long? Cpus, long? MemoryMib, long? StorageGib);
internal sealed record AccessKeyRow(string Id, long UserId, string SecretSealed, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt);
internal sealed record UsageRow(long Vms, long Cpus, long MemoryMib, long StorageGib);

/// <summary>The Identity module's SQL (tables id_*).</summary>
internal sealed class IdentityStore(Store store)
{
    public Store Store => store;

    const string UserColumns = "id AS Id, name AS Name, password_hash AS PasswordHash, role AS Role, primary_group AS PrimaryGroup, created_at AS CreatedAt, disabled_at AS DisabledAt";

    public async Task<UserRow?> FindUserAsync(string name, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        if (c is not null) return await c.QuerySingleOrDefaultAsync<UserRow>($"SELECT {UserColumns} FROM id_users WHERE name = @name", new { name }, tx);
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<UserRow>($"SELECT {UserColumns} FROM id_users WHERE name = @name", new { name });
    }

    public async Task<UserRow?> FindUserAsync(long id)
    {
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<UserRow>($"SELECT {UserColumns} FROM id_users WHERE id = @id", new { id });
    }

    public Task<UserRow?> FindUserAsync(long id, IDbConnection c, IDbTransaction? tx) =>
        c.QuerySingleOrDefaultAsync<UserRow>($"SELECT {UserColumns} FROM id_users WHERE id = @id", new { id }, tx);

    public async Task<IReadOnlyList<UserRow>> ListUsersAsync(int limit, int offset)
    {
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<UserRow>($"SELECT {UserColumns} FROM id_users ORDER BY id LIMIT @limit OFFSET @offset", new { limit, offset })).AsList();
    }

    public async Task<long> InsertUserAsync(IDbConnection c, IDbTransaction tx, string name, string? passwordHash, string role, long primaryGroup)
    {
        var id = await c.ExecuteScalarAsync<long>("""
            INSERT INTO id_users (name, password_hash, role, primary_group, created_at)
            VALUES (@name, @passwordHash, @role, @primaryGroup, @now) RETURNING id
            """, new { name, passwordHash, role, primaryGroup, now = DateTimeOffset.UtcNow }, tx);
        await c.ExecuteAsync("INSERT INTO id_quota_usage (user_id) VALUES (@id)", new { id }, tx);
        return id;
    }

    public Task UpdateUserAsync(IDbConnection c, IDbTransaction tx, long id, string? passwordHash, string? role) =>
        c.ExecuteAsync("""
            UPDATE id_users SET password_hash = COALESCE(@passwordHash, password_hash), role = COALESCE(@role, role) WHERE id = @id
            """, new { id, passwordHash, role }, tx);

    public Task SetDisabledAsync(IDbConnection c, IDbTransaction tx, long id, DateTimeOffset? disabledAt) =>
        c.ExecuteAsync("UPDATE id_users SET disabled_at = @disabledAt WHERE id = @id", new { id, disabledAt }, tx);

    public Task DeleteUserAsync(IDbConnection c, IDbTransaction tx, long id) =>
        c.ExecuteAsync("DELETE FROM id_users WHERE id = @id", new { id }, tx);

    public Task<long> CountAdminsAsync(IDbConnection c, IDbTransaction tx) =>
        c.ExecuteScalarAsync<long>("SELECT count(*) FROM id_users WHERE role = 'admin'", transaction: tx);

    public async Task<bool> IsLdapUserAsync(long userId, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = "SELECT count(*) FROM id_ldap_users WHERE user_id = @userId";
        if (c is not null) return await c.ExecuteScalarAsync<long>(sql, new { userId }, tx) > 0;
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(sql, new { userId }) > 0;
    }

    /// <summary>When a directory user's groups were last taken from the directory; null for a user not made by LDAP.</summary>
    public async Task<DateTimeOffset?> LdapSyncedAtAsync(long userId)
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteScalarAsync<DateTimeOffset?>("SELECT synced_at FROM id_ldap_users WHERE user_id = @userId", new { userId });
    }

    public Task MarkLdapUserAsync(IDbConnection c, IDbTransaction tx, long userId, string dn) =>
        c.ExecuteAsync("""
            INSERT INTO id_ldap_users (user_id, dn, synced_at) VALUES (@userId, @dn, @now)
            ON CONFLICT (user_id) DO UPDATE SET dn = excluded.dn, synced_at = excluded.synced_at
            """, new { userId, dn, now = DateTimeOffset.UtcNow }, tx);

    public async Task<IReadOnlyList<long>> GroupIdsOfAsync(long userId, IDbConnection? c = null)
    {
        if (c is not null) return (await c.QueryAsync<long>("SELECT group_id FROM id_user_groups WHERE user_id = @userId ORDER BY group_id", new { userId })).AsList();
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<long>("SELECT group_id FROM id_user_groups WHERE user_id = @userId ORDER BY group_id", new { userId })).AsList();
    }

    public async Task<IReadOnlyList<string>> GroupNamesOfAsync(long userId)
    {
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<string>("""
            SELECT g.name FROM id_user_groups ug JOIN id_groups g ON g.id = ug.group_id WHERE ug.user_id = @userId ORDER BY g.name
            """, new { userId })).AsList();
    }

    public async Task SetGroupsAsync(IDbConnection c, IDbTransaction tx, long userId, IEnumerable<long> groupIds)
    {
        await c.ExecuteAsync("DELETE FROM id_user_groups WHERE user_id = @userId", new { userId }, tx);
        foreach (var groupId in groupIds.Distinct())
            await c.ExecuteAsync("INSERT INTO id_user_groups (user_id, group_id) VALUES (@userId, @groupId)", new { userId, groupId }, tx);
    }

    public async Task<GroupRow?> FindGroupAsync(string name, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = "SELECT id AS Id, name AS Name, created_at AS CreatedAt FROM id_groups WHERE name = @name";
        if (c is not null) return await c.QuerySingleOrDefaultAsync<GroupRow>(sql, new { name }, tx);
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<GroupRow>(sql, new { name });
    }

    public async Task<GroupRow?> FindGroupAsync(long id)
    {
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<GroupRow>("SELECT id AS Id, name AS Name, created_at AS CreatedAt FROM id_groups WHERE id = @id", new { id });
    }

    public async Task<IReadOnlyList<GroupRow>> ListGroupsAsync(int limit, int offset)
    {
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<GroupRow>("SELECT id AS Id, name AS Name, created_at AS CreatedAt FROM id_groups ORDER BY id LIMIT @limit OFFSET @offset", new { limit, offset })).AsList();
    }

    public Task<long> InsertGroupAsync(IDbConnection c, IDbTransaction tx, string name) =>
        c.ExecuteScalarAsync<long>("INSERT INTO id_groups (name, created_at) VALUES (@name, @now) RETURNING id", new { name, now = DateTimeOffset.UtcNow }, tx);

    public Task<long> CountGroupUsersAsync(IDbConnection c, IDbTransaction tx, long groupId) =>
        c.ExecuteScalarAsync<long>("""
            SELECT (SELECT count(*) FROM id_users WHERE primary_group = @groupId) + (SELECT count(*) FROM id_user_groups WHERE group_id = @groupId)
            """, new { groupId }, tx);

    public Task DeleteGroupAsync(IDbConnection c, IDbTransaction tx, long id) =>
        c.ExecuteAsync("DELETE FROM id_groups WHERE id = @id", new { id }, tx);

    const string TokenColumns = "t.id AS Id, t.user_id AS UserId, u.name AS UserName, t.name AS Name, t.created_at AS CreatedAt, t.expires_at AS ExpiresAt, t.revoked_at AS RevokedAt";

    public async Task InsertTokenAsync(string id, long userId, string hash, string? name, DateTimeOffset? expiresAt)
    {
        await using var connection = await store.OpenAsync();
        await connection.ExecuteAsync("""
            INSERT INTO id_tokens (id, user_id, hash, name, created_at, expires_at) VALUES (@id, @userId, @hash, @name, @now, @expiresAt)
            """, new { id, userId, hash, name, now = DateTimeOffset.UtcNow, expiresAt });
    }

    public async Task<(UserRow User, TokenRow Token)?> FindByTokenHashAsync(string hash)
    {
        await using var connection = await store.OpenAsync();
        var token = await connection.QuerySingleOrDefaultAsync<TokenRow>(
            $"SELECT {TokenColumns} FROM id_tokens t JOIN id_users u ON u.id = t.user_id WHERE t.hash = @hash", new { hash });
        if (token is null) return null;
        var user = await connection.QuerySingleAsync<UserRow>($"SELECT {UserColumns} FROM id_users WHERE id = @id", new { id = token.UserId });
        return (user, token);
    }

    public async Task<TokenRow?> FindTokenAsync(string id)
    {
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<TokenRow>($"SELECT {TokenColumns} FROM id_tokens t JOIN id_users u ON u.id = t.user_id WHERE t.id = @id", new { id });
    }

    public async Task<IReadOnlyList<TokenRow>> ListTokensAsync(long? userId, int limit, int offset)
    {
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<TokenRow>($"""
            SELECT {TokenColumns} FROM id_tokens t JOIN id_users u ON u.id = t.user_id
            WHERE @userId IS NULL OR t.user_id = @userId ORDER BY t.created_at LIMIT @limit OFFSET @offset
            """, new { userId, limit, offset })).AsList();
    }

    public async Task RevokeTokenAsync(string id)
    {
        await using var connection = await store.OpenAsync();
        await connection.ExecuteAsync("UPDATE id_tokens SET revoked_at = @now WHERE id = @id AND revoked_at IS NULL", new { id, now = DateTimeOffset.UtcNow });
    }

    /// <summary>Deletes tokens that stopped working before <paramref name="before"/>.</summary>
    public async Task<int> PurgeTokensAsync(DateTimeOffset before)
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteAsync("""
            DELETE FROM id_tokens WHERE (revoked_at IS NOT NULL AND revoked_at < @before) OR (expires_at IS NOT NULL AND expires_at < @before)
            """, new { before });
    }

    public Task<QuotaRow?> FindQuotaAsync(IDbConnection c, IDbTransaction? tx, long userId) =>
        c.QuerySingleOrDefaultAsync<QuotaRow>("""
            SELECT user_id AS UserId, vms AS Vms, cpus AS Cpus, memory_mib AS MemoryMib, storage_gib AS StorageGib FROM id_quotas WHERE user_id = @userId
            """, new { userId }, tx);

    public Task UpsertQuotaAsync(IDbConnection c, IDbTransaction tx, long userId, long? vms, long? cpus, long? memoryMib, long? storageGib) =>
        c.ExecuteAsync("""
            INSERT INTO id_quotas (user_id, vms, cpus, memory_mib, storage_gib) VALUES (@userId, @vms, @cpus, @memoryMib, @storageGib)
            ON CONFLICT (user_id) DO UPDATE SET vms = excluded.vms, cpus = excluded.cpus, memory_mib = excluded.memory_mib, storage_gib = excluded.storage_gib
            """, new { userId, vms, cpus, memoryMib, storageGib }, tx);

    public async Task<UsageRow> GetUsageAsync(IDbConnection c, IDbTransaction? tx, long userId) =>
        await c.QuerySingleOrDefaultAsync<UsageRow>("""
            SELECT vms AS Vms, cpus AS Cpus, memory_mib AS MemoryMib, storage_gib AS StorageGib FROM id_quota_usage WHERE user_id = @userId
            """, new { userId }, tx) ?? new UsageRow(0, 0, 0, 0);

    /// <summary>Every user's stored usage, by user id.</summary>
    public async Task<IReadOnlyDictionary<long, ResourceAmount>> ListUsageAsync(IDbConnection c, IDbTransaction? tx) =>
        (await c.QueryAsync<(long UserId, long Vms, long Cpus, long MemoryMib, long StorageGib)>(
            "SELECT user_id, vms, cpus, memory_mib, storage_gib FROM id_quota_usage", transaction: tx))
        .ToDictionary(u => u.UserId, u => new ResourceAmount(u.Vms, u.Cpus, u.MemoryMib, u.StorageGib));

    public Task SetUsageAsync(IDbConnection c, IDbTransaction tx, long userId, ResourceAmount usage) =>
        c.ExecuteAsync("""
            INSERT INTO id_quota_usage (user_id, vms, cpus, memory_mib, storage_gib) VALUES (@userId, @Vms, @Cpus, @MemoryMiB, @StorageGiB)
            ON CONFLICT (user_id) DO UPDATE SET vms = excluded.vms, cpus = excluded.cpus, memory_mib = excluded.memory_mib, storage_gib = excluded.storage_gib
            """, new { userId, usage.Vms, usage.Cpus, usage.MemoryMiB, usage.StorageGiB }, tx);

    const string AccessKeyColumns = "id AS Id, user_id AS UserId, secret_sealed AS SecretSealed, created_at AS CreatedAt, last_used_at AS LastUsedAt";

    public Task<long> CountAccessKeysAsync(IDbConnection c, IDbTransaction tx, long userId) =>
        c.ExecuteScalarAsync<long>("SELECT count(*) FROM id_access_keys WHERE user_id = @userId", new { userId }, tx);

    public Task InsertAccessKeyAsync(IDbConnection c, IDbTransaction tx, string id, long userId, string secretSealed, DateTimeOffset now) =>
        c.ExecuteAsync("INSERT INTO id_access_keys (id, user_id, secret_sealed, created_at) VALUES (@id, @userId, @secretSealed, @now)",
            new { id, userId, secretSealed, now }, tx);

    public async Task<IReadOnlyList<AccessKeyRow>> ListAccessKeysAsync(long userId)
    {
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<AccessKeyRow>($"SELECT {AccessKeyColumns} FROM id_access_keys WHERE user_id = @userId ORDER BY created_at, id", new { userId })).AsList();
    }

    public async Task<AccessKeyRow?> FindAccessKeyAsync(string id)
    {
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<AccessKeyRow>($"SELECT {AccessKeyColumns} FROM id_access_keys WHERE id = @id", new { id });
    }

    public Task<bool> DeleteAccessKeyAsync(long userId, string id) =>
        store.WriteAsync(async (c, tx) => await c.ExecuteAsync("DELETE FROM id_access_keys WHERE id = @id AND user_id = @userId", new { id, userId }, tx) > 0);

    /// <summary>Records the last use at most once a minute, so signed requests don't each cost a write.</summary>
    public Task TouchAccessKeyAsync(string id, DateTimeOffset now) =>
        store.WriteAsync((c, tx) => c.ExecuteAsync("""
            UPDATE id_access_keys SET last_used_at = @now
            WHERE id = @id AND (last_used_at IS NULL OR last_used_at < @minuteAgo)
            """, new { id, now, minuteAgo = now.AddMinutes(-1) }, tx));
}
