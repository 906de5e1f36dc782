using System.Globalization;
using System.Text;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Monitoring.Accounting;

/// <summary>One usage record: an instance over one accounting period (times ISO-8601 UTC; bytes and seconds in that period).</summary>
internal sealed record UsageRecordView(
    long InstanceId, string InstanceName, string Owner, string Group, string Image, string? InstanceType, long Cpu, long MemoryMiB, string? Host,
    DateTimeOffset PeriodStart, DateTimeOffset PeriodEnd, DateTimeOffset CreatedAt, DateTimeOffset? StartedAt, DateTimeOffset? EndedAt, string State,
    long WallSeconds, long CpuSeconds, long NetRxBytes, long NetTxBytes, long DiskReadBytes, long DiskWriteBytes, long StateChanges, bool Simulated);

/// <summary>Usage summed by user, group, image or day (<see cref="Key"/>); <see cref="Instances"/> counts distinct instances.</summary>
internal sealed record UsageSummaryView(
    string By, string Key, long Instances, long Records, long WallSeconds, long CpuSeconds, long NetRxBytes, long NetTxBytes,
    long DiskReadBytes, long DiskWriteBytes, long StateChanges);

/// <summary>A usage query: who may see what, the window, the grouping.</summary>
internal sealed record UsageQuery(string? User, string? Group, string? From, string? To, string? By);

/// <summary>Accounting's application service: usage records and summaries (users see only their own), CSV and APEL renderings.</summary>
internal sealed class UsageReports(MonitoringStore store, IUserDirectory users, MonitoringOptions options)
{
    public static readonly string[] ByValues = ["user", "group", "image", "day"];

    public async Task<(IReadOnlyList<UsageRecordView> Records, DateTimeOffset From, DateTimeOffset To)> RecordsAsync(Caller caller, UsageQuery query, CancellationToken ct = default)
    {
        var now = DateTimeOffset.UtcNow;
        var from = query.From is null ? now.AddDays(-30) : MonitoringEndpoints.ParseTime(query.From, "from", now);
        var to = query.To is null ? now.AddSeconds(1) : MonitoringEndpoints.ParseTime(query.To, "to", now);
        if (from > to) throw new InvalidInputException("from", $"'from' ({from:O}) is after 'to' ({to:O}).");
        long? ownerId = null, groupId = null;
        if (query.User is { Length: > 0 } user)
        {
            var found = await users.FindByNameAsync(user, ct);
            if (!caller.IsAdmin && !string.Equals(user, caller.Name, StringComparison.Ordinal))
                throw new ForbiddenException($"You may see only your own usage ('user' = '{caller.Name}' or no 'user'); an admin sees everyone's.");
            ownerId = found?.Id ?? throw new NotFoundException($"User '{Validate.Trim(user)}'");
        }
        else if (!caller.IsAdmin) ownerId = caller.UserId;
        if (query.Group is { Length: > 0 } group)
            groupId = await users.GroupIdAsync(group, ct) ?? throw new NotFoundException($"Group '{Validate.Trim(group)}'");
        var rows = await store.UsageAsync(ownerId, groupId, from.ToUnixTimeSeconds(), to.ToUnixTimeSeconds());
        return (rows.Select(ToView).ToList(), from, to);
    }

