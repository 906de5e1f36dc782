using System.Data;
using System.Text;
using System.Text.RegularExpressions;
using Dapper;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Marketplace;

internal sealed record EndorserRow(long Id, string Email, string CertSha256, string Subject, string Issuer, string Certificate, string State,
    long Whitelisted, string? TokenHash, DateTimeOffset CreatedAt, DateTimeOffset? ConfirmedAt);

internal sealed record EntryRow(long Id, string Identifier, string Email, string Created, long EndorserId, string State, long Latest,
    string? ValidUntil, string? Deprecated, string? DeprecatedBy, DateTimeOffset? DeprecatedAt, string Sha1, string Checksums,
    string EntryJson, DateTimeOffset UploadedAt, string? UploadedBy);

/// <summary>A class, not a positional record: computed columns have no SQLite type when the result is empty, which Dapper's constructor matching rejects.</summary>
internal sealed class EndorserSummaryRow
{
    public string Email { get; init; } = "";
    public string Subject { get; init; } = "";
    public string Issuer { get; init; } = "";
    public string State { get; init; } = "";
    public long Whitelisted { get; init; }
    public long Entries { get; init; }
    public string? LastCreated { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? ConfirmedAt { get; init; }
}

internal sealed record SiteFileRow(string Path, long Length, string Mtime, string Sha1, string Sha256, string Md5);

/// <summary>A search: status (valid, expired, deprecated, all), filters, free text; only the latest entry per identifier and endorser unless <see cref="Created"/> is given.</summary>
internal sealed record EntryQuery(
    string Status = "valid", string? Identifier = null, string? Email = null, string? Os = null, string? Arch = null,
    string? Tag = null, string? Text = null, string? Created = null, int Limit = 100, int Offset = 0);

/// <summary>The Marketplace's SQL (tables mkt_*). Entry times (created, valid_until) are yyyy-MM-ddTHH:mm:ssZ text, compared as text.</summary>
internal sealed partial class MarketplaceStore(Store store)
{
    public Store Store => store;

    const string EntryColumns = """
        e.id AS Id, e.identifier AS Identifier, e.email AS Email, e.created AS Created, e.endorser_id AS EndorserId, e.state AS State,
        e.latest AS Latest, e.valid_until AS ValidUntil, e.deprecated AS Deprecated, e.deprecated_by AS DeprecatedBy, e.deprecated_at AS DeprecatedAt,
        e.sha1 AS Sha1, e.checksums AS Checksums, e.entry_json AS EntryJson, e.uploaded_at AS UploadedAt, e.uploaded_by AS UploadedBy
        """;

    const string EndorserColumns = """
        id AS Id, email AS Email, cert_sha256 AS CertSha256, subject AS Subject, issuer AS Issuer, certificate AS Certificate, state AS State,
        whitelisted AS Whitelisted, token_hash AS TokenHash, created_at AS CreatedAt, confirmed_at AS ConfirmedAt
        """;

    public Task<EndorserRow?> FindEndorserAsync(IDbConnection c, IDbTransaction tx, string email, string certSha256) =>
        c.QuerySingleOrDefaultAsync<EndorserRow>($"SELECT {EndorserColumns} FROM mkt_endorsers WHERE email = @email AND cert_sha256 = @certSha256",
            new { email, certSha256 }, tx);

    public Task<long> InsertEndorserAsync(IDbConnection c, IDbTransaction tx, string email, string certSha256, string subject, string issuer,
        string certificate, bool confirmed, bool whitelisted) =>
        c.ExecuteScalarAsync<long>("""
            INSERT INTO mkt_endorsers (email, cert_sha256, subject, issuer, certificate, state, whitelisted, created_at, confirmed_at)
            VALUES (@email, @certSha256, @subject, @issuer, @certificate, @state, @whitelisted, @now, @confirmedAt) RETURNING id
            """, new
        {
            email, certSha256, subject, issuer, certificate, state = confirmed ? "confirmed" : "pending", whitelisted = whitelisted ? 1 : 0,
            now = DateTimeOffset.UtcNow, confirmedAt = confirmed ? DateTimeOffset.UtcNow : (DateTimeOffset?)null,
        }, tx);

