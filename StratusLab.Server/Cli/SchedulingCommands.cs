using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>Hosts: capacity and usage, add, drain, remove (admin).</summary>
public static class SchedulingCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("describe-hosts", "", "hosts with capacity, allocated and measured use, running VMs (admin)", DescribeHosts) { Example = "stratuslab describe-hosts" },
        new("host-add", "NAME --cpus N --memory MiB [--driver simulated]", "add a (simulated) host (admin)", AddHost) { Example = "stratuslab host-add sim1 --cpus 16 --memory 65536 --driver simulated" },
        new("host-disable", "NAME", "drain a host: it gets no new instances (admin)", host => Toggle(host, "disable")) { Example = "stratuslab host-disable sim1" },
        new("host-enable", "NAME", "let a host take instances again (admin)", host => Toggle(host, "enable")) { Example = "stratuslab host-enable sim1" },
        new("host-delete", "NAME", "remove a host that holds no instance (admin)", DeleteHost) { Example = "stratuslab host-delete sim1" },
    ];

    static async Task<int> DescribeHosts(CliContext cx)
    {
        cx.Args.AllowOnly();
        var hosts = await cx.Api.GetAsync("api/v1/hosts");
        return cx.Print(hosts, list => cx.Table(list.AsArray(),
            ("name", h => h["name"]?.ToString() + (h["local"]!.GetValue<bool>() ? " (local)" : "")),
            ("driver", h => h["driver"]?.ToString()),
            ("state", h => h["enabled"]!.GetValue<bool>() ? "enabled" : "disabled"),
            ("cpu used/total", h => $"{h["allocatedCpus"]}/{h["cpus"]}"),
            ("mem MiB used/total", h => $"{h["allocatedMemoryMiB"]}/{h["memoryMiB"]}"),
            ("cpu load", h => $"{h["cpuUsagePercent"]}%"),
            ("mem measured", h => h["memoryUsedMiB"]?.ToString()),
            ("vms", h => h["runningVms"]?.ToString())));
    }

    static async Task<int> AddHost(CliContext cx)
    {
        cx.Args.AllowOnly("--cpus", "--memory", "--driver");
        var body = new
        {
            name = cx.Args.Positional(0, "the host name"),
            driver = cx.Args.Option("--driver") ?? "simulated",
            cpus = cx.Args.LongOption("--cpus") ?? throw new UsageException("--cpus N is required."),
            memoryMiB = cx.Args.LongOption("--memory") ?? throw new UsageException("--memory MiB is required."),
        };
        var host = await cx.Api.PostAsync("api/v1/hosts", body);
        return cx.Print(host, h => cx.Out.WriteLine($"added host {h["name"]} ({h["driver"]}, {h["cpus"]} CPU, {h["memoryMiB"]} MiB)"));
    }

    static async Task<int> Toggle(CliContext cx, string action)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the host name");
        var host = await cx.Api.PostAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}/{action}", null);
        return cx.Print(host, h => cx.Out.WriteLine($"host {name} {(h["enabled"]!.GetValue<bool>() ? "enabled" : "disabled")}"));
    }

    static async Task<int> DeleteHost(CliContext cx)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the host name");
        await cx.Api.DeleteAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}");
        return cx.Print(new JsonObject { ["deleted"] = name }, _ => cx.Out.WriteLine($"removed host {name}"));
    }
}
