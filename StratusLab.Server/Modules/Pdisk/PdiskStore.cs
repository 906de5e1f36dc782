using System.Data;
using System.Text.Json;
using Dapper;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>Volume states as stored.</summary>
internal static class VolumeStates
{
    public const string Creating = "CREATING";
    public const string Ready = "READY";
    public const string Quarantined = "QUARANTINED";
    public const string Deleting = "DELETING";
}

/// <summary>One volume as stored.</summary>
internal sealed class VolumeRow
{
    public string Uuid { get; init; } = "";
    public long OwnerId { get; init; }
    public string GroupsJson { get; init; } = "[]";
    public string Visibility { get; init; } = "private";
    public string? Tag { get; init; }
    public long SizeBytes { get; init; }
    public long QuotaGib { get; init; }
    public string? Identifier { get; init; }
    public string Type { get; init; } = "";
    public string State { get; init; } = "";
    public string Backend { get; init; } = "";
    public string Format { get; init; } = "";
    public string Path { get; init; } = "";
    public string? OriginUuid { get; init; }
    public string Sharing { get; init; } = "";
    public string? Sha1 { get; init; }
    public DateTimeOffset? QuarantinedAt { get; init; }
    public DateTimeOffset? QuarantineUntil { get; init; }
    public string? PendingMountRun { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }

    public Guid Id => Guid.Parse(Uuid);
    public VolumeType TypeValue => VolumeTypes.TryParse(Type, out var t) ? t : throw new InvalidOperationException($"volume {Uuid} has an unknown type '{Type}'");
    public IReadOnlyList<long> Groups => JsonSerializer.Deserialize<List<long>>(GroupsJson) ?? [];
    public VolumeLocation Location => new(Path, Format, SizeBytes);
}

/// <summary>One mount as stored.</summary>
internal sealed class MountRow
{
    public long Id { get; init; }
    public string VolumeUuid { get; init; } = "";
    public long InstanceId { get; init; }
    public string Host { get; init; } = "";
    public string Device { get; init; } = "";
    public bool ReadOnly { get; init; }
    public bool HotPlugged { get; init; }
    public bool QuarantineOnRelease { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>What a caller asked to list.</summary>
internal sealed record VolumeQuery(Caller Caller, string? Type, string? Tag, long? OwnerId, string? Visibility, string? State, string? Identifier, int Limit, int Offset);

/// <summary>The Pdisk module's SQL (tables pdisk_*).</summary>
internal sealed class PdiskStore(Store store)
{
    public Store Store => store;

    const string Columns = """
        uuid AS Uuid, owner_id AS OwnerId, groups_json AS GroupsJson, visibility AS Visibility, tag AS Tag, size_bytes AS SizeBytes,
        quota_gib AS QuotaGib, identifier AS Identifier, type AS Type, state AS State, backend AS Backend, format AS Format, path AS Path,
        origin_uuid AS OriginUuid, sharing AS Sharing, sha1 AS Sha1, quarantined_at AS QuarantinedAt, quarantine_until AS QuarantineUntil,
        pending_mount_run AS PendingMountRun, created_at AS CreatedAt, updated_at AS UpdatedAt
        """;

    const string MountColumns = """
        id AS Id, volume_uuid AS VolumeUuid, instance_id AS InstanceId, host AS Host, device AS Device, read_only AS ReadOnly,
        hot_plugged AS HotPlugged, quarantine_on_release AS QuarantineOnRelease, created_at AS CreatedAt
        """;

    public async Task<VolumeRow?> GetAsync(string uuid, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = $"SELECT {Columns} FROM pdisk_volumes WHERE uuid = @uuid";
        if (c is not null) return await c.QuerySingleOrDefaultAsync<VolumeRow>(sql, new { uuid }, tx);
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<VolumeRow>(sql, new { uuid });
    }

    /// <summary>The non-LIVE volume holding a Marketplace identifier, if any.</summary>
    public async Task<VolumeRow?> FindByIdentifierAsync(string identifier, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = $"SELECT {Columns} FROM pdisk_volumes WHERE identifier = @identifier AND identifier NOT LIKE 'snapshot:%'";
        if (c is not null) return await c.QuerySingleOrDefaultAsync<VolumeRow>(sql, new { identifier }, tx);
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<VolumeRow>(sql, new { identifier });
    }

    /// <summary>Volumes the caller may see (admins: all; others: their own, public ones, and their groups'), filtered.</summary>
    public async Task<IReadOnlyList<VolumeRow>> ListAsync(VolumeQuery q)
    {
        await using var c = await store.OpenAsync();
        var sql = $"SELECT {Columns} FROM pdisk_volumes WHERE 1 = 1";
        var groupIds = q.Caller.GroupIds.Append(q.Caller.PrimaryGroupId).Distinct().ToList();
        if (!q.Caller.IsAdmin)
            sql += " AND (owner_id = @userId OR visibility = 'public' OR EXISTS (SELECT 1 FROM json_each(groups_json) WHERE value IN @groupIds))";
        if (q.Type is not null) sql += " AND type = @Type";
        if (q.Tag is not null) sql += " AND tag = @Tag";
        if (q.OwnerId is not null) sql += " AND owner_id = @OwnerId";
        if (q.Visibility is not null) sql += " AND visibility = @Visibility";
        // Quarantined volumes are listed only when asked for.
        sql += q.State is null ? " AND state <> 'QUARANTINED'" : " AND state = @State";
        if (q.Identifier is not null) sql += " AND identifier = @Identifier";
        sql += " ORDER BY created_at, uuid LIMIT @Limit OFFSET @Offset";
        return (await c.QueryAsync<VolumeRow>(sql, new { userId = q.Caller.UserId, groupIds, q.Type, q.Tag, q.OwnerId, q.Visibility, q.State, q.Identifier, q.Limit, q.Offset })).AsList();
    }

    public async Task<IReadOnlyList<VolumeRow>> ListAllAsync(string? state = null)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<VolumeRow>($"SELECT {Columns} FROM pdisk_volumes WHERE @state IS NULL OR state = @state ORDER BY created_at", new { state })).AsList();
    }

