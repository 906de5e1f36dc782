using Dapper;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Platform.Transfers;

namespace StratusLab.Server.Modules.Images;

/// <summary>One cached image.</summary>
internal sealed class CacheRow
{
    public string Key { get; init; } = "";
    public string Source { get; init; } = "";
    public string Kind { get; init; } = "";
    public string State { get; init; } = "";
    public string? Identifier { get; init; }
    public string? OriginUuid { get; init; }
    public long? BytesTotal { get; init; }
    public long BytesDone { get; init; }
    public long? SizeBytes { get; init; }
    public string? Error { get; init; }
    public long Hits { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? ReadyAt { get; init; }
    public DateTimeOffset? LastUsedAt { get; init; }
    public string? ETag { get; init; }
    public DateTimeOffset? LastModified { get; init; }
    public DateTimeOffset? ValidatedAt { get; init; }
}

/// <summary>A short image name.</summary>
internal sealed class NameRow
{
    public string Name { get; init; } = "";
    public string Identifier { get; init; } = "";
    public bool IsDefault { get; init; }
}

/// <summary>The Images module's SQL (tables img_*).</summary>
internal sealed class ImagesStore(Store store)
{
    const string Columns = """
        key AS Key, source AS Source, kind AS Kind, state AS State, identifier AS Identifier, origin_uuid AS OriginUuid,
        bytes_total AS BytesTotal, bytes_done AS BytesDone, size_bytes AS SizeBytes, error AS Error, hits AS Hits,
        created_at AS CreatedAt, ready_at AS ReadyAt, last_used_at AS LastUsedAt, etag AS ETag, last_modified AS LastModified, validated_at AS ValidatedAt
        """;

    public async Task<CacheRow?> GetAsync(string key)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<CacheRow>($"SELECT {Columns} FROM img_cache WHERE key = @key", new { key });
    }

    public async Task<IReadOnlyList<CacheRow>> ListAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<CacheRow>($"SELECT {Columns} FROM img_cache ORDER BY COALESCE(last_used_at, created_at) DESC")).AsList();
    }

    public async Task StartAsync(string key, string source, string kind, string? identifier)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("""
            INSERT INTO img_cache (key, source, kind, state, identifier, created_at) VALUES (@key, @source, @kind, 'downloading', @identifier, @now)
            ON CONFLICT (key) DO UPDATE SET state = 'downloading', error = NULL, source = excluded.source
            """, new { key, source, kind, identifier, now = DateTimeOffset.UtcNow });
    }

    public async Task ProgressAsync(string key, long done, long? total)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE img_cache SET bytes_done = @done, bytes_total = @total WHERE key = @key", new { key, done, total });
    }

    /// <summary>The download is cached as <paramref name="origin"/>; <paramref name="version"/> is what the server said identifies it.</summary>
    public async Task ReadyAsync(string key, string identifier, Guid origin, long size, long? downloaded = null, ResourceVersion? version = null)
    {
        await using var c = await store.OpenAsync();
        var now = DateTimeOffset.UtcNow;
        // Progress is written at most once a second while downloading; the final count is written here.
        await c.ExecuteAsync("""
            UPDATE img_cache SET state = 'ready', identifier = @identifier, origin_uuid = @origin, size_bytes = @size, error = NULL,
                bytes_done = COALESCE(@downloaded, bytes_done), bytes_total = COALESCE(@downloaded, bytes_total),
                etag = @etag, last_modified = @lastModified, ready_at = @now, validated_at = @now, last_used_at = @now WHERE key = @key
            """, new { key, identifier, origin = origin.ToString(), size, downloaded, etag = version?.ETag, lastModified = version?.LastModified, now });
    }

    /// <summary>The server confirmed the cached version is current (with new validators when it sent the whole resource again).</summary>
    public async Task ValidatedAsync(string key, ResourceVersion? version)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("""
            UPDATE img_cache SET validated_at = @now,
                etag = CASE WHEN @known THEN @etag ELSE etag END, last_modified = CASE WHEN @known THEN @lastModified ELSE last_modified END
            WHERE key = @key
            """, new { key, known = version is not null, etag = version?.ETag, lastModified = version?.LastModified, now = DateTimeOffset.UtcNow });
    }

    /// <summary>Moves an entry to another key (a superseded version of a URL image, kept while clones use it); false when there was none.</summary>
    public async Task<bool> SupersedeAsync(string key, string newKey)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("UPDATE img_cache SET key = @newKey WHERE key = @key", new { key, newKey }) == 1;
    }

    public async Task FailedAsync(string key, string error)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE img_cache SET state = 'failed', error = @error, origin_uuid = NULL WHERE key = @key", new { key, error });
    }

    public async Task HitAsync(string key)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE img_cache SET hits = hits + 1, last_used_at = @now WHERE key = @key", new { key, now = DateTimeOffset.UtcNow });
    }

    public async Task DeleteAsync(string key)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("DELETE FROM img_cache WHERE key = @key", new { key });
    }

    /// <summary>The error of a download that a server stop interrupted.</summary>
    public const string Interrupted = "interrupted by a server restart; the next request resumes it";

    /// <summary>Downloads that were running when the server stopped; their partial files are resumed on the next request.</summary>
    public async Task<int> MarkInterruptedAsync()
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("UPDATE img_cache SET state = 'failed', error = @error WHERE state = 'downloading'", new { error = Interrupted });
    }

    public async Task<IReadOnlyList<NameRow>> NamesAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<NameRow>("SELECT name AS Name, identifier AS Identifier, is_default AS IsDefault FROM img_names ORDER BY name")).AsList();
    }

    public async Task SetNameAsync(string name, string identifier, bool isDefault)
    {
        await store.WriteAsync(async (c, tx) =>
        {
            if (isDefault) await c.ExecuteAsync("UPDATE img_names SET is_default = 0", transaction: tx);
            await c.ExecuteAsync("""
                INSERT INTO img_names (name, identifier, is_default, created_at) VALUES (@name, @identifier, @isDefault, @now)
                ON CONFLICT (name) DO UPDATE SET identifier = excluded.identifier, is_default = excluded.is_default OR img_names.is_default
                """, new { name, identifier, isDefault, now = DateTimeOffset.UtcNow }, tx);
        });
    }
}
