using System.Data;
using Dapper;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>A host row with what its allocations add up to.</summary>
internal sealed class HostRow
{
    public string Name { get; init; } = "";
    public string Driver { get; init; } = "";
    public long Cpus { get; init; }
    public long MemoryMib { get; init; }
    public bool Enabled { get; init; }
    public bool IsLocal { get; init; }
    public double CpuUsage { get; init; }
    public long MemoryUsedMib { get; init; }
    public string? Accelerator { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? MonitoredAt { get; init; }
    public long AllocatedCpus { get; init; }
    public long AllocatedMemoryMib { get; init; }
    public long RunningVms { get; init; }
    public string State { get; init; } = "OK";
    public string? StateReason { get; init; }
    public string? SshUser { get; init; }
    public string? SshAddress { get; init; }
    public long? SshPort { get; init; }
    public string? SshKeyFile { get; init; }
    public string? NodeRoot { get; init; }
    public bool CapacityDeclared { get; init; }
    public long MissedProbes { get; init; }
    public string? ProbeJson { get; init; }
    public DateTimeOffset? ProbedAt { get; init; }
    public string? IscsiInitiator { get; init; }
    /// <summary>An SSH node's boot disk mode: cache (default) or iscsi.</summary>
    public string? BootDisks { get; init; }
    public string? CloudUrl { get; init; }
    public string? CloudKind { get; init; }
    public string? CloudRegion { get; init; }
    public string? CloudKeyId { get; init; }
    public string? CloudSecretSealed { get; init; }
    public bool Burst { get; init; }

    /// <summary>How to reach the host when it is an SSH node, else null.</summary>
    public Platform.Host.SshTarget? Ssh => SshAddress is null ? null : new(SshUser ?? "root", SshAddress, (int)(SshPort ?? 22), SshKeyFile);

    public HostState ToState(IReadOnlySet<string>? burstTo = null) =>
        new(Name, Driver, Enabled, Cpus, MemoryMib, AllocatedCpus, AllocatedMemoryMib, RunningVms, CpuUsage, MemoryUsedMib, State, StateReason)
        {
            Burst = Driver == "cloud" && (Burst || burstTo?.Contains(Name) == true),
        };
}

/// <summary>The Scheduling module's SQL (tables sched_*).</summary>
internal sealed class SchedulingStore(Store store, SchedulingOptions? options = null)
{
    public Store Store => store;

    /// <summary>Scheduling:BurstTo: the peer clouds that take instances when no other host has room.</summary>
    readonly IReadOnlySet<string> _burstTo = new HashSet<string>(
        (options?.BurstTo ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), StringComparer.OrdinalIgnoreCase);

    const string HostQuery = """
        SELECT h.name AS Name, h.driver AS Driver, h.cpus AS Cpus, h.memory_mib AS MemoryMib, h.enabled AS Enabled, h.is_local AS IsLocal,
               h.cpu_usage AS CpuUsage, h.memory_used_mib AS MemoryUsedMib, h.accelerator AS Accelerator, h.created_at AS CreatedAt,
               h.monitored_at AS MonitoredAt, h.state AS State, h.state_reason AS StateReason, h.ssh_user AS SshUser, h.ssh_address AS SshAddress,
               h.ssh_port AS SshPort, h.ssh_key_file AS SshKeyFile, h.node_root AS NodeRoot, h.capacity_declared AS CapacityDeclared,
               h.missed_probes AS MissedProbes, h.probe_json AS ProbeJson, h.probed_at AS ProbedAt, h.iscsi_initiator AS IscsiInitiator, h.boot_disks AS BootDisks,
               h.cloud_url AS CloudUrl, h.cloud_kind AS CloudKind,
               h.cloud_region AS CloudRegion, h.cloud_key_id AS CloudKeyId, h.cloud_secret_sealed AS CloudSecretSealed, h.burst AS Burst,
               COALESCE(SUM(a.cpus), 0) AS AllocatedCpus, COALESCE(SUM(a.memory_mib), 0) AS AllocatedMemoryMib, COUNT(a.instance_id) AS RunningVms
        FROM sched_hosts h LEFT JOIN sched_allocations a ON a.host = h.name
        """;

    public async Task<IReadOnlyList<HostRow>> ListHostsAsync(IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = HostQuery + " GROUP BY h.name ORDER BY h.name";
        if (c is not null) return (await c.QueryAsync<HostRow>(sql, transaction: tx)).AsList();
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<HostRow>(sql)).AsList();
    }

    public async Task<HostRow?> FindHostAsync(string name)
    {
        await using var connection = await store.OpenAsync();
        return await connection.QuerySingleOrDefaultAsync<HostRow>(HostQuery + " WHERE h.name = @name GROUP BY h.name", new { name });
    }

