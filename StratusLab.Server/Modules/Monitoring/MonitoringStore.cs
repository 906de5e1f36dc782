using System.Data;
using Dapper;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Monitoring;

/// <summary>One raw or downsampled sample of an instance's counters.</summary>
internal sealed class InstanceSampleRow
{
    public long InstanceId { get; init; }
    public long Resolution { get; init; }
    public long At { get; init; }
    public double CpuSeconds { get; init; }
    public long? RssBytes { get; init; }
    public long? DiskReadBytes { get; init; }
    public long? DiskWriteBytes { get; init; }
    public long? DiskReadOps { get; init; }
    public long? DiskWriteOps { get; init; }
    public long? NetRxBytes { get; init; }
    public long? NetTxBytes { get; init; }
    public bool Simulated { get; init; }
    public long? BalloonBytes { get; init; }
    public long? GuestMemoryTotalBytes { get; init; }
    public long? GuestMemoryAvailableBytes { get; init; }
}

internal sealed class KpiSampleRow
{
    public long InstanceId { get; init; }
    public string Name { get; init; } = "";
    public long Resolution { get; init; }
    public long At { get; init; }
    public double Value { get; init; }
    public double Min { get; init; }
    public double Max { get; init; }
    public long Count { get; init; }
}

internal sealed class HostSampleRow
{
    public string Host { get; init; } = "";
    public long Resolution { get; init; }
    public long At { get; init; }
    public long Cpus { get; init; }
    public long MemoryMib { get; init; }
    public long AllocatedCpus { get; init; }
    public long AllocatedMemoryMib { get; init; }
    public long RunningVms { get; init; }
    public double CpuUsagePercent { get; init; }
    public long MemoryUsedMib { get; init; }
    public double? Load1 { get; init; }
}

/// <summary>The last counters seen of an instance (accounting adds the deltas).</summary>
internal sealed class LastRow
{
    public long InstanceId { get; init; }
    public long At { get; init; }
    public string State { get; init; } = "";
    public double? CpuSeconds { get; init; }
    public long? NetRxBytes { get; init; }
    public long? NetTxBytes { get; init; }
    public long? DiskReadBytes { get; init; }
    public long? DiskWriteBytes { get; init; }
}

/// <summary>One usage record (an instance over one accounting period).</summary>
internal sealed class UsageRow
{
    public long InstanceId { get; init; }
    public long PeriodStart { get; init; }
    public long PeriodEnd { get; init; }
    public string InstanceName { get; init; } = "";
    public long OwnerId { get; init; }
    public string Owner { get; init; } = "";
    public long GroupId { get; init; }
    public string GroupName { get; init; } = "";
    public string Image { get; init; } = "";
    public string? InstanceType { get; init; }
    public long Cpu { get; init; }
    public long MemoryMib { get; init; }
    public string? Host { get; init; }
    public long CreatedAt { get; init; }
    public long? StartedAt { get; init; }
    public long? EndedAt { get; init; }
    public string State { get; init; } = "";
    public double WallSeconds { get; init; }
    public double CpuSeconds { get; init; }
    public long NetRxBytes { get; init; }
    public long NetTxBytes { get; init; }
    public long DiskReadBytes { get; init; }
    public long DiskWriteBytes { get; init; }
    public long StateChanges { get; init; }
    public bool Simulated { get; init; }
    public long UpdatedAt { get; init; }
    public long? DiskBytes { get; init; }
}

/// <summary>The Monitoring module's SQL (tables mon_* and acct_*); times are unix seconds.</summary>
internal sealed class MonitoringStore(Store store)
{
    const string InstanceColumns = """
        instance_id AS InstanceId, resolution AS Resolution, at AS At, cpu_seconds AS CpuSeconds, rss_bytes AS RssBytes,
        disk_read_bytes AS DiskReadBytes, disk_write_bytes AS DiskWriteBytes, disk_read_ops AS DiskReadOps, disk_write_ops AS DiskWriteOps,
        net_rx_bytes AS NetRxBytes, net_tx_bytes AS NetTxBytes, simulated AS Simulated, balloon_bytes AS BalloonBytes,
        guest_memory_total_bytes AS GuestMemoryTotalBytes, guest_memory_available_bytes AS GuestMemoryAvailableBytes
        """;

