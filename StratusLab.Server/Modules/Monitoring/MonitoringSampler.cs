using System.Collections.Concurrent;
using System.Globalization;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Scheduling.Contracts;

namespace StratusLab.Server.Modules.Monitoring;

/// <summary>
/// Every Monitoring:SampleIntervalSeconds: pulls instance snapshots from Compute and hosts from Scheduling, writes raw
/// samples, adds each instance's usage since the last pass to its accounting record for the current period, refreshes
/// the /metrics gauges, and rolls up and prunes old samples. Compute never calls it: it pulls through contracts.
/// </summary>
internal sealed class MonitoringSampler(IInstanceStats stats, IHostInventory hosts, IUserDirectory users, MonitoringStore store,
    MonitoringOptions options, MonitoringGauges gauges, ILogger<MonitoringSampler> logger) : BackgroundService
{
    readonly ConcurrentDictionary<long, int> _stateChanges = new();
    readonly Dictionary<long, string> _userNames = [];
    readonly Dictionary<long, string> _groupNames = [];
    Dictionary<long, LastRow>? _last;
    long? _lastPass;
    long _lastRollup;

    static readonly System.Diagnostics.Metrics.Histogram<double> PassDuration =
        Platform.Telemetry.Telemetry.Meter.CreateHistogram<double>("stratuslab.monitoring.pass.duration", "ms", "Time of one monitoring sample pass (all instances and hosts)");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = Task.Run(() => WatchStatesAsync(stoppingToken), CancellationToken.None);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.SampleIntervalSeconds));
        do
        {
            try { await PassAsync(stoppingToken); }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested) { logger.LogError(e, "Monitoring sample pass failed"); }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    async Task WatchStatesAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var change in stats.WatchAsync(ct))
                _stateChanges.AddOrUpdate(change.InstanceId, 1, (_, n) => n + 1);
        }
        catch (OperationCanceledException) { }
    }

    public async Task PassAsync(CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        _last ??= await store.LoadLastAsync();
        var endedSince = _lastPass ?? (_last.Count > 0 ? _last.Values.Min(l => l.At) : now);
        var snapshots = await stats.SnapshotAsync(DateTimeOffset.FromUnixTimeSeconds(endedSince), ct);

        var samples = new List<InstanceSampleRow>();
        var usage = new List<UsageRow>();
        var last = new List<LastRow>();
        var forget = new List<long>();
        var period = (long)options.AccountingPeriodSeconds;
        foreach (var s in snapshots)
        {
            _last.TryGetValue(s.Id, out var prev);
            _stateChanges.TryRemove(s.Id, out var changes);
            var ended = s.State is "DONE" or "FAILED";
            if (ended && prev is null && changes == 0) continue;
            var c = s.Counters;
            if (c is not null)
                samples.Add(new InstanceSampleRow
                {
                    InstanceId = s.Id, At = now, CpuSeconds = c.CpuSeconds, RssBytes = c.MemoryRssBytes, DiskReadBytes = c.DiskReadBytes,
                    DiskWriteBytes = c.DiskWriteBytes, DiskReadOps = c.DiskReadOps, DiskWriteOps = c.DiskWriteOps, NetRxBytes = c.NetRxBytes,
                    NetTxBytes = c.NetTxBytes, Simulated = c.Simulated, BalloonBytes = c.BalloonBytes, GuestMemoryTotalBytes = c.GuestMemoryTotalBytes,
                    GuestMemoryAvailableBytes = c.GuestMemoryAvailableBytes,
                });
            var periodStart = now / period * period;
            usage.Add(new UsageRow
            {
                InstanceId = s.Id, PeriodStart = periodStart, PeriodEnd = periodStart + period, InstanceName = s.Name,
                OwnerId = s.OwnerId, Owner = await UserNameAsync(s.OwnerId, ct), GroupId = s.GroupId, GroupName = await GroupNameAsync(s.GroupId, ct),
                Image = s.Image, InstanceType = s.InstanceType, Cpu = s.Cpu, MemoryMib = s.MemoryMiB, Host = s.Host,
                CreatedAt = s.CreatedAt.ToUnixTimeSeconds(), StartedAt = s.StartedAt?.ToUnixTimeSeconds(), EndedAt = s.EndedAt?.ToUnixTimeSeconds(),
                State = s.State, WallSeconds = WallDelta(s, prev, now), CpuSeconds = Delta(c?.CpuSeconds, prev?.CpuSeconds),
                NetRxBytes = (long)Delta(c?.NetRxBytes, prev?.NetRxBytes), NetTxBytes = (long)Delta(c?.NetTxBytes, prev?.NetTxBytes),
                DiskReadBytes = (long)Delta(c?.DiskReadBytes, prev?.DiskReadBytes), DiskWriteBytes = (long)Delta(c?.DiskWriteBytes, prev?.DiskWriteBytes),
                StateChanges = changes, Simulated = c?.Simulated ?? false, UpdatedAt = now, DiskBytes = c?.DiskCapacityBytes,
            });
            var row = new LastRow
            {
                InstanceId = s.Id, At = now, State = s.State, CpuSeconds = c?.CpuSeconds, NetRxBytes = c?.NetRxBytes, NetTxBytes = c?.NetTxBytes,
                DiskReadBytes = c?.DiskReadBytes, DiskWriteBytes = c?.DiskWriteBytes,
            };
            if (ended)
            {
                forget.Add(s.Id);
                _last.Remove(s.Id);
            }
            else
            {
                last.Add(row);
                _last[s.Id] = row;
            }
        }

        var hostList = await hosts.ListAsync(ct);
        var load1 = ReadLoad1();
        var hostRows = hostList.Select(h => new HostSampleRow
        {
            Host = h.Name, At = now, Cpus = h.Cpus, MemoryMib = h.MemoryMiB, AllocatedCpus = h.AllocatedCpus, AllocatedMemoryMib = h.AllocatedMemoryMiB,
            RunningVms = h.RunningVms, CpuUsagePercent = h.CpuUsagePercent, MemoryUsedMib = h.MemoryUsedMiB, Load1 = h.Local ? load1 : null,
        }).ToList();

        await store.WritePassAsync(samples, hostRows, usage, last, forget);
        _lastPass = now;

        if (now - _lastRollup >= Math.Min(options.RollupSeconds, 300))
        {
            await store.RollupAsync(now, options.RollupSeconds, now - options.RawRetentionSeconds, now - options.RollupRetentionSeconds);
            _lastRollup = now;
        }

        gauges.Update(await stats.CountByStateAsync(ct), hostList,
            options.PerInstanceSeries ? samples.OrderByDescending(s => s.InstanceId).Take(options.PerInstanceSeriesMax).ToList() : []);
        PassDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>Seconds the instance ran since the last pass: while RUNNING at both ends, the whole gap (the VM survives a server restart).</summary>
    static double WallDelta(InstanceSnapshot s, LastRow? prev, long now)
    {
        var running = s.State == "RUNNING";
        var wasRunning = prev?.State == "RUNNING";
        if (running)
        {
            var since = prev?.At ?? s.StartedAt?.ToUnixTimeSeconds() ?? now;
            if (!wasRunning && s.StartedAt is { } st) since = Math.Max(since, st.ToUnixTimeSeconds());
            return Math.Max(0, now - since);
        }
        if (wasRunning)
        {
            var end = Math.Min(s.EndedAt?.ToUnixTimeSeconds() ?? now, now);
            return Math.Max(0, end - prev!.At);
        }
        return 0;
    }

    /// <summary>How much a cumulative counter grew; a counter that went down was reset (the VM restarted), so all of it is new.</summary>
    static double Delta(double? current, double? previous) =>
        current is not { } c ? 0 : previous is { } p && c >= p ? c - p : c;

    static double? ReadLoad1()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture); }
        catch (IOException) { return null; }
    }

    async Task<string> UserNameAsync(long id, CancellationToken ct)
    {
        if (_userNames.TryGetValue(id, out var name)) return name;
        name = (await users.FindAsync(id, ct))?.Name ?? $"user-{id}";
        return _userNames[id] = name;
    }

    async Task<string> GroupNameAsync(long id, CancellationToken ct)
    {
        if (_groupNames.TryGetValue(id, out var name)) return name;
        name = await users.GroupNameAsync(id, ct) ?? $"group-{id}";
        return _groupNames[id] = name;
    }
}