    public async Task<bool> InsertHostAsync(string name, string driver, long cpus, long memoryMib, bool isLocal)
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteAsync("""
            INSERT INTO sched_hosts (name, driver, cpus, memory_mib, is_local, created_at) VALUES (@name, @driver, @cpus, @memoryMib, @isLocal, @now)
            ON CONFLICT (name) DO NOTHING
            """, new { name, driver, cpus, memoryMib, isLocal, now = DateTimeOffset.UtcNow }) == 1;
    }

    /// <summary>Adds an SSH node, in ERROR until its first probe says otherwise.</summary>
    public async Task<bool> InsertSshHostAsync(string name, long cpus, long memoryMib, bool capacityDeclared, Platform.Host.SshTarget ssh, string nodeRoot, string bootDisks = "cache")
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteAsync("""
            INSERT INTO sched_hosts (name, driver, cpus, memory_mib, is_local, created_at, state, state_reason, ssh_user, ssh_address, ssh_port, ssh_key_file,
                                     node_root, capacity_declared, iscsi_initiator, boot_disks)
            VALUES (@name, 'ssh', @cpus, @memoryMib, 0, @now, 'ERROR', 'not probed yet', @user, @address, @port, @keyFile, @nodeRoot, @capacityDeclared, @initiator, @bootDisks)
            ON CONFLICT (name) DO NOTHING
            """, new { name, cpus, memoryMib, now = DateTimeOffset.UtcNow, user = ssh.User, address = ssh.Address, port = ssh.Port, keyFile = ssh.KeyFile, nodeRoot, capacityDeclared,
                initiator = InitiatorName(), bootDisks }) == 1;
    }

    /// <summary>A node's own iSCSI initiator name: random, so a node removed and added again under the same name is not let into the old one's targets.</summary>
    static string InitiatorName() => "iqn.2011-01.eu.stratuslab.node:" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    /// <summary>Adds a peer cloud (driver cloud), in ERROR until its first probe says otherwise; its secret arrives sealed.</summary>
    public async Task<bool> InsertCloudHostAsync(string name, long cpus, long memoryMib, bool capacityDeclared, string url, string kind, string? region,
        string? keyId, string secretSealed, bool burst)
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteAsync("""
            INSERT INTO sched_hosts (name, driver, cpus, memory_mib, is_local, created_at, state, state_reason, capacity_declared,
                                     cloud_url, cloud_kind, cloud_region, cloud_key_id, cloud_secret_sealed, burst)
            VALUES (@name, 'cloud', @cpus, @memoryMib, 0, @now, 'ERROR', 'not probed yet', @capacityDeclared, @url, @kind, @region, @keyId, @secretSealed, @burst)
            ON CONFLICT (name) DO NOTHING
            """, new { name, cpus, memoryMib, now = DateTimeOffset.UtcNow, capacityDeclared, url, kind, region, keyId, secretSealed, burst }) == 1;
    }

    /// <summary>Records a probe that reached the node: its state, what it found and, unless declared, its capacity.</summary>
    public async Task SetProbedAsync(string name, string state, string? reason, long? cpus, long? memoryMib, double cpuUsage, long memoryUsedMib, string accelerator, string probeJson)
    {
        await using var connection = await store.OpenAsync();
        var now = DateTimeOffset.UtcNow;
        await connection.ExecuteAsync("""
            UPDATE sched_hosts SET state = @state, state_reason = @reason, missed_probes = 0, probe_json = @probeJson, probed_at = @now, monitored_at = @now,
                cpu_usage = @cpuUsage, memory_used_mib = @memoryUsedMib, accelerator = @accelerator,
                cpus = CASE WHEN capacity_declared = 0 AND @cpus IS NOT NULL THEN @cpus ELSE cpus END,
                memory_mib = CASE WHEN capacity_declared = 0 AND @memoryMib IS NOT NULL THEN @memoryMib ELSE memory_mib END
            WHERE name = @name
            """, new { name, state, reason, cpus, memoryMib, cpuUsage, memoryUsedMib, accelerator, probeJson, now });
    }

    /// <summary>Records a probe that did not reach the node; the host goes to ERROR when <paramref name="errorNow"/> or after <paramref name="maxMissed"/> misses in a row. Returns the new miss count.</summary>
    public async Task<long> SetProbeMissedAsync(string name, string reason, bool errorNow, int maxMissed)
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("""
            UPDATE sched_hosts SET missed_probes = missed_probes + 1, probed_at = @now,
                state = CASE WHEN @errorNow OR missed_probes + 1 >= @maxMissed THEN 'ERROR' ELSE state END,
                state_reason = CASE WHEN @errorNow OR missed_probes + 1 >= @maxMissed THEN @reason ELSE state_reason END
            WHERE name = @name
            RETURNING missed_probes
            """, new { name, reason, errorNow, maxMissed, now = DateTimeOffset.UtcNow });
    }

    public async Task UpdateLocalHostAsync(string name, string driver, long cpus, long memoryMib)
    {
        await using var connection = await store.OpenAsync();
        await connection.ExecuteAsync("""
            INSERT INTO sched_hosts (name, driver, cpus, memory_mib, is_local, created_at) VALUES (@name, @driver, @cpus, @memoryMib, 1, @now)
            ON CONFLICT (name) DO UPDATE SET driver = excluded.driver, cpus = excluded.cpus, memory_mib = excluded.memory_mib, is_local = 1
            """, new { name, driver, cpus, memoryMib, now = DateTimeOffset.UtcNow });
    }

    public async Task SetMeasuredAsync(string name, double cpuUsage, long memoryUsedMib, string? accelerator)
    {
        await using var connection = await store.OpenAsync();
        await connection.ExecuteAsync("""
            UPDATE sched_hosts SET cpu_usage = @cpuUsage, memory_used_mib = @memoryUsedMib, accelerator = COALESCE(@accelerator, accelerator), monitored_at = @now
            WHERE name = @name
            """, new { name, cpuUsage, memoryUsedMib, accelerator, now = DateTimeOffset.UtcNow });
    }

    public async Task<bool> SetEnabledAsync(string name, bool enabled)
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteAsync("UPDATE sched_hosts SET enabled = @enabled WHERE name = @name", new { name, enabled }) == 1;
    }

    public async Task<int> DeleteHostAsync(string name)
    {
        return await store.WriteAsync(async (c, tx) =>
        {
            var held = await c.ExecuteScalarAsync<long>("SELECT count(*) FROM sched_allocations WHERE host = @name", new { name }, tx);
            if (held > 0) return -(int)held;
            return await c.ExecuteAsync("DELETE FROM sched_hosts WHERE name = @name", new { name }, tx);
        });
    }

    /// <summary>
    /// Places each request in one write transaction: hosts are re-read inside it, so two passes (or a pass and a
    /// host change) can never over-commit a host. Returns the decision per instance.
    /// </summary>
    public Task<IReadOnlyDictionary<long, PlacementDecision>> PlaceAsync(IReadOnlyList<PlacementRequest> requests) =>
        store.WriteAsync<IReadOnlyDictionary<long, PlacementDecision>>(async (c, tx) =>
        {
            var hosts = (await ListHostsAsync(c, tx)).Select(h => h.ToState(_burstTo)).ToDictionary(h => h.Name, StringComparer.OrdinalIgnoreCase);
            var held = (await c.QueryAsync<long>("SELECT instance_id FROM sched_allocations", transaction: tx)).ToHashSet();
            var decisions = new Dictionary<long, PlacementDecision>();
            var now = DateTimeOffset.UtcNow;
            foreach (var request in requests)
            {
                if (held.Contains(request.InstanceId)) continue;
                var decision = Placement.Choose(request, hosts.Values);
                decisions[request.InstanceId] = decision;
                if (decision.Host is null) continue;
                await c.ExecuteAsync("""
                    INSERT INTO sched_allocations (instance_id, host, cpus, memory_mib, created_at) VALUES (@id, @host, @cpu, @memory, @now)
                    """, new { id = request.InstanceId, host = decision.Host, cpu = request.Cpu, memory = request.MemoryMiB, now }, tx);
                var h = hosts[decision.Host];
                hosts[decision.Host] = h with { AllocatedCpus = h.AllocatedCpus + request.Cpu, AllocatedMemoryMiB = h.AllocatedMemoryMiB + request.MemoryMiB, RunningVms = h.RunningVms + 1 };
            }
            return decisions;
        });

    /// <summary>
    /// Moves an instance's allocation off <paramref name="fromHost"/> to the host <see cref="Placement.Choose"/> picks among
    /// the others, in one write transaction (so no placement races it); the allocation stays when none fits.
    /// </summary>
    public Task<PlacementDecision> RelocateAsync(PlacementRequest request, string fromHost) =>
        store.WriteAsync(async (c, tx) =>
        {
            var hosts = (await ListHostsAsync(c, tx)).Where(h => !string.Equals(h.Name, fromHost, StringComparison.OrdinalIgnoreCase)).Select(h => h.ToState(_burstTo));
            var decision = Placement.Choose(request, hosts);
            if (decision.Host is null) return decision;
            var moved = await c.ExecuteAsync("UPDATE sched_allocations SET host = @host WHERE instance_id = @id",
                new { id = request.InstanceId, host = decision.Host }, tx);
            if (moved == 0)
                await c.ExecuteAsync("""
                    INSERT INTO sched_allocations (instance_id, host, cpus, memory_mib, created_at) VALUES (@id, @host, @cpu, @memory, @now)
                    """, new { id = request.InstanceId, host = decision.Host, cpu = request.Cpu, memory = request.MemoryMiB, now = DateTimeOffset.UtcNow }, tx);
            return decision;
        });

    public async Task MoveAllocationAsync(long instanceId, string host)
    {
        await using var connection = await store.OpenAsync();
        await connection.ExecuteAsync("UPDATE sched_allocations SET host = @host WHERE instance_id = @instanceId", new { instanceId, host });
    }

    public async Task<int> ReleaseAsync(long instanceId)
    {
        await using var connection = await store.OpenAsync();
        return await connection.ExecuteAsync("DELETE FROM sched_allocations WHERE instance_id = @instanceId", new { instanceId });
    }

    public async Task<IReadOnlyList<long>> AllocatedInstancesAsync()
    {
        await using var connection = await store.OpenAsync();
        return (await connection.QueryAsync<long>("SELECT instance_id FROM sched_allocations")).AsList();
    }
}
