using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Monitoring;

/// <summary>
/// One sample of an instance: cumulative counters, plus the CPU use since the previous sample (percent of one CPU). Memory: the QEMU
/// process's RSS, and where the virtio balloon tells, the balloon's size and the guest's own total and available memory.
/// </summary>
internal sealed record InstanceSampleView(DateTimeOffset At, double CpuSeconds, double? CpuPercent, long? MemoryRssBytes,
    long? DiskReadBytes, long? DiskWriteBytes, long? DiskReadOps, long? DiskWriteOps, long? NetRxBytes, long? NetTxBytes, bool Simulated)
{
    public long? MemoryBalloonBytes { get; init; }
    public long? GuestMemoryTotalBytes { get; init; }
    public long? GuestMemoryAvailableBytes { get; init; }
}

/// <summary>One point of a guest KPI (downsampled points carry min, max and how many samples they stand for).</summary>
internal sealed record KpiPointView(DateTimeOffset At, double Value, double Min, double Max, long Count);

internal sealed record KpiSeriesView(string Name, IReadOnlyList<KpiPointView> Points);

/// <summary>GET /api/v1/instances/{id}/metrics: <c>resolution</c> is 0 for raw samples, else the bucket width in seconds.</summary>
internal sealed record InstanceMetricsView(long InstanceId, DateTimeOffset Since, DateTimeOffset Until, long Resolution,
    IReadOnlyList<InstanceSampleView> Samples, IReadOnlyList<KpiSeriesView> Kpis);

internal sealed record HostSampleView(DateTimeOffset At, long Cpus, long MemoryMiB, long AllocatedCpus, long AllocatedMemoryMiB, long RunningVms,
    double CpuUsagePercent, long MemoryUsedMiB, double? Load1);

internal sealed record HostMetricsView(string Host, DateTimeOffset Since, DateTimeOffset Until, long Resolution, IReadOnlyList<HostSampleView> Samples);

/// <summary>Monitoring's doors: instance and host metrics (REST), and guest KPI reports (guest API).</summary>
internal static class MonitoringEndpoints
{
    public static RouteGroupBuilder MapMonitoringEndpoints(this IEndpointRouteBuilder app)
    {
        var guest = app.MapGroup("/guest/v1").AllowAnonymous().WithTags("Guest");
        guest.MapPut("/metrics", ReportKpis);
        guest.MapPost("/metrics", ReportKpis);

        app.MapGet("/api/v1/hosts/{name}/metrics", GetHostMetrics).RequireAuthorization(Policies.Admin).WithTags("Monitoring");

        var api = app.MapGroup("/api/v1").RequireAuthorization().WithTags("Monitoring");
        api.MapGet("/instances/{id:long}/metrics", GetInstanceMetrics);
        return api;
    }

    static async Task<Ok<InstanceMetricsView>> GetInstanceMetrics(long id, string? since, string? until, string? resolution, ClaimsPrincipal principal,
        IInstances instances, MonitoringStore store, MonitoringOptions options, CancellationToken ct)
    {
        // Visibility is Compute's: another user's instance is 404 there, so it is here.
        await instances.GetAsync(principal.ToCaller(), id, ct);
        var (from, to, res) = Window(since, until, resolution, options);
        var rows = await store.InstanceSamplesAsync(id, res, from.ToUnixTimeSeconds(), to.ToUnixTimeSeconds());
        var samples = new List<InstanceSampleView>(rows.Count);
        InstanceSampleRow? prev = null;
        foreach (var r in rows)
        {
            double? percent = prev is not null && r.At > prev.At && r.CpuSeconds >= prev.CpuSeconds
                ? Math.Round(100 * (r.CpuSeconds - prev.CpuSeconds) / (r.At - prev.At), 2) : null;
            samples.Add(new InstanceSampleView(DateTimeOffset.FromUnixTimeSeconds(r.At), r.CpuSeconds, percent, r.RssBytes, r.DiskReadBytes,
                r.DiskWriteBytes, r.DiskReadOps, r.DiskWriteOps, r.NetRxBytes, r.NetTxBytes, r.Simulated)
            {
                MemoryBalloonBytes = r.BalloonBytes, GuestMemoryTotalBytes = r.GuestMemoryTotalBytes, GuestMemoryAvailableBytes = r.GuestMemoryAvailableBytes,
            });
            prev = r;
        }
        var kpis = (await store.KpiSamplesAsync([id], null, res, from.ToUnixTimeSeconds(), to.ToUnixTimeSeconds()))
            .GroupBy(k => k.Name)
            .Select(g => new KpiSeriesView(g.Key, g.Select(k => new KpiPointView(DateTimeOffset.FromUnixTimeSeconds(k.At), k.Value, k.Min, k.Max, k.Count)).ToList()))
            .ToList();
        return TypedResults.Ok(new InstanceMetricsView(id, from, to, res, samples, kpis));
    }