    public Task InsertAsync(IDbConnection c, IDbTransaction tx, VolumeRow v) =>
        c.ExecuteAsync("""
            INSERT INTO pdisk_volumes (uuid, owner_id, groups_json, visibility, tag, size_bytes, quota_gib, identifier, type, state, backend,
                format, path, origin_uuid, sharing, sha1, pending_mount_run, created_at, updated_at)
            VALUES (@Uuid, @OwnerId, @GroupsJson, @Visibility, @Tag, @SizeBytes, @QuotaGib, @Identifier, @Type, @State, @Backend,
                @Format, @Path, @OriginUuid, @Sharing, @Sha1, @PendingMountRun, @CreatedAt, @UpdatedAt)
            """, v, tx);

    /// <summary>CREATING → READY with where the data ended up; false when the volume was no longer CREATING.</summary>
    public Task<bool> MarkReadyAsync(string uuid, VolumeLocation location) =>
        ExecuteAsync("""
            UPDATE pdisk_volumes SET state = 'READY', path = @Path, format = @Format, size_bytes = @SizeBytes, updated_at = @now
            WHERE uuid = @uuid AND state = 'CREATING'
            """, new { uuid, location.Path, location.Format, location.SizeBytes, now = DateTimeOffset.UtcNow });

    /// <summary>Changes the given attributes (null: unchanged) of a volume; false when it does not exist.</summary>
    public Task<bool> UpdateAttributesAsync(string uuid, string? tag, string? visibility, IReadOnlyList<long>? groups, VolumeType? type, string? identifier,
        IDbConnection c, IDbTransaction tx) =>
        ExecuteAsync("""
            UPDATE pdisk_volumes SET tag = COALESCE(@tag, tag), visibility = COALESCE(@visibility, visibility), groups_json = COALESCE(@groups, groups_json),
                type = COALESCE(@type, type), identifier = COALESCE(@identifier, identifier), updated_at = @now
            WHERE uuid = @uuid
            """, new
            {
                uuid, tag, visibility, groups = groups is null ? null : GroupsJsonOf(groups), type = type is null ? null : VolumeTypes.Name(type.Value),
                identifier, now = DateTimeOffset.UtcNow,
            }, c, tx);

