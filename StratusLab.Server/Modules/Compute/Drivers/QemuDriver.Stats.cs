using System.Globalization;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Compute.Contracts;

namespace StratusLab.Server.Modules.Compute.Drivers;

internal sealed partial class QemuDriver
{
    /// <summary>Linux reports /proc/&lt;pid&gt;/stat times in clock ticks of USER_HZ, which is 100 on every Linux ABI .NET runs on.</summary>
    const double ClockTicksPerSecond = 100;

    /// <summary>
    /// CPU time and RSS of the QEMU process from /proc, block I/O from QMP query-blockstats (through the VM's QMP gate, so it
    /// never races another QMP user), network bytes per tap from /sys/class/net (QEMU's slirp keeps no counters: null).
    /// </summary>
    public async Task<InstanceCounters?> StatsAsync(VmRef vm, VmStatsRequest request, CancellationToken ct)
    {
        if (PidOf(vm) is not { } pid) return null;
        string stat, status;
        try
        {
            stat = await File.ReadAllTextAsync($"/proc/{pid}/stat", ct);
            status = await File.ReadAllTextAsync($"/proc/{pid}/status", ct);
        }
        catch (IOException) { return null; }
        var cpu = ParseCpuSeconds(stat);
        var rss = ParseRssBytes(status);
        var blocks = BlockTotals.Of(await _qmp.ExecuteAsync(SocketOf(vm), "query-blockstats", null, ct));
        long? rx = null, tx = null;
        foreach (var tap in TapsOf(CommandLine(pid) ?? []))
        {
            // The tap's receive is what the guest sent, and the other way round: report the guest's view.
            if (ReadCounter($"/sys/class/net/{tap}/statistics/tx_bytes") is { } guestRx) rx = (rx ?? 0) + guestRx;
            if (ReadCounter($"/sys/class/net/{tap}/statistics/rx_bytes") is { } guestTx) tx = (tx ?? 0) + guestTx;
        }
        var memory = await GuestMemoryAsync((command, arguments) => _qmp.ExecuteAsync(SocketOf(vm), command, arguments, ct));
        return new InstanceCounters(cpu, rss, blocks.ReadBytes, blocks.WriteBytes, blocks.ReadOps, blocks.WriteOps, rx, tx, Simulated: false)
        {
            BalloonBytes = memory.Balloon, GuestMemoryTotalBytes = memory.Total, GuestMemoryAvailableBytes = memory.Available,
            DiskCapacityBytes = DiskCapacity(await _qmp.ExecuteAsync(SocketOf(vm), "query-block", null, ct)),
        };
    }

    /// <summary>The virtual sizes of query-block's devices summed, CD-ROMs (removable media: the context CD) left out; null when none has a medium.</summary>
    internal static long? DiskCapacity(JsonNode? reply)
    {
        long? total = null;
        foreach (var device in reply as JsonArray ?? [])
        {
            if (device?["removable"]?.GetValue<bool>() == true) continue;
            if (device?["inserted"]?["image"]?["virtual-size"]?.GetValue<long>() is { } size) total = (total ?? 0) + size;
        }
        return total;
    }

    /// <summary>How often (seconds) the guest's balloon driver is asked for its memory statistics.</summary>
    internal const int BalloonStatsSeconds = 5;

    /// <summary>
    /// The balloon (query-balloon: the memory the guest has now) and the guest's own view (virtio-balloon guest-stats: total and
    /// available memory), each null when QEMU or the guest cannot say: no balloon device (a VM started before it was added), no
    /// balloon driver in the guest, or no statistics yet.
    /// </summary>
    internal static async Task<(long? Balloon, long? Total, long? Available)> GuestMemoryAsync(Func<string, JsonObject?, Task<JsonNode?>> qmp)
    {
        long? balloon = null;
        try { balloon = (await qmp("query-balloon", null))?["actual"]?.GetValue<long>(); }
        catch (QmpCommandException) { return (null, null, null); }
        JsonNode? stats;
        try { stats = await qmp("qom-get", new JsonObject { ["path"] = "/machine/peripheral/balloon0", ["property"] = "guest-stats" }); }
        catch (QmpCommandException) { return (balloon, null, null); }
        var (total, available) = ParseGuestStats(stats);
        return (balloon, total, available);
    }

    /// <summary>stat-total-memory and stat-available-memory of a guest-stats reply; QEMU reports a statistic it never received as 2^64-1.</summary>
    internal static (long? Total, long? Available) ParseGuestStats(JsonNode? reply)
    {
        if (reply?["last-update"]?.GetValue<long>() is not > 0 || reply["stats"] is not JsonObject stats) return (null, null);
        static long? Stat(JsonObject stats, string name) =>
            stats[name] is JsonValue v && v.TryGetValue<ulong>(out var n) && n != ulong.MaxValue && n <= long.MaxValue ? (long)n : null;
        return (Stat(stats, "stat-total-memory"), Stat(stats, "stat-available-memory"));
    }

    /// <summary>utime + stime (fields 14 and 15 of /proc/&lt;pid&gt;/stat, counted after the parenthesised command name) in seconds.</summary>
    internal static double ParseCpuSeconds(string stat)
    {
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state); utime is field 14, stime field 15.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / ClockTicksPerSecond;
    }

    /// <summary>VmRSS of /proc/&lt;pid&gt;/status in bytes, or null when absent (a zombie).</summary>
    internal static long? ParseRssBytes(string status)
    {
        foreach (var line in status.Split('\n'))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return null;
    }

    /// <summary>The tap devices QEMU opens (-netdev tap,...,ifname=NAME).</summary>
    internal static IEnumerable<string> TapsOf(IReadOnlyList<string> commandLine)
    {
        foreach (var arg in commandLine)
        {
            if (!arg.StartsWith("tap,", StringComparison.Ordinal)) continue;
            foreach (var part in arg.Split(','))
                if (part.StartsWith("ifname=", StringComparison.Ordinal)) yield return part["ifname=".Length..];
        }
    }

    static long? ReadCounter(string path)
    {
        try { return long.Parse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }

    /// <summary>Block I/O summed over the devices of query-blockstats.</summary>
    internal sealed record BlockTotals(long ReadBytes, long WriteBytes, long ReadOps, long WriteOps)
    {
        public static BlockTotals Of(JsonNode? reply)
        {
            long rb = 0, wb = 0, ro = 0, wo = 0;
            foreach (var device in reply as JsonArray ?? [])
            {
                if (device?["stats"] is not JsonObject stats) continue;
                rb += stats["rd_bytes"]?.GetValue<long>() ?? 0;
                wb += stats["wr_bytes"]?.GetValue<long>() ?? 0;
                ro += stats["rd_operations"]?.GetValue<long>() ?? 0;
                wo += stats["wr_operations"]?.GetValue<long>() ?? 0;
            }
            return new BlockTotals(rb, wb, ro, wo);
        }
    }
}