    public Task ConfirmEndorserAsync(IDbConnection c, IDbTransaction tx, long id, bool whitelisted) =>
        c.ExecuteAsync("""
            UPDATE mkt_endorsers SET state = 'confirmed', confirmed_at = COALESCE(confirmed_at, @now), token_hash = NULL,
                whitelisted = MAX(whitelisted, @whitelisted) WHERE id = @id
            """, new { id, now = DateTimeOffset.UtcNow, whitelisted = whitelisted ? 1 : 0 }, tx);

    public Task SetTokenAsync(IDbConnection c, IDbTransaction tx, long id, string tokenHash) =>
        c.ExecuteAsync("UPDATE mkt_endorsers SET token_hash = @tokenHash WHERE id = @id", new { id, tokenHash }, tx);

    public Task<EndorserRow?> FindEndorserByTokenAsync(IDbConnection c, IDbTransaction tx, string tokenHash) =>
        c.QuerySingleOrDefaultAsync<EndorserRow>($"SELECT {EndorserColumns} FROM mkt_endorsers WHERE token_hash = @tokenHash", new { tokenHash }, tx);

    public async Task<EndorserRow?> FindEndorserByTokenAsync(string tokenHash)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<EndorserRow>($"SELECT {EndorserColumns} FROM mkt_endorsers WHERE token_hash = @tokenHash", new { tokenHash });
    }

    public async Task<IReadOnlyList<EndorserRow>> FindEndorsersByEmailAsync(IDbConnection c, IDbTransaction tx, string email) =>
        (await c.QueryAsync<EndorserRow>($"SELECT {EndorserColumns} FROM mkt_endorsers WHERE email = @email ORDER BY id", new { email }, tx)).AsList();

