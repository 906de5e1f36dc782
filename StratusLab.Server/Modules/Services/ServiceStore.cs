using Dapper;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Services;

internal sealed class ServiceRow
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public long OwnerId { get; init; }
    public string State { get; init; } = "";
    public string? Reason { get; init; }
    public string Template { get; init; } = "";
    public long CreatedAt { get; init; }
    public long UpdatedAt { get; init; }
}

internal sealed class RoleRow
{
    public long ServiceId { get; init; }
    public string Name { get; init; } = "";
    public int Position { get; init; }
    public int Cardinality { get; set; }
    public bool Started { get; set; }
    public string Streaks { get; set; } = "[]";
    public long? CooldownSecs { get; set; }
    public long? CooldownUntil { get; set; }
    public long? LastEvaluated { get; set; }
}

internal sealed class MemberRow
{
    public long InstanceId { get; init; }
    public long ServiceId { get; init; }
    public string Role { get; init; } = "";
    public long JoinedAt { get; init; }
    public bool Leaving { get; init; }
    public bool Ended { get; init; }
}

internal sealed class DecisionRow
{
    public long Id { get; init; }
    public long ServiceId { get; init; }
    public long At { get; init; }
    public string Role { get; init; } = "";
    public string Kind { get; init; } = "";
    public string? Rule { get; init; }
    public int FromCount { get; init; }
    public int ToCount { get; init; }
    public string Reason { get; init; } = "";
    public string Vals { get; init; } = "{}";
}

/// <summary>The Services module's SQL: services, their roles' running state, members and decisions.</summary>
internal sealed class ServiceStore(Store store)
{
    const string ServiceColumns = "id AS Id, name AS Name, owner_id AS OwnerId, state AS State, reason AS Reason, template AS Template, created_at AS CreatedAt, updated_at AS UpdatedAt";
    const string RoleColumns = """
        service_id AS ServiceId, name AS Name, position AS Position, cardinality AS Cardinality, started AS Started, streaks AS Streaks,
        cooldown_secs AS CooldownSecs, cooldown_until AS CooldownUntil, last_evaluated AS LastEvaluated
        """;
    const string MemberColumns = "instance_id AS InstanceId, service_id AS ServiceId, role AS Role, joined_at AS JoinedAt, leaving AS Leaving, ended AS Ended";
    const string DecisionColumns = "id AS Id, service_id AS ServiceId, at AS At, role AS Role, kind AS Kind, rule AS Rule, from_count AS FromCount, to_count AS ToCount, reason AS Reason, vals AS Vals";

    static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>The service and its roles, in one transaction.</summary>
    public Task<long> CreateAsync(string name, long ownerId, string template, IReadOnlyList<(string Name, int Cardinality)> roles) =>
        store.WriteAsync(async (c, tx) =>
        {
            var now = Now;
            var id = await c.ExecuteScalarAsync<long>("""
                INSERT INTO svc_services (name, owner_id, state, reason, template, created_at, updated_at)
                VALUES (@name, @ownerId, 'DEPLOYING', 'deploying the roles in dependency order', @template, @now, @now) RETURNING id
                """, new { name, ownerId, template, now }, tx);
            for (var i = 0; i < roles.Count; i++)
                await c.ExecuteAsync("INSERT INTO svc_roles (service_id, name, position, cardinality) VALUES (@id, @name, @i, @cardinality)",
                    new { id, name = roles[i].Name, i, cardinality = roles[i].Cardinality }, tx);
            return id;
        });

    public async Task<ServiceRow?> GetAsync(long id)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<ServiceRow>($"SELECT {ServiceColumns} FROM svc_services WHERE id = @id", new { id });
    }

    /// <summary>Services of one owner (null: everyone's), newest first; <paramref name="activeOnly"/> leaves DONE out.</summary>
    public async Task<List<ServiceRow>> ListAsync(long? ownerId, bool activeOnly = false)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<ServiceRow>($"""
            SELECT {ServiceColumns} FROM svc_services
            WHERE (@ownerId IS NULL OR owner_id = @ownerId) AND (@activeOnly = 0 OR state <> 'DONE') ORDER BY id DESC
            """, new { ownerId, activeOnly })).AsList();
    }

    public async Task SetStateAsync(long id, string state, string? reason)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE svc_services SET state = @state, reason = @reason, updated_at = @now WHERE id = @id AND (state <> @state OR IFNULL(reason, '') <> IFNULL(@reason, ''))",
            new { id, state, reason, now = Now });
    }

    public async Task<List<RoleRow>> RolesAsync(long serviceId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<RoleRow>($"SELECT {RoleColumns} FROM svc_roles WHERE service_id = @serviceId ORDER BY position", new { serviceId })).AsList();
    }

    public async Task SaveRoleAsync(RoleRow r)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("""
            UPDATE svc_roles SET cardinality = @Cardinality, started = @Started, streaks = @Streaks, cooldown_secs = @CooldownSecs,
                cooldown_until = @CooldownUntil, last_evaluated = @LastEvaluated
            WHERE service_id = @ServiceId AND name = @Name
            """, r);
    }

    /// <summary>The members not yet ended (leaving ones included), oldest first.</summary>
    /// <summary>How many members a role ever had (ended ones too): numbers member names so that each member has its own hostname.</summary>
    public async Task<int> MembersEverAsync(long serviceId, string role)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteScalarAsync<int>("SELECT count(*) FROM svc_members WHERE service_id = @serviceId AND role = @role", new { serviceId, role });
    }

    public async Task<List<MemberRow>> MembersAsync(long serviceId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<MemberRow>($"SELECT {MemberColumns} FROM svc_members WHERE service_id = @serviceId AND ended = 0 ORDER BY joined_at, instance_id",
            new { serviceId })).AsList();
    }

    public async Task<MemberRow?> MemberAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<MemberRow>($"SELECT {MemberColumns} FROM svc_members WHERE instance_id = @instanceId", new { instanceId });
    }

    public async Task AddMemberAsync(long serviceId, string role, long instanceId)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("INSERT INTO svc_members (instance_id, service_id, role, joined_at) VALUES (@instanceId, @serviceId, @role, @now)",
            new { instanceId, serviceId, role, now = Now });
    }

    public async Task MarkLeavingAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE svc_members SET leaving = 1 WHERE instance_id = @instanceId", new { instanceId });
    }

    public async Task MarkEndedAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE svc_members SET ended = 1 WHERE instance_id = @instanceId", new { instanceId });
    }

    public async Task<long> AddDecisionAsync(long serviceId, string role, string kind, string? rule, int from, int to, string reason, string vals)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteScalarAsync<long>("""
            INSERT INTO svc_decisions (service_id, at, role, kind, rule, from_count, to_count, reason, vals)
            VALUES (@serviceId, @now, @role, @kind, @rule, @from, @to, @reason, @vals) RETURNING id
            """, new { serviceId, now = Now, role, kind, rule, from, to, reason, vals });
    }

    /// <summary>The latest <paramref name="limit"/> decisions, oldest first.</summary>
    public async Task<List<DecisionRow>> DecisionsAsync(long serviceId, int limit = 200)
    {
        await using var c = await store.OpenAsync();
        var rows = (await c.QueryAsync<DecisionRow>($"SELECT {DecisionColumns} FROM svc_decisions WHERE service_id = @serviceId ORDER BY id DESC LIMIT @limit",
            new { serviceId, limit })).AsList();
        rows.Reverse();
        return rows;
    }
}
