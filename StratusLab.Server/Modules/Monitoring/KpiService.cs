using System.Collections.Concurrent;
using StratusLab.Server.Modules.Monitoring.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Monitoring;

/// <summary>Guest KPIs: checks a report (names, count, values, rate) and stores it; reads aggregates for <see cref="IKpiReader"/>.</summary>
internal sealed class KpiService(MonitoringStore store, MonitoringOptions options) : IKpiReader
{
    readonly ConcurrentDictionary<long, Queue<long>> _recentReports = new();

    /// <summary>Stores one guest report, or throws a 400 (bad names or values, too many), 422 (too many distinct names) or 429 (too often).</summary>
    public async Task RecordAsync(long instanceId, IReadOnlyDictionary<string, double> values, CancellationToken ct = default)
    {
        if (values.Count == 0)
            throw new InvalidInputException("metrics", "The report is empty; send a JSON object of KPI names and numbers, e.g. {\"http_requests\": 42}.");
        if (values.Count > options.KpiMaxPerReport)
            throw new InvalidInputException("metrics", $"The report has {values.Count} KPIs; at most {options.KpiMaxPerReport} are accepted per report.");
        foreach (var (name, value) in values)
        {
            if (!KpiNames.IsValid(name))
                throw new InvalidInputException($"metrics.{Validate.Trim(name)}",
                    $"KPI name '{Validate.Trim(name)}' is not accepted: 1-{KpiNames.MaxLength} characters, a letter first, then letters, digits, '_', '.' or '-'.");
            if (!double.IsFinite(value))
                throw new InvalidInputException($"metrics.{name}", $"KPI '{name}' must be a finite number.");
        }
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var queue = _recentReports.GetOrAdd(instanceId, _ => new Queue<long>());
        lock (queue)
        {
            while (queue.Count > 0 && queue.Peek() <= now - 60) queue.Dequeue();
            if (queue.Count >= options.KpiMaxReportsPerMinute)
            {
                var retry = Math.Max(1, queue.Peek() + 60 - now);
                var error = new ApiException(429, $"This instance sent {queue.Count} KPI reports in the last minute; at most {options.KpiMaxReportsPerMinute} are accepted. Report again in {retry} s, or less often.",
                    "metrics", "Too Many Requests");
                error.Extensions["retryAfterSeconds"] = retry;
                throw error;
            }
            queue.Enqueue(now);
        }
        var known = await store.KpiNamesAsync(instanceId);
        var fresh = values.Keys.Where(k => !known.Contains(k, StringComparer.Ordinal)).ToList();
        if (known.Count + fresh.Count > options.KpiMaxNamesPerInstance)
            throw new InvalidInputException("metrics",
                $"This instance already reports {known.Count} KPI names; {fresh.Count} new one(s) ({string.Join(", ", fresh.Take(5))}) would pass the limit of {options.KpiMaxNamesPerInstance}. Reuse names.",
                unprocessable: true);
        await store.InsertKpisAsync(instanceId, now, values);
    }

    public async Task<KpiReading> ReadAsync(IReadOnlyCollection<long> instanceIds, string name, KpiAggregate aggregate, TimeSpan window, CancellationToken ct = default)
    {
        if (!KpiNames.IsValid(name)) throw new InvalidInputException("name", $"KPI name '{Validate.Trim(name)}' is not a valid KPI name.");
        if (window <= TimeSpan.Zero) throw new InvalidInputException("window", "The window must be positive.");
        var to = DateTimeOffset.UtcNow;
        var from = to - window;
        var rows = instanceIds.Count == 0 ? [] : await store.KpiSamplesAsync(instanceIds, name, 0, from.ToUnixTimeSeconds(), to.ToUnixTimeSeconds());
        var perMember = rows.GroupBy(r => r.InstanceId).ToDictionary(g => g.Key, g => g.Average(r => r.Value));
        double? value = perMember.Count == 0 ? null : aggregate switch
        {
            KpiAggregate.Avg => perMember.Values.Average(),
            KpiAggregate.Min => perMember.Values.Min(),
            KpiAggregate.Max => perMember.Values.Max(),
            _ => perMember.Values.Sum(),
        };
        return new KpiReading(name, aggregate, value, perMember.Count, rows.Count, from, to, perMember);
    }

    public async Task<IReadOnlyDictionary<string, (double Value, DateTimeOffset At)>> LatestAsync(long instanceId, CancellationToken ct = default)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var rows = await store.KpiSamplesAsync([instanceId], null, 0, now - options.RawRetentionSeconds, now);
        return rows.GroupBy(r => r.Name).ToDictionary(g => g.Key, g =>
        {
            var latest = g.MaxBy(r => r.At)!;
            return (latest.Value, DateTimeOffset.FromUnixTimeSeconds(latest.At));
        });
    }
}