    public static IReadOnlyList<UsageSummaryView> Summarize(IReadOnlyList<UsageRecordView> records, string by)
    {
        Func<UsageRecordView, string> key = by switch
        {
            "user" => r => r.Owner,
            "group" => r => r.Group,
            "image" => r => r.Image,
            "day" => r => r.PeriodStart.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            _ => throw new InvalidInputException("by", $"'by' = '{Validate.Trim(by)}' is not accepted; accepted values: {string.Join(", ", ByValues)}."),
        };
        return records.GroupBy(key).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new UsageSummaryView(by, g.Key,
            g.Select(r => r.InstanceId).Distinct().LongCount(), g.LongCount(), g.Sum(r => r.WallSeconds), g.Sum(r => r.CpuSeconds),
            g.Sum(r => r.NetRxBytes), g.Sum(r => r.NetTxBytes), g.Sum(r => r.DiskReadBytes), g.Sum(r => r.DiskWriteBytes), g.Sum(r => r.StateChanges))).ToList();
    }

    public const string RecordsCsvHeader =
        "instanceId,instanceName,owner,group,image,instanceType,cpu,memoryMiB,host,periodStart,periodEnd,createdAt,startedAt,endedAt,state," +
        "wallSeconds,cpuSeconds,netRxBytes,netTxBytes,diskReadBytes,diskWriteBytes,stateChanges,simulated";

    public const string SummaryCsvHeader = "by,key,instances,records,wallSeconds,cpuSeconds,netRxBytes,netTxBytes,diskReadBytes,diskWriteBytes,stateChanges";

    public static string Csv(IReadOnlyList<UsageRecordView> records)
    {
        var sb = new StringBuilder(RecordsCsvHeader).Append("\r\n");
        foreach (var r in records)
            sb.AppendJoin(',', Cell(r.InstanceId), Cell(r.InstanceName), Cell(r.Owner), Cell(r.Group), Cell(r.Image), Cell(r.InstanceType), Cell(r.Cpu),
                Cell(r.MemoryMiB), Cell(r.Host), Cell(r.PeriodStart), Cell(r.PeriodEnd), Cell(r.CreatedAt), Cell(r.StartedAt), Cell(r.EndedAt), Cell(r.State),
                Cell(r.WallSeconds), Cell(r.CpuSeconds), Cell(r.NetRxBytes), Cell(r.NetTxBytes), Cell(r.DiskReadBytes), Cell(r.DiskWriteBytes),
                Cell(r.StateChanges), Cell(r.Simulated ? "true" : "false")).Append("\r\n");
        return sb.ToString();
    }

    public static string Csv(IReadOnlyList<UsageSummaryView> rows)
    {
        var sb = new StringBuilder(SummaryCsvHeader).Append("\r\n");
        foreach (var r in rows)
            sb.AppendJoin(',', Cell(r.By), Cell(r.Key), Cell(r.Instances), Cell(r.Records), Cell(r.WallSeconds), Cell(r.CpuSeconds), Cell(r.NetRxBytes),
                Cell(r.NetTxBytes), Cell(r.DiskReadBytes), Cell(r.DiskWriteBytes), Cell(r.StateChanges)).Append("\r\n");
        return sb.ToString();
    }

    /// <summary>RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.</summary>
    static string Cell(object? value)
    {
        var text = value switch
        {
            null => "",
            DateTimeOffset t => Platform.Data.DapperTypes.Format(t),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
        return text.IndexOfAny([',', '"', '\r', '\n']) >= 0 ? "\"" + text.Replace("\"", "\"\"") + "\"" : text;
    }

    /// <summary>
    /// The APEL cloud usage message (APEL-cloud-message: v0.4, the EGI Cloud Accounting Usage Record v0.4): one record per
    /// instance that has usage in [from, to), with its totals from its start up to the end of the window (APEL cloud
    /// records are cumulative per VM). Admins only.
    /// </summary>
    public async Task<string> ApelAsync(Caller caller, string? fromText, string? toText, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) throw new ForbiddenException("The APEL export covers every user's usage; only an admin may read it.");
        var now = DateTimeOffset.UtcNow;
        var from = fromText is null ? now.AddDays(-30) : MonitoringEndpoints.ParseTime(fromText, "from", now);
        var to = toText is null ? now.AddSeconds(1) : MonitoringEndpoints.ParseTime(toText, "to", now);
        var all = await store.UsageAsync(null, null, 0, to.ToUnixTimeSeconds());
        var service = string.IsNullOrWhiteSpace(options.CloudComputeService) ? Environment.MachineName.ToLowerInvariant() : options.CloudComputeService;
        var sb = new StringBuilder("APEL-cloud-message: v0.4\n");
        var recordCreateTime = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        foreach (var vm in all.GroupBy(r => r.InstanceId).Where(g => g.Any(r => r.PeriodEnd > from.ToUnixTimeSeconds())).OrderBy(g => g.Key))
        {
            var latest = vm.MaxBy(r => r.PeriodStart)!;
            var created = DateTimeOffset.FromUnixTimeSeconds(latest.CreatedAt);
            var status = latest.State switch
            {
                "DONE" or "FAILED" => "completed",
                "SUSPENDED" or "STOPPED" => "suspended",
                _ => "started",
            };
            Field(sb, "RecordCreateTime", recordCreateTime);
            Field(sb, "VMUUID", $"{created.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}+00:00 {options.SiteName} {latest.InstanceId}");
            Field(sb, "SiteName", options.SiteName);
            Field(sb, "CloudComputeService", service);
            Field(sb, "MachineName", latest.InstanceName);
            Field(sb, "LocalUserId", latest.Owner);
            Field(sb, "LocalGroupId", latest.GroupName);
            // No certificate DNs or VOs here: the user's name qualified by the site is the global name, the group is the VO.
            Field(sb, "GlobalUserName", $"{latest.Owner}@{options.SiteName}");
            Field(sb, "FQAN", $"/{latest.GroupName}/Role=NULL/Capability=NULL");
            Field(sb, "Status", status);
            Field(sb, "StartTime", (latest.StartedAt ?? latest.CreatedAt).ToString(CultureInfo.InvariantCulture));
            Field(sb, "EndTime", (status == "completed" ? latest.EndedAt ?? latest.UpdatedAt : 0).ToString(CultureInfo.InvariantCulture));
            Field(sb, "WallDuration", ((long)Math.Round(vm.Sum(r => r.WallSeconds))).ToString(CultureInfo.InvariantCulture));
            Field(sb, "CpuDuration", ((long)Math.Round(vm.Sum(r => r.CpuSeconds))).ToString(CultureInfo.InvariantCulture));
            Field(sb, "CpuCount", latest.Cpu.ToString(CultureInfo.InvariantCulture));
            Field(sb, "NetworkInbound", (vm.Sum(r => r.NetRxBytes) / 1_000_000_000).ToString(CultureInfo.InvariantCulture));
            Field(sb, "NetworkOutbound", (vm.Sum(r => r.NetTxBytes) / 1_000_000_000).ToString(CultureInfo.InvariantCulture));
            Field(sb, "Memory", latest.MemoryMib.ToString(CultureInfo.InvariantCulture));
            // GB as APEL counts them (GiB here, rounded up), from the largest capacity seen; unknown (the simulated driver): left out.
            if (vm.Max(r => r.DiskBytes) is { } disk) Field(sb, "Disk", ((disk + (1L << 30) - 1) >> 30).ToString(CultureInfo.InvariantCulture));
            Field(sb, "ImageId", latest.Image);
            Field(sb, "CloudType", "StratusLab");
            sb.Append("%%\n");
        }
        return sb.ToString();
    }

    // APEL's key: value lines cannot hold line breaks.
    static void Field(StringBuilder sb, string key, string value) =>
        sb.Append(key).Append(": ").Append(value.Replace('\n', ' ').Replace('\r', ' ')).Append('\n');

    static UsageRecordView ToView(UsageRow r) => new(r.InstanceId, r.InstanceName, r.Owner, r.GroupName, r.Image, r.InstanceType, r.Cpu, r.MemoryMib,
        r.Host, DateTimeOffset.FromUnixTimeSeconds(r.PeriodStart), DateTimeOffset.FromUnixTimeSeconds(r.PeriodEnd), DateTimeOffset.FromUnixTimeSeconds(r.CreatedAt),
        r.StartedAt is { } s ? DateTimeOffset.FromUnixTimeSeconds(s) : null, r.EndedAt is { } e ? DateTimeOffset.FromUnixTimeSeconds(e) : null, r.State,
        (long)Math.Round(r.WallSeconds), (long)Math.Round(r.CpuSeconds), r.NetRxBytes, r.NetTxBytes, r.DiskReadBytes, r.DiskWriteBytes, r.StateChanges, r.Simulated);
}
