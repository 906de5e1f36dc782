using System.Diagnostics;
using System.Threading.Channels;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Modules.Scheduling.Expressions;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>A coalescing wake-up: any number of Wake() calls before the next wait cause one pass.</summary>
internal sealed class SchedulerSignal(SchedulingOptions options) : ISchedulerSignal
{
    readonly Channel<bool> _channel = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public void Wake() => _channel.Writer.TryWrite(true);

    public async Task WaitAsync(CancellationToken ct)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(TimeSpan.FromSeconds(options.SafetyNetSeconds));
        try { await _channel.Reader.ReadAsync(wait.Token); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
    }
}

/// <summary>
/// Places PENDING instances on hosts when Compute asks: each call reserves capacity atomically, says why hosts were
/// rejected, and gives up on instances pending longer than Scheduling:PendingTimeoutSeconds. It never calls back.
/// </summary>
internal sealed class Scheduler(SchedulingStore store, SchedulingOptions options, TimeProvider clock, ILogger<Scheduler> logger) : Contracts.IScheduler
{
    static readonly System.Diagnostics.Metrics.Histogram<double> PassDuration =
        Platform.Telemetry.Telemetry.Meter.CreateHistogram<double>("stratuslab.scheduler.pass.duration", "ms", "Scheduling pass time");
    static readonly System.Diagnostics.Metrics.Counter<long> Placed =
        Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.scheduler.placed", description: "Instances placed on a host");

    readonly Dictionary<string, (Expr? Expr, Policy Policy)> _parsed = new();

    public async Task<IReadOnlyList<SchedulingDecision>> PlaceAsync(IReadOnlyList<SchedulingRequest> requests, CancellationToken ct = default)
    {
        if (requests.Count == 0) return [];
        var started = Stopwatch.GetTimestamp();
        var placements = new List<PlacementRequest>(requests.Count);
        foreach (var r in requests)
        {
            var (requirements, policy) = Parse(r.Requirements, r.Policy ?? options.Policy);
            placements.Add(new PlacementRequest(r.InstanceId, r.Cpu, r.MemoryMiB, requirements, r.Requirements, policy));
        }
        var decisions = await store.PlaceAsync(placements);
        var drivers = decisions.Values.Any(d => d.Host is not null)
            ? (await store.ListHostsAsync()).ToDictionary(h => h.Name, h => h.Driver, StringComparer.OrdinalIgnoreCase)
            : new Dictionary<string, string>();
        var now = clock.GetUtcNow();
        var timeout = options.PendingTimeoutSeconds;
        var answers = new List<SchedulingDecision>(decisions.Count);
        foreach (var r in requests)
        {
            if (!decisions.TryGetValue(r.InstanceId, out var decision)) continue;
            if (decision.Host is { } host)
            {
                answers.Add(new SchedulingDecision(r.InstanceId, host, drivers[host], null, GiveUp: false));
                Placed.Add(1);
                continue;
            }
            var message = "no host fits: " + decision.Message;
            answers.Add(timeout > 0 && now - r.PendingSince > TimeSpan.FromSeconds(timeout)
                ? new SchedulingDecision(r.InstanceId, null, null, $"{message} (PENDING for more than {timeout} s, Scheduling:PendingTimeoutSeconds)", GiveUp: true)
                : new SchedulingDecision(r.InstanceId, null, null, message, GiveUp: false));
        }
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        PassDuration.Record(elapsed);
        logger.LogDebug("Scheduling pass: {Count} pending, {Placed} placed in {Ms:0.0} ms", requests.Count, answers.Count(a => a.Placed), elapsed);
        return answers;
    }

    public async Task<SchedulingDecision> RelocateAsync(SchedulingRequest request, string fromHost, CancellationToken ct = default)
    {
        var (requirements, policy) = Parse(request.Requirements, request.Policy ?? options.Policy);
        var decision = await store.RelocateAsync(new PlacementRequest(request.InstanceId, request.Cpu, request.MemoryMiB, requirements, request.Requirements, policy), fromHost);
        if (decision.Host is not { } host) return new SchedulingDecision(request.InstanceId, null, null, "no other host fits: " + decision.Message, GiveUp: false);
        var driver = (await store.FindHostAsync(host))?.Driver ?? throw new InvalidOperationException($"host {host} vanished");
        logger.LogInformation("Instance {Id}: its capacity moves from host {From} to {To}", request.InstanceId, fromHost, host);
        return new SchedulingDecision(request.InstanceId, host, driver, null, GiveUp: false);
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
