using System.Data;
using Dapper;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Compute;

/// <summary>One instance as stored.</summary>
public sealed class InstanceRow
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public long OwnerId { get; init; }
    public long GroupId { get; init; }
    public long Permissions { get; init; }
    public string State { get; init; } = "";
    public string? FailedStep { get; init; }
    public string? FailureReason { get; init; }
    public bool Ready { get; init; }
    public string Image { get; init; } = "";
    /// <summary>The resolved image: marketplace:ID, url:URL or volume:UUID.</summary>
    public string? ImageRef { get; init; }
    public string? InstanceType { get; init; }
    public long Cpu { get; init; }
    public long MemoryMib { get; init; }
    public string? Host { get; init; }
    public string Driver { get; init; } = "";
    public string? Accelerator { get; init; }
    public string ContextJson { get; init; } = "{}";
    public string SshKeysJson { get; init; } = "[]";
    public string? UserData { get; init; }
    public string AdminJson { get; init; } = "{}";
    public string PortForwardsJson { get; init; } = "[]";
    /// <summary>The networks the request named (empty: the default network) and the extra guest ports to forward.</summary>
    public string NetworksJson { get; init; } = "[]";
    public string ForwardPortsJson { get; init; } = "[]";
    /// <summary>The NICs the instance got in PROLOG: [{"index", "network", "ip", "mac"}].</summary>
    public string NicsJson { get; init; } = "[]";
    public string? VmDir { get; init; }
    /// <summary>The boot disk QEMU opens (a Pdisk volume): {"volume":..., "path":..., "format":...}.</summary>
    public string? BootDiskJson { get; init; }
    /// <summary>StratusLab's --save: on shutdown the disk becomes a new image.</summary>
    public bool SaveImage { get; init; }
    public string? SavedImage { get; init; }
    public long? Pid { get; init; }
    public string? SchedulingMessage { get; init; }
    public bool QuotaHeld { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? PlacedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? ReadyAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }

    public InstanceState StateValue => Enum.Parse<InstanceState>(State, ignoreCase: true);
}

/// <summary>A new instance to insert.</summary>
public sealed record NewInstance(
    string? Name, long OwnerId, long GroupId, long Permissions, string Image, string? ImageRef, string? InstanceType,
    long Cpu, long MemoryMib, string Driver, string ContextJson, string SshKeysJson, string? UserData, string AdminJson, string? GuestTokenHash,
    string NetworksJson = "[]", string ForwardPortsJson = "[]", bool SaveImage = false);

/// <summary>An instance type.</summary>
public sealed record InstanceTypeRow(string Name, long Cpu, long MemoryMib, bool Builtin, DateTimeOffset CreatedAt)
{
    public InstanceTypeRow(string name, long cpu, long memoryMib, long builtin, string createdAt)
        : this(name, cpu, memoryMib, builtin != 0,
            DateTimeOffset.Parse(createdAt, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal)) { }
}

/// <summary>The Compute module's SQL (tables compute_*).</summary>
public sealed class ComputeStore(Store store)
{
    public Store Store => store;

    const string Columns = """
        id AS Id, name AS Name, owner_id AS OwnerId, group_id AS GroupId, permissions AS Permissions, state AS State,
        failed_step AS FailedStep, failure_reason AS FailureReason, ready AS Ready, image AS Image, image_ref AS ImageRef,
        instance_type AS InstanceType, cpu AS Cpu, memory_mib AS MemoryMib, host AS Host, driver AS Driver, accelerator AS Accelerator,
        context_json AS ContextJson, ssh_keys_json AS SshKeysJson, user_data AS UserData, admin_json AS AdminJson,
        port_forwards_json AS PortForwardsJson, networks_json AS NetworksJson, forward_ports_json AS ForwardPortsJson, nics_json AS NicsJson, vm_dir AS VmDir, boot_disk_json AS BootDiskJson, save_image AS SaveImage, saved_image AS SavedImage, pid AS Pid, scheduling_message AS SchedulingMessage,
        quota_held AS QuotaHeld, created_at AS CreatedAt, updated_at AS UpdatedAt, placed_at AS PlacedAt, started_at AS StartedAt, ready_at AS ReadyAt, ended_at AS EndedAt
        """;

    public async Task<IReadOnlyList<long>> InsertInstancesAsync(IReadOnlyList<NewInstance> instances)
    {
        return await store.WriteAsync(async (c, tx) =>
        {
            var ids = new List<long>();
            var now = DateTimeOffset.UtcNow;
            foreach (var i in instances)
            {
                var id = await c.ExecuteScalarAsync<long>("""
                    INSERT INTO compute_instances (name, owner_id, group_id, permissions, state, image, image_ref, instance_type, cpu, memory_mib,
                        driver, context_json, ssh_keys_json, user_data, admin_json, guest_token_hash, networks_json, forward_ports_json, save_image, quota_held, created_at, updated_at)
                    VALUES ('', @OwnerId, @GroupId, @Permissions, 'PENDING', @Image, @ImageRef, @InstanceType, @Cpu, @MemoryMib,
                        @Driver, @ContextJson, @SshKeysJson, @UserData, @AdminJson, @GuestTokenHash, @NetworksJson, @ForwardPortsJson, @SaveImage, 1, @now, @now)
                    RETURNING id
                    """, new { i.OwnerId, i.GroupId, i.Permissions, i.Image, i.ImageRef, i.InstanceType, i.Cpu, i.MemoryMib, i.Driver,
                        i.ContextJson, i.SshKeysJson, i.UserData, i.AdminJson, i.GuestTokenHash, i.NetworksJson, i.ForwardPortsJson, i.SaveImage, now }, tx);
                await c.ExecuteAsync("UPDATE compute_instances SET name = @name WHERE id = @id",
                    new { id, name = i.Name is null ? $"vm-{id}" : instances.Count > 1 ? $"{i.Name}-{ids.Count + 1}" : i.Name }, tx);
                ids.Add(id);
            }
            return (IReadOnlyList<long>)ids;
        });
    }

