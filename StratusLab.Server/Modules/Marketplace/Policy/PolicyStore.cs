using System.Text;
using Dapper;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Marketplace.Policy;

internal sealed record PolicyRuleRow(string List, string Kind, string Value, DateTimeOffset CreatedAt, string CreatedBy);

/// <summary>One launch decision as the audit keeps it.</summary>
internal sealed record AuditRecord(long Id, DateTimeOffset At, string Identifier, string? Sha1, string? Endorser, long? UserId, string UserName,
    string? InstanceId, bool Accepted, string Rule, string Source, string Reason);

sealed record AuditRow(long Id, DateTimeOffset At, string Identifier, string? Sha1, string? Endorser, long? UserId, string UserName,
    string? InstanceId, long Accepted, string Rule, string Source, string Reason);

/// <summary>Filters of the audit query; null means any.</summary>
internal sealed record AuditQuery(string? Identifier = null, string? User = null, bool? Accepted = null, DateTimeOffset? Since = null,
    DateTimeOffset? Until = null, int Limit = 100, int Offset = 0);

/// <summary>The policy's SQL (tables policy_*). The site lists are read at every launch and change rarely, so they are cached.</summary>
internal sealed class PolicyStore(Store store)
{
    PolicyLists? _cached;
    long _version;

    public async Task<PolicyLists> SiteListsAsync()
    {
        if (Volatile.Read(ref _cached) is { } cached) return cached;
        var version = Interlocked.Read(ref _version);
        var lists = await ReadSiteListsAsync();
        // A replace that happened meanwhile bumped the version: keep the fresh read out of the cache.
        if (Interlocked.Read(ref _version) == version) Interlocked.CompareExchange(ref _cached, lists, null);
        return lists;
    }

    async Task<PolicyLists> ReadSiteListsAsync()
    {
        await using var c = await store.OpenAsync();
        var rows = (await c.QueryAsync<PolicyRuleRow>(
            "SELECT list AS List, kind AS Kind, value AS Value, created_at AS CreatedAt, created_by AS CreatedBy FROM policy_rules ORDER BY created_at, value")).AsList();
        IReadOnlyList<string> Of(string list, string kind) => rows.Where(r => r.List == list && r.Kind == kind).Select(r => r.Value).ToList();
        return new PolicyLists(Of("whitelist", "endorser"), Of("blacklist", "endorser"), Of("whitelist", "image"), Of("blacklist", "image"),
            Of("whitelist", "checksum"), Of("blacklist", "checksum"));
    }

    /// <summary>The Marketplace's change counter: moved by every write to entries, endorsers and site rules (triggers, migration 0003).</summary>
    public async Task<long> ChangesAsync()
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteScalarAsync<long>("SELECT counter FROM mkt_changes WHERE id = 1");
    }

    public async Task<(DateTimeOffset At, string By)?> LastChangeAsync()
    {
        await using var c = await store.OpenAsync();
        var row = await c.QueryFirstOrDefaultAsync<PolicyRuleRow>(
            "SELECT list AS List, kind AS Kind, value AS Value, created_at AS CreatedAt, created_by AS CreatedBy FROM policy_rules ORDER BY created_at DESC LIMIT 1");
        return row is null ? null : (row.CreatedAt, row.CreatedBy);
    }

    public async Task ReplaceSiteListsAsync(PolicyLists lists, string by)
    {
        Interlocked.Increment(ref _version);
        Volatile.Write(ref _cached, null);
        try { await WriteSiteListsAsync(lists, by); }
        finally
        {
            Interlocked.Increment(ref _version);
            Volatile.Write(ref _cached, null);
        }
    }

    Task WriteSiteListsAsync(PolicyLists lists, string by) => store.WriteAsync(async (c, tx) =>
    {
        await c.ExecuteAsync("DELETE FROM policy_rules", transaction: tx);
        var now = DateTimeOffset.UtcNow;
        async Task Add(string list, string kind, IEnumerable<string> values)
        {
            foreach (var value in values.Distinct(StringComparer.OrdinalIgnoreCase))
                await c.ExecuteAsync("INSERT INTO policy_rules (list, kind, value, created_at, created_by) VALUES (@list, @kind, @value, @now, @by)",
                    new { list, kind, value, now, by }, tx);
        }
        await Add("whitelist", "endorser", lists.WhitelistEndorsers);
        await Add("blacklist", "endorser", lists.BlacklistEndorsers);
        await Add("whitelist", "image", lists.WhitelistImages);
        await Add("blacklist", "image", lists.BlacklistImages);
        await Add("whitelist", "checksum", lists.WhitelistChecksums);
        await Add("blacklist", "checksum", lists.BlacklistChecksums);
    });

    public async Task<long> InsertAuditAsync(AuditRecord r)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteScalarAsync<long>("""
            INSERT INTO policy_audit (at, identifier, sha1, endorser, user_id, user_name, instance_id, accepted, rule, source, reason)
            VALUES (@At, @Identifier, @Sha1, @Endorser, @UserId, @UserName, @InstanceId, @Accepted, @Rule, @Source, @Reason) RETURNING id
            """, new { r.At, r.Identifier, r.Sha1, r.Endorser, r.UserId, r.UserName, r.InstanceId, Accepted = r.Accepted ? 1 : 0, r.Rule, r.Source, r.Reason });
    }

    public async Task<IReadOnlyList<AuditRecord>> QueryAuditAsync(AuditQuery q)
    {
        var sql = new StringBuilder("""
            SELECT id AS Id, at AS At, identifier AS Identifier, sha1 AS Sha1, endorser AS Endorser, user_id AS UserId, user_name AS UserName,
                   instance_id AS InstanceId, accepted AS Accepted, rule AS Rule, source AS Source, reason AS Reason
            FROM policy_audit WHERE 1 = 1
            """);
        if (q.Identifier is not null) sql.Append(" AND identifier = @Identifier");
        if (q.User is not null) sql.Append(" AND user_name = @User COLLATE NOCASE");
        if (q.Accepted is not null) sql.Append(" AND accepted = @accepted");
        if (q.Since is not null) sql.Append(" AND at >= @Since");
        if (q.Until is not null) sql.Append(" AND at < @Until");
        sql.Append(" ORDER BY at DESC, id DESC LIMIT @Limit OFFSET @Offset");
        await using var c = await store.OpenAsync();
        var rows = await c.QueryAsync<AuditRow>(sql.ToString(), new
        {
            q.Identifier, q.User, accepted = q.Accepted is true ? 1 : 0, q.Since, q.Until, q.Limit, q.Offset,
        });
        return rows.Select(r => new AuditRecord(r.Id, r.At, r.Identifier, r.Sha1, r.Endorser, r.UserId, r.UserName, r.InstanceId,
            r.Accepted != 0, r.Rule, r.Source, r.Reason)).ToList();
    }
}