    public async Task<IReadOnlyList<EndorserSummaryRow>> ListEndorsersAsync(bool includePending, string? email, int limit, int offset)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<EndorserSummaryRow>("""
            SELECT d.email AS Email, d.subject AS Subject, d.issuer AS Issuer, d.state AS State, d.whitelisted AS Whitelisted,
                   (SELECT count(*) FROM mkt_entries e WHERE e.endorser_id = d.id AND e.state = 'published') AS Entries,
                   (SELECT max(e.created) FROM mkt_entries e WHERE e.endorser_id = d.id AND e.state = 'published') AS LastCreated,
                   d.created_at AS CreatedAt, d.confirmed_at AS ConfirmedAt
            FROM mkt_endorsers d
            WHERE (@includePending = 1 OR d.state = 'confirmed') AND (@email IS NULL OR d.email = @email)
            ORDER BY d.email, d.id LIMIT @limit OFFSET @offset
            """, new { includePending = includePending ? 1 : 0, email, limit, offset })).AsList();
    }

    public Task<string?> NewestCreatedAsync(IDbConnection c, IDbTransaction tx, string identifier, string email) =>
        c.ExecuteScalarAsync<string?>("SELECT max(created) FROM mkt_entries WHERE identifier = @identifier AND email = @email",
            new { identifier, email }, tx);

    public async Task<bool> EntryExistsAsync(IDbConnection c, IDbTransaction tx, string identifier, string email, string created) =>
        await c.ExecuteScalarAsync<long>("SELECT count(*) FROM mkt_entries WHERE identifier = @identifier AND email = @email AND created = @created",
            new { identifier, email, created }, tx) > 0;

    public async Task<long> InsertEntryAsync(IDbConnection c, IDbTransaction tx, EntryInsert e)
    {
        var id = await c.ExecuteScalarAsync<long>("""
            INSERT INTO mkt_entries (identifier, email, created, endorser_id, state, latest, valid_until, deprecated, deprecated_by, deprecated_at,
                                     sha1, checksums, os, os_arch, entry_json, xml, uploaded_at, uploaded_by)
            VALUES (@Identifier, @Email, @Created, @EndorserId, @State, 0, @ValidUntil, @Deprecated, @DeprecatedBy, @DeprecatedAt,
                    @Sha1, @Checksums, @Os, @OsArch, @EntryJson, @Xml, @UploadedAt, @UploadedBy) RETURNING id
            """, e, tx);
        foreach (var tag in e.Tags.Distinct(StringComparer.OrdinalIgnoreCase))
            await c.ExecuteAsync("INSERT INTO mkt_entry_tags (entry_id, tag) VALUES (@id, @tag)", new { id, tag }, tx);
        await c.ExecuteAsync("INSERT INTO mkt_search (rowid, body) VALUES (@id, @body)", new { id, body = e.SearchText }, tx);
        return id;
    }

    /// <summary>Marks the newest published entry of identifier + e-mail as the latest one, and only it.</summary>
    public Task RecomputeLatestAsync(IDbConnection c, IDbTransaction tx, string identifier, string email) =>
        c.ExecuteAsync("""
            UPDATE mkt_entries SET latest = (id IS (SELECT id FROM mkt_entries WHERE identifier = @identifier AND email = @email
                                                    AND state = 'published' ORDER BY created DESC, id DESC LIMIT 1))
            WHERE identifier = @identifier AND email = @email
            """, new { identifier, email }, tx);

    /// <summary>Publishes an endorser's pending entries; returns the identifier + e-mail pairs touched.</summary>
    public async Task<IReadOnlyList<(string Identifier, string Email)>> PublishPendingAsync(IDbConnection c, IDbTransaction tx, long endorserId)
    {
        var pairs = (await c.QueryAsync<(string, string)>(
            "SELECT DISTINCT identifier, email FROM mkt_entries WHERE endorser_id = @endorserId AND state = 'pending'", new { endorserId }, tx)).AsList();
        await c.ExecuteAsync("UPDATE mkt_entries SET state = 'published' WHERE endorser_id = @endorserId AND state = 'pending'", new { endorserId }, tx);
        foreach (var (identifier, email) in pairs) await RecomputeLatestAsync(c, tx, identifier, email);
        return pairs;
    }

    /// <summary>An administrator's deprecation of the latest published entries of an identifier (one endorser's, or all).</summary>
    public async Task<int> DeprecateLatestAsync(string identifier, string? email, string reason, string by)
    {
        return await store.WriteAsync((c, tx) => c.ExecuteAsync("""
            UPDATE mkt_entries SET deprecated = @reason, deprecated_by = @by, deprecated_at = @now
            WHERE identifier = @identifier AND latest = 1 AND state = 'published' AND (@email IS NULL OR email = @email)
            """, new { identifier, email, reason, by, now = DateTimeOffset.UtcNow }, tx));
    }

    public async Task<IReadOnlyList<EntryRow>> QueryAsync(EntryQuery q, string now)
    {
        var sql = new StringBuilder($"SELECT {EntryColumns} FROM mkt_entries e WHERE e.state = 'published'");
        sql.Append(q.Created is null ? " AND e.latest = 1" : " AND e.created LIKE @createdPrefix");
        sql.Append(q.Status switch
        {
            "valid" => " AND e.deprecated IS NULL AND (e.valid_until IS NULL OR e.valid_until > @now)",
            "expired" => " AND e.deprecated IS NULL AND e.valid_until <= @now",
            "deprecated" => " AND e.deprecated IS NOT NULL",
            _ => "",
        });
        if (q.Identifier is not null) sql.Append(" AND e.identifier = @Identifier");
        if (q.Email is not null) sql.Append(" AND e.email = @Email");
        if (q.Os is not null) sql.Append(" AND e.os = @Os");
        if (q.Arch is not null) sql.Append(" AND e.os_arch = @Arch");
        if (q.Tag is not null) sql.Append(" AND e.id IN (SELECT entry_id FROM mkt_entry_tags WHERE tag = @Tag)");
        string? match = null;
        if (q.Text is not null)
        {
            match = FullTextQuery(q.Text);
            sql.Append(" AND e.id IN (SELECT rowid FROM mkt_search WHERE mkt_search MATCH @match)");
        }
        sql.Append(" ORDER BY e.created DESC, e.id DESC LIMIT @Limit OFFSET @Offset");
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<EntryRow>(sql.ToString(), new
        {
            q.Identifier, q.Email, q.Os, q.Arch, q.Tag, q.Limit, q.Offset, now, match,
            createdPrefix = q.Created is null ? null : EscapeLike(q.Created) + "%",
        })).AsList();
    }

    /// <summary>Free text as an FTS5 query: each word a quoted prefix term, all required, so no user input is FTS syntax.</summary>
    public static string FullTextQuery(string text)
    {
        var words = Word().Matches(text).Select(m => m.Value).Take(16).ToList();
        if (words.Count == 0)
            throw new InvalidInputException("q", $"'q' = '{Validate.Trim(text)}' has no words to search for; give letters or digits.");
        return string.Join(" AND ", words.Select(w => $"\"{w}\"*"));
    }

    static string EscapeLike(string value) => value.Replace("%", "").Replace("_", "");

    [GeneratedRegex(@"[\p{L}\p{N}]+")]
    private static partial Regex Word();

    public async Task<IReadOnlyList<EntryRow>> LatestForIdentifierAsync(string identifier)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<EntryRow>($"""
            SELECT {EntryColumns} FROM mkt_entries e WHERE e.identifier = @identifier AND e.latest = 1 AND e.state = 'published'
            ORDER BY e.created DESC, e.id DESC
            """, new { identifier })).AsList();
    }

    public async Task<EntryRow?> LatestOfEndorserAsync(string identifier, string email)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<EntryRow>($"""
            SELECT {EntryColumns} FROM mkt_entries e WHERE e.identifier = @identifier AND e.email = @email AND e.latest = 1 AND e.state = 'published'
            """, new { identifier, email });
    }

    public async Task<EntryRow?> FindEntryAsync(string identifier, string email, string created)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<EntryRow>($"""
            SELECT {EntryColumns} FROM mkt_entries e WHERE e.identifier = @identifier AND e.email = @email AND e.created = @created AND e.state = 'published'
            """, new { identifier, email, created });
    }

    public async Task<byte[]?> XmlOfAsync(long id)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteScalarAsync<byte[]?>("SELECT xml FROM mkt_entries WHERE id = @id", new { id });
    }

    public async Task<IReadOnlyList<byte[]>> XmlOfAsync(IReadOnlyList<long> ids)
    {
        if (ids.Count == 0) return [];
        await using var c = await store.OpenAsync();
        var map = (await c.QueryAsync<(long Id, byte[] Xml)>("SELECT id, xml FROM mkt_entries WHERE id IN @ids", new { ids })).ToDictionary(r => r.Id, r => r.Xml);
        return ids.Select(id => map[id]).ToList();
    }

    /// <summary>Every published entry of an endorser (all identifiers, all dates), newest first.</summary>
    public async Task<IReadOnlyList<EntryRow>> HistoryAsync(string email, int limit, int offset)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<EntryRow>($"""
            SELECT {EntryColumns} FROM mkt_entries e WHERE e.email = @email AND e.state = 'published'
            ORDER BY e.created DESC, e.id DESC LIMIT @limit OFFSET @offset
            """, new { email, limit, offset })).AsList();
    }

    /// <summary>Every published entry of an identifier, all endorsers and dates, newest first.</summary>
    public async Task<IReadOnlyList<EntryRow>> IdentifierHistoryAsync(string identifier, int limit)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<EntryRow>($"""
            SELECT {EntryColumns} FROM mkt_entries e WHERE e.identifier = @identifier AND e.state = 'published'
            ORDER BY e.created DESC, e.id DESC LIMIT @limit
            """, new { identifier, limit })).AsList();
    }

    public async Task<SiteFileRow?> FindSiteFileAsync(string path)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<SiteFileRow>(
            "SELECT path AS Path, length AS Length, mtime AS Mtime, sha1 AS Sha1, sha256 AS Sha256, md5 AS Md5 FROM mkt_site_files WHERE path = @path", new { path });
    }

    public async Task UpsertSiteFileAsync(SiteFileRow row)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("""
            INSERT INTO mkt_site_files (path, length, mtime, sha1, sha256, md5) VALUES (@Path, @Length, @Mtime, @Sha1, @Sha256, @Md5)
            ON CONFLICT (path) DO UPDATE SET length = excluded.length, mtime = excluded.mtime, sha1 = excluded.sha1, sha256 = excluded.sha256, md5 = excluded.md5
            """, row);
    }
}

/// <summary>What an accepted upload writes.</summary>
internal sealed record EntryInsert(
    string Identifier, string Email, string Created, long EndorserId, string State, string? ValidUntil, string? Deprecated, string? DeprecatedBy,
    DateTimeOffset? DeprecatedAt, string Sha1, string Checksums, string? Os, string? OsArch, string EntryJson, byte[] Xml,
    DateTimeOffset UploadedAt, string? UploadedBy, IReadOnlyList<string> Tags, string SearchText);