    const string UsageColumns = """
        instance_id AS InstanceId, period_start AS PeriodStart, period_end AS PeriodEnd, instance_name AS InstanceName, owner_id AS OwnerId,
        owner AS Owner, group_id AS GroupId, group_name AS GroupName, image AS Image, instance_type AS InstanceType, cpu AS Cpu,
        memory_mib AS MemoryMib, host AS Host, created_at AS CreatedAt, started_at AS StartedAt, ended_at AS EndedAt, state AS State,
        wall_seconds AS WallSeconds, cpu_seconds AS CpuSeconds, net_rx_bytes AS NetRxBytes, net_tx_bytes AS NetTxBytes,
        disk_read_bytes AS DiskReadBytes, disk_write_bytes AS DiskWriteBytes, state_changes AS StateChanges, simulated AS Simulated, updated_at AS UpdatedAt,
        disk_bytes AS DiskBytes
        """;

    public async Task<Dictionary<long, LastRow>> LoadLastAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<LastRow>("""
            SELECT instance_id AS InstanceId, at AS At, state AS State, cpu_seconds AS CpuSeconds, net_rx_bytes AS NetRxBytes,
                   net_tx_bytes AS NetTxBytes, disk_read_bytes AS DiskReadBytes, disk_write_bytes AS DiskWriteBytes FROM mon_last
            """)).ToDictionary(r => r.InstanceId);
    }

    /// <summary>One pass, in one transaction: the raw samples, the host samples, the usage records and the last counters.</summary>
    public async Task WritePassAsync(IReadOnlyList<InstanceSampleRow> samples, IReadOnlyList<HostSampleRow> hosts,
        IReadOnlyList<UsageRow> usage, IReadOnlyList<LastRow> last, IReadOnlyList<long> forget)
    {
        await using var c = await store.OpenAsync();
        await using var tx = await c.BeginTransactionAsync();
        await c.ExecuteAsync("""
            INSERT OR REPLACE INTO mon_instance_samples (instance_id, resolution, at, cpu_seconds, rss_bytes, disk_read_bytes, disk_write_bytes,
                disk_read_ops, disk_write_ops, net_rx_bytes, net_tx_bytes, simulated, balloon_bytes, guest_memory_total_bytes, guest_memory_available_bytes)
            VALUES (@InstanceId, 0, @At, @CpuSeconds, @RssBytes, @DiskReadBytes, @DiskWriteBytes, @DiskReadOps, @DiskWriteOps, @NetRxBytes, @NetTxBytes, @Simulated,
                @BalloonBytes, @GuestMemoryTotalBytes, @GuestMemoryAvailableBytes)
            """, samples, tx);
        await c.ExecuteAsync("""
            INSERT OR REPLACE INTO mon_host_samples (host, resolution, at, cpus, memory_mib, allocated_cpus, allocated_memory_mib, running_vms,
                cpu_usage_percent, memory_used_mib, load1)
            VALUES (@Host, 0, @At, @Cpus, @MemoryMib, @AllocatedCpus, @AllocatedMemoryMib, @RunningVms, @CpuUsagePercent, @MemoryUsedMib, @Load1)
            """, hosts, tx);
        await c.ExecuteAsync("""
            INSERT INTO acct_usage (instance_id, period_start, period_end, instance_name, owner_id, owner, group_id, group_name, image, instance_type,
                cpu, memory_mib, host, created_at, started_at, ended_at, state, wall_seconds, cpu_seconds, net_rx_bytes, net_tx_bytes,
                disk_read_bytes, disk_write_bytes, state_changes, simulated, updated_at, disk_bytes)
            VALUES (@InstanceId, @PeriodStart, @PeriodEnd, @InstanceName, @OwnerId, @Owner, @GroupId, @GroupName, @Image, @InstanceType,
                @Cpu, @MemoryMib, @Host, @CreatedAt, @StartedAt, @EndedAt, @State, @WallSeconds, @CpuSeconds, @NetRxBytes, @NetTxBytes,
                @DiskReadBytes, @DiskWriteBytes, @StateChanges, @Simulated, @UpdatedAt, @DiskBytes)
            ON CONFLICT (instance_id, period_start) DO UPDATE SET
                host = COALESCE(excluded.host, host), started_at = COALESCE(excluded.started_at, started_at), ended_at = excluded.ended_at,
                state = excluded.state, wall_seconds = wall_seconds + excluded.wall_seconds, cpu_seconds = cpu_seconds + excluded.cpu_seconds,
                net_rx_bytes = net_rx_bytes + excluded.net_rx_bytes, net_tx_bytes = net_tx_bytes + excluded.net_tx_bytes,
                disk_read_bytes = disk_read_bytes + excluded.disk_read_bytes, disk_write_bytes = disk_write_bytes + excluded.disk_write_bytes,
                state_changes = state_changes + excluded.state_changes, simulated = MAX(simulated, excluded.simulated), updated_at = excluded.updated_at,
                disk_bytes = CASE WHEN excluded.disk_bytes IS NULL THEN disk_bytes ELSE MAX(COALESCE(disk_bytes, 0), excluded.disk_bytes) END
            """, usage, tx);
        await c.ExecuteAsync("""
            INSERT OR REPLACE INTO mon_last (instance_id, at, state, cpu_seconds, net_rx_bytes, net_tx_bytes, disk_read_bytes, disk_write_bytes)
            VALUES (@InstanceId, @At, @State, @CpuSeconds, @NetRxBytes, @NetTxBytes, @DiskReadBytes, @DiskWriteBytes)
            """, last, tx);
        if (forget.Count > 0) await c.ExecuteAsync("DELETE FROM mon_last WHERE instance_id IN @forget", new { forget }, tx);
        await tx.CommitAsync();
    }

    public async Task<IReadOnlyList<InstanceSampleRow>> InstanceSamplesAsync(long instanceId, long resolution, long from, long to)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<InstanceSampleRow>($"""
            SELECT {InstanceColumns} FROM mon_instance_samples
            WHERE instance_id = @instanceId AND resolution = @resolution AND at >= @from AND at <= @to ORDER BY at
            """, new { instanceId, resolution, from, to })).AsList();
    }

    public async Task<IReadOnlyList<InstanceSampleRow>> LatestInstanceSamplesAsync(int limit)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<InstanceSampleRow>($"""
            SELECT {InstanceColumns} FROM mon_instance_samples s
            WHERE resolution = 0 AND at = (SELECT max(at) FROM mon_instance_samples WHERE resolution = 0)
            ORDER BY instance_id DESC LIMIT @limit
            """, new { limit })).AsList();
    }

    public async Task<IReadOnlyList<KpiSampleRow>> KpiSamplesAsync(IReadOnlyCollection<long> instanceIds, string? name, long resolution, long from, long to)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<KpiSampleRow>($"""
            SELECT instance_id AS InstanceId, name AS Name, resolution AS Resolution, at AS At, value AS Value, min AS Min, max AS Max, count AS Count
            FROM mon_kpi_samples
            WHERE instance_id IN @instanceIds AND resolution = @resolution AND at >= @from AND at <= @to {(name is null ? "" : "AND name = @name")}
            ORDER BY instance_id, name, at
            """, new { instanceIds, name, resolution, from, to })).AsList();
    }

    public async Task<IReadOnlyList<HostSampleRow>> HostSamplesAsync(string host, long resolution, long from, long to)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<HostSampleRow>("""
            SELECT host AS Host, resolution AS Resolution, at AS At, cpus AS Cpus, memory_mib AS MemoryMib, allocated_cpus AS AllocatedCpus,
                   allocated_memory_mib AS AllocatedMemoryMib, running_vms AS RunningVms, cpu_usage_percent AS CpuUsagePercent,
                   memory_used_mib AS MemoryUsedMib, load1 AS Load1
            FROM mon_host_samples WHERE host = @host AND resolution = @resolution AND at >= @from AND at <= @to ORDER BY at
            """, new { host, resolution, from, to })).AsList();
    }

    /// <summary>The KPI names an instance has reported within the raw retention.</summary>
    public async Task<IReadOnlyList<string>> KpiNamesAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<string>("SELECT DISTINCT name FROM mon_kpi_samples WHERE instance_id = @instanceId", new { instanceId })).AsList();
    }

    public async Task InsertKpisAsync(long instanceId, long at, IReadOnlyDictionary<string, double> values)
    {
        await using var c = await store.OpenAsync();
        await using var tx = await c.BeginTransactionAsync();
        // Two reports within one second: the later value stands for that second.
        await c.ExecuteAsync("""
            INSERT OR REPLACE INTO mon_kpi_samples (instance_id, name, resolution, at, value, min, max, count) VALUES (@instanceId, @name, 0, @at, @value, @value, @value, 1)
            """, values.Select(kv => new { instanceId, name = kv.Key, at, value = kv.Value }), tx);
        await tx.CommitAsync();
    }

    /// <summary>
    /// Rolls raw samples of every complete bucket since the last roll-up into buckets of <paramref name="bucket"/> seconds
    /// (counters: their last value; RSS and KPIs: mean, with min/max/count for KPIs; hosts: means), then drops raw samples
    /// older than <paramref name="rawBefore"/> and buckets older than <paramref name="rollupBefore"/>.
    /// </summary>
    public async Task<(int Rolled, int Dropped)> RollupAsync(long now, long bucket, long rawBefore, long rollupBefore)
    {
        await using var c = await store.OpenAsync();
        await using var tx = await c.BeginTransactionAsync();
        var until = now / bucket * bucket;
        var from = await c.ExecuteScalarAsync<long?>("SELECT until FROM mon_rollup_state WHERE name = 'samples'", transaction: tx)
            ?? await c.ExecuteScalarAsync<long?>("""
                SELECT min(m) FROM (SELECT min(at) AS m FROM mon_instance_samples WHERE resolution = 0 UNION ALL
                    SELECT min(at) FROM mon_kpi_samples WHERE resolution = 0 UNION ALL SELECT min(at) FROM mon_host_samples WHERE resolution = 0)
                """, transaction: tx) / bucket * bucket ?? until;
        var rolled = 0;
        if (from < until)
        {
            var p = new { from, until, bucket };
            rolled += await c.ExecuteAsync("""
                INSERT OR REPLACE INTO mon_instance_samples (instance_id, resolution, at, cpu_seconds, rss_bytes, disk_read_bytes, disk_write_bytes,
                    disk_read_ops, disk_write_ops, net_rx_bytes, net_tx_bytes, simulated, balloon_bytes, guest_memory_total_bytes, guest_memory_available_bytes)
                SELECT instance_id, @bucket, at / @bucket * @bucket, max(cpu_seconds), CAST(avg(rss_bytes) AS INTEGER), max(disk_read_bytes), max(disk_write_bytes),
                    max(disk_read_ops), max(disk_write_ops), max(net_rx_bytes), max(net_tx_bytes), max(simulated), CAST(avg(balloon_bytes) AS INTEGER),
                    CAST(avg(guest_memory_total_bytes) AS INTEGER), CAST(avg(guest_memory_available_bytes) AS INTEGER)
                FROM mon_instance_samples WHERE resolution = 0 AND at >= @from AND at < @until GROUP BY instance_id, at / @bucket
                """, p, tx);
            rolled += await c.ExecuteAsync("""
                INSERT OR REPLACE INTO mon_kpi_samples (instance_id, name, resolution, at, value, min, max, count)
                SELECT instance_id, name, @bucket, at / @bucket * @bucket, avg(value), min(min), max(max), count(*)
                FROM mon_kpi_samples WHERE resolution = 0 AND at >= @from AND at < @until GROUP BY instance_id, name, at / @bucket
                """, p, tx);
            rolled += await c.ExecuteAsync("""
                INSERT OR REPLACE INTO mon_host_samples (host, resolution, at, cpus, memory_mib, allocated_cpus, allocated_memory_mib, running_vms,
                    cpu_usage_percent, memory_used_mib, load1)
                SELECT host, @bucket, at / @bucket * @bucket, max(cpus), max(memory_mib), CAST(avg(allocated_cpus) AS INTEGER), CAST(avg(allocated_memory_mib) AS INTEGER),
                    CAST(round(avg(running_vms)) AS INTEGER), avg(cpu_usage_percent), CAST(avg(memory_used_mib) AS INTEGER), avg(load1)
                FROM mon_host_samples WHERE resolution = 0 AND at >= @from AND at < @until GROUP BY host, at / @bucket
                """, p, tx);
            await c.ExecuteAsync("INSERT OR REPLACE INTO mon_rollup_state (name, until) VALUES ('samples', @until)", new { until }, tx);
        }
        var dropped = 0;
        foreach (var table in new[] { "mon_instance_samples", "mon_kpi_samples", "mon_host_samples" })
        {
            dropped += await c.ExecuteAsync($"DELETE FROM {table} WHERE resolution = 0 AND at < @rawBefore", new { rawBefore }, tx);
            dropped += await c.ExecuteAsync($"DELETE FROM {table} WHERE resolution > 0 AND at < @rollupBefore", new { rollupBefore }, tx);
        }
        await tx.CommitAsync();
        return (rolled, dropped);
    }

    /// <summary>Usage records overlapping [from, to), optionally of one owner and/or group.</summary>
    public async Task<IReadOnlyList<UsageRow>> UsageAsync(long? ownerId, long? groupId, long from, long to)
    {
        await using var c = await store.OpenAsync();
        var sql = $"SELECT {UsageColumns} FROM acct_usage WHERE period_end > @from AND period_start < @to";
        if (ownerId is not null) sql += " AND owner_id = @ownerId";
        if (groupId is not null) sql += " AND group_id = @groupId";
        return (await c.QueryAsync<UsageRow>(sql + " ORDER BY period_start, instance_id", new { ownerId, groupId, from, to })).AsList();
    }
}