    /// <summary>A READY LIVE volume made independent: it becomes <paramref name="originType"/> at its new location, without origin or identifier.</summary>
    public Task<bool> MarkRebasedAsync(string uuid, VolumeType originType, VolumeLocation location) =>
        ExecuteAsync("""
            UPDATE pdisk_volumes SET type = @type, origin_uuid = NULL, identifier = NULL, pending_mount_run = NULL, path = @Path, format = @Format, updated_at = @now
            WHERE uuid = @uuid AND state = 'READY'
            """, new { uuid, type = VolumeTypes.Name(originType), location.Path, location.Format, now = DateTimeOffset.UtcNow });

    /// <summary>READY → QUARANTINED until <paramref name="until"/>; false when the volume was no longer READY.</summary>
    public Task<bool> QuarantineAsync(string uuid, DateTimeOffset at, DateTimeOffset until, IDbConnection c, IDbTransaction tx) =>
        ExecuteAsync("""
            UPDATE pdisk_volumes SET state = 'QUARANTINED', quarantined_at = @at, quarantine_until = @until, updated_at = @now
            WHERE uuid = @uuid AND state = 'READY'
            """, new { uuid, at, until, now = DateTimeOffset.UtcNow }, c, tx);

    /// <summary>QUARANTINED → READY (an administrator's release); false when the volume was not in quarantine.</summary>
    public Task<bool> ReleaseQuarantineAsync(string uuid, IDbConnection c, IDbTransaction tx) =>
        ExecuteAsync("""
            UPDATE pdisk_volumes SET state = 'READY', quarantined_at = NULL, quarantine_until = NULL, updated_at = @now
            WHERE uuid = @uuid AND state = 'QUARANTINED'
            """, new { uuid, now = DateTimeOffset.UtcNow }, c, tx);

    async Task<bool> ExecuteAsync(string sql, object args, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        if (c is not null) return await c.ExecuteAsync(sql, args, tx) == 1;
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteAsync(sql, args) == 1;
    }

    /// <summary>Moves a volume from <paramref name="from"/> to <paramref name="to"/>; false when it was in another state.</summary>
    public Task<bool> TransitionAsync(string uuid, string from, string to, IDbConnection? c = null, IDbTransaction? tx = null) =>
        ExecuteAsync("UPDATE pdisk_volumes SET state = @to, updated_at = @now WHERE uuid = @uuid AND state = @from",
            new { uuid, from, to, now = DateTimeOffset.UtcNow }, c, tx);

    /// <summary>Removes the volume's row and mounts; the number of volume rows removed (0 when it was already gone).</summary>
    public async Task<int> DeleteAsync(string uuid, IDbConnection c, IDbTransaction tx)
    {
        await c.ExecuteAsync("DELETE FROM pdisk_mounts WHERE volume_uuid = @uuid", new { uuid }, tx);
        return await c.ExecuteAsync("DELETE FROM pdisk_volumes WHERE uuid = @uuid", new { uuid }, tx);
    }

