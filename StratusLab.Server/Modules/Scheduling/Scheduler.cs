using System.Diagnostics;
using System.Threading.Channels;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Modules.Scheduling.Expressions;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>A coalescing wake-up: any number of Wake() calls before the scheduler runs cause one pass.</summary>
public sealed class SchedulerSignal : ISchedulerSignal
{
    readonly Channel<bool> _channel = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    public void Wake() => _channel.Writer.TryWrite(true);
    public ChannelReader<bool> Reader => _channel.Reader;
}

/// <summary>
/// Places PENDING instances on hosts when woken (new instance, freed capacity, host change), with a periodic pass
/// only as a safety net. Each pass reserves capacity atomically, records why hosts were rejected, and fails
/// instances pending longer than Scheduling:PendingTimeoutSeconds.
/// </summary>
public sealed class Scheduler(
    SchedulerSignal signal,
    SchedulingStore store,
    IPlacementTarget target,
    ServerOptions options,
    TimeProvider clock,
    ILogger<Scheduler> logger) : BackgroundService
{
    static readonly System.Diagnostics.Metrics.Histogram<double> PassDuration =
        Platform.Telemetry.Telemetry.Meter.CreateHistogram<double>("stratuslab.scheduler.pass.duration", "ms", "Scheduling pass time");
    static readonly System.Diagnostics.Metrics.Counter<long> Placed =
        Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.scheduler.placed", description: "Instances placed on a host");

    readonly Dictionary<string, (Expr? Expr, Policy Policy)> _parsed = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var safetyNet = TimeSpan.FromSeconds(options.Scheduling.SafetyNetSeconds);
        signal.Wake();
        while (!stoppingToken.IsCancellationRequested)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            wait.CancelAfter(safetyNet);
            try { await signal.Reader.ReadAsync(wait.Token); }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested) { }
            try { await PassAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Scheduling pass failed"); }
        }
    }

    /// <summary>One pass over every PENDING instance, oldest first.</summary>
    public async Task PassAsync(CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var pending = await target.ListPendingAsync(ct);
        if (pending.Count == 0) return;
        var requests = new List<PlacementRequest>(pending.Count);
        foreach (var p in pending)
        {
            var (requirements, policy) = Parse(p.Requirements, p.Policy ?? options.Scheduling.Policy);
            requests.Add(new PlacementRequest(p.Id, p.Cpu, p.MemoryMiB, requirements, p.Requirements, policy));
        }
        var decisions = await store.PlaceAsync(requests);
        var hosts = (await store.ListHostsAsync()).ToDictionary(h => h.Name, StringComparer.OrdinalIgnoreCase);
        var now = clock.GetUtcNow();
        var timeout = options.Scheduling.PendingTimeoutSeconds;
        foreach (var p in pending)
        {
            if (!decisions.TryGetValue(p.Id, out var decision)) continue;
            if (decision.Host is { } host)
            {
                if (!await target.PlaceAsync(p.Id, host, hosts[host].Driver, ct)) await store.ReleaseAsync(p.Id);
                else Placed.Add(1);
                continue;
            }
            var message = "no host fits: " + decision.Message;
            if (timeout > 0 && now - p.CreatedAt > TimeSpan.FromSeconds(timeout))
                await target.FailPendingAsync(p.Id, $"{message} (PENDING for more than {timeout} s, Scheduling:PendingTimeoutSeconds)", ct);
            else if (message != p.SchedulingMessage)
                await target.SetSchedulingMessageAsync(p.Id, message, ct);
        }
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        PassDuration.Record(elapsed);
        logger.LogDebug("Scheduling pass: {Count} pending, {Placed} placed in {Ms:0.0} ms", pending.Count, decisions.Count(d => d.Value.Host is not null), elapsed);
    }

    (Expr?, Policy) Parse(string? requirements, string policy)
    {
        var key = requirements + "\n" + policy;
        lock (_parsed)
        {
            if (_parsed.TryGetValue(key, out var cached)) return cached;
            var parsed = (requirements is null ? null : Expr.Parse(requirements, HostState.AttributeNames), Policy.Parse(policy));
            if (_parsed.Count > 10_000) _parsed.Clear();
            _parsed[key] = parsed;
            return parsed;
        }
    }
}
