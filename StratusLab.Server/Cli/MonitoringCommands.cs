using System.Globalization;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>Measured use (samples and guest KPIs per instance, host samples) and accounting (usage records, APEL).</summary>
public static class MonitoringCommands
{
    static readonly Dictionary<string, string> Window = new()
    {
        ["--since"] = "the start of the window: an ISO-8601 time or an age such as 30s, 15m, 2h, 7d (default the last hour)",
    };

    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("describe-metrics", "ID [--since TIME] [--until TIME] [--resolution raw|rollup|auto]",
            "an instance's measured use: CPU, memory, disk and network per sample, and the KPIs its guest reported", DescribeMetrics)
            { Example = "stratuslab describe-metrics 3 --since 2h\nstratuslab describe-metrics 3 --since 7d --resolution rollup --json", Describe = Window },
        new("describe-host-metrics", "NAME [--since TIME] [--until TIME] [--resolution raw|rollup|auto]",
            "a host's samples: capacity, allocations, measured CPU and memory, load (admin)", DescribeHostMetrics)
            { Example = "stratuslab describe-host-metrics vm --since 1h", Describe = Window },
        new("usage", "[--user NAME] [--group NAME] [--from TIME] [--to TIME] [--by user|group|image|day] [--format json|csv]",
            "usage records (one per instance per accounting period), or their sums --by user, group, image or day; yours, or anyone's for admins", Usage)
        {
            Example = "stratuslab usage --from 2026-11-01 --by image\nstratuslab usage --user alice --format csv > alice.csv",
            Describe = new Dictionary<string, string> { ["--format"] = "json (a table, or JSON with --json) or csv (the server's CSV as is)" },
        },
        new("usage-apel", "[--from TIME] [--to TIME]", "usage records as an APEL cloud message (APEL-cloud-message: v0.4), for EGI accounting (admin)", Apel)
            { Example = "stratuslab usage-apel --from 2026-11-01 --to 2026-12-01 > apel.msg" },
    ];

    static string Query(params (string Name, string? Value)[] parameters)
    {
        var given = parameters.Where(p => p.Value is { Length: > 0 }).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return given.Count == 0 ? "" : "?" + string.Join('&', given);
    }

    static string Window3(CliContext cx) =>
        Query(("since", cx.Args.Option("--since")), ("until", cx.Args.Option("--until")), ("resolution", cx.Args.Option("--resolution")));

    static string? Number(JsonNode? node, Func<double, string> format) =>
        node is null ? null : format(node.GetValue<double>());

    static string Bytes(JsonNode? node) => node is null ? "" : CliTerminal.Size(node.GetValue<long>());

    static async Task<int> DescribeMetrics(CliContext cx)
    {
        var text = cx.Args.Positional(0, "the instance ID");
        var id = long.TryParse(text, out var n) && n > 0 ? n : throw new UsageException($"'{text}' is not an instance ID (a positive number).");
        var metrics = await cx.Api.GetAsync($"api/v1/instances/{id}/metrics{Window3(cx)}");
        return cx.Print(metrics, m =>
        {
            var samples = m["samples"]!.AsArray();
            var resolution = m["resolution"]!.GetValue<long>();
            cx.Out.WriteLine($"instance {id}: {samples.Count} {(resolution == 0 ? "raw samples" : $"{resolution} s rollups")} from {m["since"]} to {m["until"]}"
                + (samples.Count > 0 && samples[0]!["simulated"]!.GetValue<bool>() ? " (simulated driver: modelled counters)" : ""));
            cx.Table(samples,
                ("time", s => s["at"]?.ToString()),
                ("cpu %", s => Number(s["cpuPercent"], v => v.ToString("0.0", CultureInfo.InvariantCulture))),
                ("cpu s", s => Number(s["cpuSeconds"], v => v.ToString("0.0", CultureInfo.InvariantCulture))),
                ("rss", s => Bytes(s["memoryRssBytes"])),
                ("disk read", s => Bytes(s["diskReadBytes"])),
                ("disk written", s => Bytes(s["diskWriteBytes"])),
                ("net rx", s => Bytes(s["netRxBytes"])),
                ("net tx", s => Bytes(s["netTxBytes"])));
            foreach (var kpi in m["kpis"]!.AsArray())
            {
                var points = kpi!["points"]!.AsArray();
                var last = points.Count == 0 ? "-" : points[^1]!["value"]!.GetValue<double>().ToString("G6", CultureInfo.InvariantCulture);
                cx.Out.WriteLine($"KPI {kpi["name"]}: {points.Count} points, last {last}");
            }
        });
    }

    static async Task<int> DescribeHostMetrics(CliContext cx)
    {
        var name = cx.Args.Positional(0, "the host name");
        var metrics = await cx.Api.GetAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}/metrics{Window3(cx)}");
        return cx.Print(metrics, m => cx.Table(m["samples"]!.AsArray(),
            ("time", s => s["at"]?.ToString()),
            ("cpu used/total", s => $"{s["allocatedCpus"]}/{s["cpus"]}"),
            ("mem MiB used/total", s => $"{s["allocatedMemoryMiB"]}/{s["memoryMiB"]}"),
            ("vms", s => s["runningVms"]?.ToString()),
            ("cpu load %", s => Number(s["cpuUsagePercent"], v => v.ToString("0.0", CultureInfo.InvariantCulture))),
            ("mem measured MiB", s => s["memoryUsedMiB"]?.ToString()),
            ("load1", s => Number(s["load1"], v => v.ToString("0.00", CultureInfo.InvariantCulture)))));
    }

    static async Task<int> Usage(CliContext cx)
    {
        var format = cx.Args.Option("--format") ?? "json";
        if (format is not ("json" or "csv")) throw new UsageException($"--format {format} is not accepted; give json or csv.");
        var query = Query(("user", cx.Args.Option("--user")), ("group", cx.Args.Option("--group")), ("from", cx.Args.Option("--from")),
            ("to", cx.Args.Option("--to")), ("by", cx.Args.Option("--by")));
        if (format == "csv")
        {
            using var response = await cx.Api.GetStreamAsync($"api/v1/accounting{query}{(query.Length == 0 ? "?" : "&")}format=csv", "text/csv");
            cx.Out.Write(await response.Content.ReadAsStringAsync());
            return ClientCli.Ok;
        }
        var records = await cx.Api.GetAsync($"api/v1/accounting{query}");
        return cx.Print(records, list =>
        {
            var rows = list.AsArray();
            if (cx.Args.Option("--by") is { } by)
                cx.Table(rows,
                    (by, r => r["key"]?.ToString()),
                    ("instances", r => r["instances"]?.ToString()),
                    ("wall h", r => Hours(r["wallSeconds"])),
                    ("cpu h", r => Hours(r["cpuSeconds"])),
                    ("net rx", r => Bytes(r["netRxBytes"])),
                    ("net tx", r => Bytes(r["netTxBytes"])),
                    ("disk written", r => Bytes(r["diskWriteBytes"])));
            else
                cx.Table(rows,
                    ("instance", r => $"{r["instanceId"]} {r["instanceName"]}"),
                    ("owner", r => r["owner"]?.ToString()),
                    ("image", r => r["image"]?.ToString()),
                    ("type", r => r["instanceType"]?.ToString() ?? $"{r["cpu"]} CPU/{r["memoryMiB"]} MiB"),
                    ("period", r => $"{Day(r["periodStart"])}..{Day(r["periodEnd"])}"),
                    ("state", r => r["state"]?.ToString()),
                    ("wall h", r => Hours(r["wallSeconds"])),
                    ("cpu h", r => Hours(r["cpuSeconds"])),
                    ("net rx/tx", r => $"{Bytes(r["netRxBytes"])}/{Bytes(r["netTxBytes"])}"));
        });
    }

    static string Hours(JsonNode? seconds) => seconds is null ? "" : (seconds.GetValue<long>() / 3600.0).ToString("0.00", CultureInfo.InvariantCulture);

    static string Day(JsonNode? time) => time?.ToString() is { Length: >= 10 } t ? t[..10] : "";

    static async Task<int> Apel(CliContext cx)
    {
        var query = Query(("from", cx.Args.Option("--from")), ("to", cx.Args.Option("--to")));
        using var response = await cx.Api.GetStreamAsync($"api/v1/accounting/apel{query}", "text/plain");
        cx.Out.Write(await response.Content.ReadAsStringAsync());
        return ClientCli.Ok;
    }
}