    /// <summary>READY clones made for an instance that no mount has claimed yet, with no mount now.</summary>
    public async Task<IReadOnlyList<VolumeRow>> UnmountedClonesAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<VolumeRow>($"""
            SELECT {Columns} FROM pdisk_volumes v
            WHERE pending_mount_run IS NOT NULL AND state = 'READY' AND NOT EXISTS (SELECT 1 FROM pdisk_mounts m WHERE m.volume_uuid = v.uuid)
            ORDER BY created_at
            """)).AsList();
    }

    public async Task<IReadOnlyList<string>> SnapshotsOfAsync(string uuid, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = "SELECT uuid FROM pdisk_volumes WHERE origin_uuid = @uuid ORDER BY created_at";
        if (c is not null) return (await c.QueryAsync<string>(sql, new { uuid }, tx)).AsList();
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<string>(sql, new { uuid })).AsList();
    }

    /// <summary>Snapshot counts and mount counts of many volumes at once (for lists).</summary>
    public async Task<(Dictionary<string, long> Snapshots, Dictionary<string, List<MountRow>> Mounts)> UsageOfAsync(IReadOnlyCollection<string> uuids)
    {
        await using var c = await store.OpenAsync();
        var snapshots = (await c.QueryAsync<(string, long)>(
            "SELECT origin_uuid, count(*) FROM pdisk_volumes WHERE origin_uuid IN @uuids GROUP BY origin_uuid", new { uuids }))
            .ToDictionary(r => r.Item1, r => r.Item2);
        var mounts = (await c.QueryAsync<MountRow>($"SELECT {MountColumns} FROM pdisk_mounts WHERE volume_uuid IN @uuids ORDER BY id", new { uuids }))
            .GroupBy(m => m.VolumeUuid).ToDictionary(g => g.Key, g => g.ToList());
        return (snapshots, mounts);
    }

    public async Task<IReadOnlyList<MountRow>> MountsOfVolumeAsync(string uuid, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = $"SELECT {MountColumns} FROM pdisk_mounts WHERE volume_uuid = @uuid ORDER BY id";
        if (c is not null) return (await c.QueryAsync<MountRow>(sql, new { uuid }, tx)).AsList();
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<MountRow>(sql, new { uuid })).AsList();
    }

    public async Task<IReadOnlyList<MountRow>> MountsOfInstanceAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<MountRow>($"SELECT {MountColumns} FROM pdisk_mounts WHERE instance_id = @instanceId ORDER BY id", new { instanceId })).AsList();
    }

    public async Task<IReadOnlyList<MountRow>> AllMountsAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<MountRow>($"SELECT {MountColumns} FROM pdisk_mounts ORDER BY id")).AsList();
    }

    /// <summary>Records a mount; the first mount of a clone made for an instance also claims it (it is no orphan any more).</summary>
    public async Task<long> InsertMountAsync(IDbConnection c, IDbTransaction tx, string uuid, long instanceId, string host, string device, bool readOnly,
        bool hotPlugged, bool quarantineOnRelease)
    {
        await c.ExecuteAsync("UPDATE pdisk_volumes SET pending_mount_run = NULL WHERE uuid = @uuid AND pending_mount_run IS NOT NULL", new { uuid }, tx);
        return await c.ExecuteScalarAsync<long>("""
            INSERT INTO pdisk_mounts (volume_uuid, instance_id, host, device, read_only, hot_plugged, quarantine_on_release, created_at)
            VALUES (@uuid, @instanceId, @host, @device, @readOnly, @hotPlugged, @quarantineOnRelease, @now) RETURNING id
            """, new { uuid, instanceId, host, device, readOnly, hotPlugged, quarantineOnRelease, now = DateTimeOffset.UtcNow }, tx);
    }

    public async Task SetMountDeviceAsync(long id, string device)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE pdisk_mounts SET device = @device WHERE id = @id", new { id, device });
    }

    public async Task SetSharingAsync(string uuid, string sharing)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE pdisk_volumes SET sharing = @sharing, updated_at = @now WHERE uuid = @uuid", new { uuid, sharing, now = DateTimeOffset.UtcNow });
    }

    public async Task SetMountHostAsync(long id, string host)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE pdisk_mounts SET host = @host WHERE id = @id", new { id, host });
    }

    public async Task DeleteMountAsync(long id)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("DELETE FROM pdisk_mounts WHERE id = @id", new { id });
    }

    /// <summary>Quarantined volumes whose time is up.</summary>
    public async Task<IReadOnlyList<VolumeRow>> ExpiredQuarantineAsync(DateTimeOffset now)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<VolumeRow>(
            $"SELECT {Columns} FROM pdisk_volumes WHERE state = 'QUARANTINED' AND quarantine_until <= @now ORDER BY quarantine_until", new { now })).AsList();
    }

    public static string GroupsJsonOf(IEnumerable<long> groups) => JsonSerializer.Serialize(groups.Distinct().Order().ToList());
}