    static async Task<Ok<HostMetricsView>> GetHostMetrics(string name, string? since, string? until, string? resolution,
        IHostInventory hosts, MonitoringStore store, MonitoringOptions options, CancellationToken ct)
    {
        if ((await hosts.ListAsync(ct)).All(h => h.Name != name)) throw new NotFoundException($"Host '{Validate.Trim(name)}'");
        var (from, to, res) = Window(since, until, resolution, options);
        var rows = await store.HostSamplesAsync(name, res, from.ToUnixTimeSeconds(), to.ToUnixTimeSeconds());
        return TypedResults.Ok(new HostMetricsView(name, from, to, res, rows.Select(r => new HostSampleView(DateTimeOffset.FromUnixTimeSeconds(r.At),
            r.Cpus, r.MemoryMib, r.AllocatedCpus, r.AllocatedMemoryMib, r.RunningVms, Math.Round(r.CpuUsagePercent, 2), r.MemoryUsedMib, r.Load1)).ToList()));
    }

    static async Task<NoContent> ReportKpis(HttpContext http, IGuestInstances instances, KpiService kpis, Dictionary<string, double> metrics, CancellationToken ct)
    {
        string? header = http.Request.Headers.Authorization;
        if (!(AuthenticationHeaderValue.TryParse(header, out var value) && value.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)
            && value.Parameter is { } token && await instances.FindByGuestTokenAsync(token, ct) is { } instance))
            throw new ApiException(401, "The guest API needs the per-VM token from the context CD (STRATUSLAB_TOKEN) as 'Authorization: Bearer <token>'; this one is missing, unknown, or its instance has ended.",
                title: "Unauthorized");
        await kpis.RecordAsync(instance.InstanceId, metrics, ct);
        return TypedResults.NoContent();
    }

    /// <summary>
    /// The time window and resolution of a metrics query: <paramref name="since"/> and <paramref name="until"/> are ISO-8601
    /// times or ages (30s, 15m, 2h, 7d; default since 1h, until now); resolution raw, rollup or auto (raw when the window
    /// starts within the raw retention).
    /// </summary>
    internal static (DateTimeOffset From, DateTimeOffset To, long Resolution) Window(string? since, string? until, string? resolution, MonitoringOptions options)
    {
        var now = DateTimeOffset.UtcNow;
        var from = since is null ? now.AddHours(-1) : ParseTime(since, "since", now);
        var to = until is null ? now : ParseTime(until, "until", now);
        if (from > to) throw new InvalidInputException("since", $"'since' ({from:O}) is after 'until' ({to:O}).");
        long res = (resolution ?? "auto") switch
        {
            "raw" => 0,
            "rollup" => options.RollupSeconds,
            "auto" => from >= now.AddSeconds(-options.RawRetentionSeconds) ? 0 : options.RollupSeconds,
            var other => throw new InvalidInputException("resolution", $"'resolution' = '{Validate.Trim(other)}' is not accepted; accepted values: raw, rollup, auto."),
        };
        return (from, to, res);
    }

    internal static DateTimeOffset ParseTime(string text, string field, DateTimeOffset now)
    {
        if (text.Length >= 2 && long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            var age = text[^1] switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                _ => (TimeSpan?)null,
            };
            if (age is { } a && a <= TimeSpan.FromDays(3660)) return now - a;
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)) return t;
        throw new InvalidInputException(field, $"'{field}' = '{Validate.Trim(text)}' is not a time; give an ISO-8601 time (2026-11-29T10:00:00Z) or an age (30s, 15m, 2h, 7d).");
    }
}
