using Dapper;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Occi;

internal sealed record UserMixinRow(long Id, long OwnerId, string Term, string Scheme, string? Title, string Location);

/// <summary>The OCCI door's SQL (tables occi_*): user mixins and what they tag.</summary>
internal sealed class OcciStore(Store store)
{
    const string Columns = "id AS Id, owner_id AS OwnerId, term AS Term, scheme AS Scheme, title AS Title, location AS Location";

    public async Task<IReadOnlyList<UserMixinRow>> MixinsOfAsync(long ownerId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<UserMixinRow>($"SELECT {Columns} FROM occi_mixins WHERE owner_id = @ownerId ORDER BY id", new { ownerId })).AsList();
    }

    public async Task<UserMixinRow?> FindAsync(string scheme, string term)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<UserMixinRow>($"SELECT {Columns} FROM occi_mixins WHERE scheme = @scheme AND term = @term", new { scheme, term });
    }

    public async Task<UserMixinRow?> FindByLocationAsync(string location)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<UserMixinRow>($"SELECT {Columns} FROM occi_mixins WHERE location = @location", new { location });
    }

    /// <summary>Adds a mixin; false when its scheme+term or its location is taken.</summary>
    public Task<bool> AddAsync(long ownerId, string term, string scheme, string? title, string location) =>
        store.WriteAsync(async (c, tx) => await c.ExecuteAsync("""
            INSERT INTO occi_mixins (owner_id, term, scheme, title, location, created_at) VALUES (@ownerId, @term, @scheme, @title, @location, @now)
            ON CONFLICT DO NOTHING
            """, new { ownerId, term, scheme, title, location, now = DateTimeOffset.UtcNow }, tx) == 1);

    public Task DeleteAsync(long id) =>
        store.WriteAsync(async (c, tx) =>
        {
            await c.ExecuteAsync("DELETE FROM occi_tagged WHERE mixin_id = @id", new { id }, tx);
            await c.ExecuteAsync("DELETE FROM occi_mixins WHERE id = @id", new { id }, tx);
        });

    public async Task<IReadOnlyList<string>> TaggedAsync(long mixinId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<string>("SELECT location FROM occi_tagged WHERE mixin_id = @mixinId ORDER BY location", new { mixinId })).AsList();
    }

    /// <summary>The user mixins (of this owner) tagging a resource.</summary>
    public async Task<IReadOnlyList<UserMixinRow>> MixinsTaggingAsync(long ownerId, string location)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<UserMixinRow>($"""
            SELECT {Columns} FROM occi_mixins WHERE owner_id = @ownerId AND id IN (SELECT mixin_id FROM occi_tagged WHERE location = @location) ORDER BY id
            """, new { ownerId, location })).AsList();
    }

    /// <summary>Tags (or with <paramref name="replace"/>, sets the tagged list of) a mixin.</summary>
    public Task TagAsync(long mixinId, IReadOnlyCollection<string> locations, bool replace) =>
        store.WriteAsync(async (c, tx) =>
        {
            if (replace) await c.ExecuteAsync("DELETE FROM occi_tagged WHERE mixin_id = @mixinId", new { mixinId }, tx);
            foreach (var location in locations.Distinct())
                await c.ExecuteAsync("INSERT INTO occi_tagged (mixin_id, location) VALUES (@mixinId, @location) ON CONFLICT DO NOTHING", new { mixinId, location }, tx);
        });

    public Task UntagAsync(long mixinId, IReadOnlyCollection<string> locations) =>
        store.WriteAsync((c, tx) => c.ExecuteAsync("DELETE FROM occi_tagged WHERE mixin_id = @mixinId AND location IN @locations", new { mixinId, locations }, tx));

    /// <summary>Forgets a deleted resource in every mixin.</summary>
    public Task ForgetAsync(string location) =>
        store.WriteAsync((c, tx) => c.ExecuteAsync("DELETE FROM occi_tagged WHERE location = @location", new { location }, tx));
}