    public async Task<InstanceRow?> GetAsync(long id)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<InstanceRow>($"SELECT {Columns} FROM compute_instances WHERE id = @id", new { id });
    }

    public async Task<InstanceRow?> FindByGuestTokenHashAsync(string hash)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<InstanceRow>($"SELECT {Columns} FROM compute_instances WHERE guest_token_hash = @hash", new { hash });
    }

    /// <summary>Instances in any of the states; admins see all, others their own or those their group/other bits allow (filtered by the caller).</summary>
    public async Task<IReadOnlyList<InstanceRow>> ListAsync(IReadOnlyCollection<string>? states, long? ownerId, int limit, int offset)
    {
        await using var c = await store.OpenAsync();
        var sql = $"SELECT {Columns} FROM compute_instances WHERE 1 = 1";
        if (states is { Count: > 0 }) sql += " AND state IN @states";
        if (ownerId is not null) sql += " AND owner_id = @ownerId";
        sql += " ORDER BY id LIMIT @limit OFFSET @offset";
        return (await c.QueryAsync<InstanceRow>(sql, new { states, ownerId, limit, offset })).AsList();
    }

    /// <summary>Moves an instance from one of <paramref name="from"/> to <paramref name="to"/>; false when it was in another state.</summary>
    public async Task<bool> TransitionAsync(long id, IReadOnlyCollection<InstanceState> from, InstanceState to, object? extra = null, string? extraSql = null)
    {
        await using var c = await store.OpenAsync();
        var parameters = new DynamicParameters(extra);
        parameters.Add("id", id);
        parameters.Add("to", to.ToString().ToUpperInvariant());
        parameters.Add("from", from.Select(s => s.ToString().ToUpperInvariant()).ToList());
        parameters.Add("now", DateTimeOffset.UtcNow);
        var set = "state = @to, updated_at = @now" + (extraSql is null ? "" : ", " + extraSql);
        return await c.ExecuteAsync($"UPDATE compute_instances SET {set} WHERE id = @id AND state IN @from", parameters) == 1;
    }

    public async Task UpdateAsync(long id, string setSql, object values)
    {
        await using var c = await store.OpenAsync();
        var parameters = new DynamicParameters(values);
        parameters.Add("id", id);
        parameters.Add("now", DateTimeOffset.UtcNow);
        await c.ExecuteAsync($"UPDATE compute_instances SET {setSql}, updated_at = @now WHERE id = @id", parameters);
    }

    /// <summary>Clears quota_held and returns true exactly once, so quota is given back once.</summary>
    public async Task<bool> TakeQuotaHeldAsync(long id)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("UPDATE compute_instances SET quota_held = 0 WHERE id = @id AND quota_held = 1", new { id }) == 1;
    }

    public async Task<IReadOnlyList<InstanceTypeRow>> ListTypesAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<InstanceTypeRow>("""
            SELECT name AS Name, cpu AS Cpu, memory_mib AS MemoryMib, builtin AS Builtin, created_at AS CreatedAt
            FROM compute_instance_types ORDER BY memory_mib, cpu, name
            """)).AsList();
    }

    public async Task<bool> InsertTypeAsync(string name, long cpu, long memoryMib)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("""
            INSERT INTO compute_instance_types (name, cpu, memory_mib, builtin, created_at) VALUES (@name, @cpu, @memoryMib, 0, @now)
            ON CONFLICT (name) DO NOTHING
            """, new { name, cpu, memoryMib, now = DateTimeOffset.UtcNow }) == 1;
    }

    public async Task<int> DeleteTypeAsync(string name)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("DELETE FROM compute_instance_types WHERE name = @name AND builtin = 0", new { name });
    }

    public async Task SetSimulatedVmAsync(long instanceId, string? state)
    {
        await using var c = await store.OpenAsync();
        if (state is null) await c.ExecuteAsync("DELETE FROM compute_simulated_vms WHERE instance_id = @instanceId", new { instanceId });
        else await c.ExecuteAsync("""
            INSERT INTO compute_simulated_vms (instance_id, state) VALUES (@instanceId, @state)
            ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state
            """, new { instanceId, state });
    }

    public async Task<string?> GetSimulatedVmAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<string>("SELECT state FROM compute_simulated_vms WHERE instance_id = @instanceId", new { instanceId });
    }

    public async Task<IReadOnlyList<long>> ListSimulatedVmsAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<long>("SELECT instance_id FROM compute_simulated_vms")).AsList();
    }
}
