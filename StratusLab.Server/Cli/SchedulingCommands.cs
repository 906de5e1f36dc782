using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>Hosts: capacity and usage, add, drain, remove (admin).</summary>
public static class SchedulingCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("describe-hosts", "", "hosts with capacity, allocated and measured use, running VMs (admin)", DescribeHosts) { Example = "stratuslab describe-hosts" },
        new("host-add", "NAME [--cpus N] [--memory MiB] [--driver simulated|ssh|cloud] [--ssh USER@ADDRESS] [--ssh-port PORT] [--identity FILE] [--node-root DIR] [--boot cache|iscsi] [--cloud URL] [--peer-token TOKEN] [--kind stratuslab|ec2] [--access-key-id ID] [--secret-access-key KEY] [--region REGION] [--burst]",
            "add a host (admin): a simulated one (--cpus, --memory), a compute node reached over SSH (--ssh), or a peer cloud (--cloud)", AddHost)
        {
            Example = "stratuslab host-add sim1 --cpus 16 --memory 65536 --driver simulated\nstratuslab host-add node1 --ssh root@192.0.2.10 --identity /root/.ssh/id_ed25519\nstratuslab host-add node2 --ssh root@192.0.2.11 --boot iscsi\nstratuslab host-add peer1 --cloud https://peer.example.org:8440/ --peer-token slt_... --burst",
            Describe = new Dictionary<string, string>
            {
                ["--ssh"] = "USER@ADDRESS of an SSH compute node (driver ssh): the server logs in with OpenSSH, pins its host key and probes it",
                ["--cpus"] = "the host's CPUs (simulated: required; ssh: overrides the probed count)",
                ["--memory"] = "the host's memory in MiB (simulated: required; ssh: overrides the probed amount)",
            },
        },
        new("host-show", "NAME", "one host: state and reason, capacity, and for a peer cloud the terminations it is still owed (admin)", ShowHost)
            { Example = "stratuslab host-show peer1" },
        new("host-probe", "NAME", "probe an SSH node now: tools, QEMU, KVM, capacity; ERROR with the reason when something is missing (admin)", ProbeHost)
            { Example = "stratuslab host-probe node1" },
        new("host-forget-key", "NAME", "forget an SSH node's pinned host key (after it was re-installed); the next probe pins the new one (admin)", ForgetKey)
            { Example = "stratuslab host-forget-key node1" },
        new("host-disable", "NAME", "drain a host: it gets no new instances (admin)", host => Toggle(host, "disable")) { Example = "stratuslab host-disable sim1" },
        new("host-enable", "NAME", "let a host take instances again (admin)", host => Toggle(host, "enable")) { Example = "stratuslab host-enable sim1" },
        new("host-evacuate", "NAME",
            "drain a host and move its instances to other hosts: running ones are stopped there and started elsewhere; says per instance where it went, or why it stayed (admin)",
            EvacuateHost) { Example = "stratuslab host-evacuate node1" },
        new("host-delete", "NAME [--force]", "remove a host that holds no instance; --force also drops the terminations a peer cloud is still owed (terminate those there yourself) (admin)", DeleteHost) { Example = "stratuslab host-delete sim1" },
    ];

    static async Task<int> DescribeHosts(CliContext cx)
    {
        cx.Args.AllowOnly();
        var hosts = await cx.Api.GetAsync("api/v1/hosts");
        return cx.Print(hosts, list => cx.Table(list.AsArray(),
            ("name", h => h["name"]?.ToString() + (h["local"]!.GetValue<bool>() ? " (local)" : "")),
            ("driver", h => h["driver"]?.ToString()),
            ("state", h => (h["enabled"]!.GetValue<bool>() ? "enabled" : "disabled") + (h["state"]?.ToString() is { Length: > 0 } st and not "OK" ? $" {st}: {h["stateReason"]}" : "")),
            ("cpu used/total", h => $"{h["allocatedCpus"]}/{h["cpus"]}"),
            ("mem MiB used/total", h => $"{h["allocatedMemoryMiB"]}/{h["memoryMiB"]}"),
            ("cpu load", h => $"{h["cpuUsagePercent"]}%"),
            ("mem measured", h => h["memoryUsedMiB"]?.ToString()),
            ("vms", h => h["runningVms"]?.ToString())));
    }

    static async Task<int> AddHost(CliContext cx)
    {
        var name = cx.Args.Positional(0, "the host name");
        var ssh = cx.Args.Option("--ssh");
        var cloud = cx.Args.Option("--cloud");
        var driver = cx.Args.Option("--driver") ?? (cloud is not null ? "cloud" : ssh is null ? "simulated" : "ssh");
        if (driver == "cloud") return await AddPeerCloud(cx, name, cloud);
        if ((cloud ?? cx.Args.Option("--peer-token") ?? cx.Args.Option("--access-key-id") ?? cx.Args.Option("--secret-access-key") ?? cx.Args.Option("--region")) is not null || cx.Args.Has("--burst"))
            throw new UsageException("--cloud, --peer-token, --access-key-id, --secret-access-key, --region and --burst are for peer clouds; drop them, or use --driver cloud.");
        if (driver == "ssh" && ssh is null) throw new UsageException("--ssh USER@ADDRESS is required for an SSH node.");
        if (driver != "ssh" && (ssh ?? cx.Args.Option("--ssh-port") ?? cx.Args.Option("--identity") ?? cx.Args.Option("--node-root") ?? cx.Args.Option("--boot")) is not null)
            throw new UsageException("--ssh, --ssh-port, --identity, --node-root and --boot are for SSH nodes; drop them, or use --driver ssh.");
        var cpus = cx.Args.LongOption("--cpus");
        var memory = cx.Args.LongOption("--memory");
        if (driver == "simulated" && (cpus is null || memory is null)) throw new UsageException("a simulated host needs --cpus N and --memory MiB.");
        var identity = cx.Args.Option("--identity") is { } key ? Path.GetFullPath(key) : null;
        var body = new JsonObject { ["name"] = name, ["driver"] = driver };
        if (cpus is not null) body["cpus"] = cpus;
        if (memory is not null) body["memoryMiB"] = memory;
        if (ssh is not null) body["ssh"] = ssh;
        if (cx.Args.LongOption("--ssh-port") is { } port) body["port"] = port;
        if (identity is not null) body["keyFile"] = identity;
        if (cx.Args.Option("--node-root") is { } root) body["root"] = root;
        if (cx.Args.Option("--boot") is { } boot) body["bootDisks"] = boot;
        var host = await cx.Api.PostAsync("api/v1/hosts", body);
        return cx.Print(host, h => cx.Out.WriteLine(HostLine("added host", h)));
    }

    /// <summary>A peer cloud: another StratusLab server (--peer-token) or an EC2 endpoint (--kind ec2 with an access key).</summary>
    static async Task<int> AddPeerCloud(CliContext cx, string name, string? url)
    {
        if (url is null) throw new UsageException("--cloud URL is required for a peer cloud (its base URL, like https://peer.example.org:8440/).");
        if ((cx.Args.Option("--ssh") ?? cx.Args.Option("--ssh-port") ?? cx.Args.Option("--identity") ?? cx.Args.Option("--node-root") ?? cx.Args.Option("--boot")) is not null)
            throw new UsageException("--ssh, --ssh-port, --identity, --node-root and --boot are for SSH nodes; a peer cloud takes --cloud and its credentials.");
        var body = new JsonObject { ["name"] = name, ["driver"] = "cloud", ["url"] = url };
        if (cx.Args.Option("--kind") is { } kind) body["kind"] = kind;
        if (cx.Args.Option("--peer-token") is { } token) body["token"] = token;
        if (cx.Args.Option("--access-key-id") is { } keyId) body["accessKeyId"] = keyId;
        if (cx.Args.Option("--secret-access-key") is { } secret) body["secretAccessKey"] = secret;
        if (cx.Args.Option("--region") is { } region) body["region"] = region;
        if (cx.Args.Has("--burst")) body["burst"] = true;
        if (cx.Args.LongOption("--cpus") is { } cpus) body["cpus"] = cpus;
        if (cx.Args.LongOption("--memory") is { } memory) body["memoryMiB"] = memory;
        var host = await cx.Api.PostAsync("api/v1/hosts", body);
        return cx.Print(host, h => cx.Out.WriteLine(HostLine("added peer cloud", h)));
    }

    static string HostLine(string what, JsonNode h)
    {
        var line = $"{what} {h["name"]} ({h["driver"]}, {h["cpus"]} CPU, {h["memoryMiB"]} MiB{(h["bootDisks"]?.ToString() is { } boot ? ", boot disks " + boot : "")})";
        if (h["state"]?.ToString() is { } state) line += $": {state}";
        if (h["stateReason"]?.ToString() is { Length: > 0 } reason) line += $" ({reason})";
        return line;
    }

    static async Task<int> ShowHost(CliContext cx)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the host name");
        var host = await cx.Api.GetAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}");
        return cx.Print(host, h =>
        {
            cx.Out.WriteLine(HostLine("host", h));
            if (h["cloud"]?.ToString() is { } url) cx.Out.WriteLine($"peer cloud {url} ({h["cloudKind"]}{(h["region"]?.ToString() is { } region ? ", region " + region : "")})");
            if (h["pendingRemoteDeletions"]?.AsArray() is not { Count: > 0 } owed) return;
            cx.Out.WriteLine($"{owed.Count} instance(s) still to terminate there (retried while the peer answers):");
            foreach (var o in owed)
                cx.Out.WriteLine($"  {o!["remoteId"]} (instance {o["instanceId"]}): {o["reason"]}; {o["attempts"]} attempt(s)" +
                                 (o["lastError"]?.ToString() is { Length: > 0 } error ? $", last error: {error}" : ""));
        });
    }

    static async Task<int> ProbeHost(CliContext cx)
    {
        var name = cx.Args.Positional(0, "the host name");
        var host = await cx.Api.PostAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}/probe", null);
        return cx.Print(host, h => cx.Out.WriteLine(HostLine("probed host", h)));
    }

    static async Task<int> ForgetKey(CliContext cx)
    {
        var name = cx.Args.Positional(0, "the host name");
        var host = await cx.Api.PostAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}/forget-host-key", null);
        return cx.Print(host, h => cx.Out.WriteLine(HostLine("forgot the host key of", h)));
    }

    static async Task<int> Toggle(CliContext cx, string action)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the host name");
        var host = await cx.Api.PostAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}/{action}", null);
        return cx.Print(host, h => cx.Out.WriteLine($"host {name} {(h["enabled"]!.GetValue<bool>() ? "enabled" : "disabled")}"));
    }

    static async Task<int> EvacuateHost(CliContext cx)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the host name");
        var result = await cx.Api.PostAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}/evacuate", null);
        var printed = cx.Print(result, r =>
        {
            cx.Out.WriteLine($"host {r["host"]} drained: {r["moved"]} instance(s) moved, {r["refused"]} stayed");
            foreach (var i in r["instances"]!.AsArray())
                cx.Out.WriteLine(i!["movedTo"] is { } to
                    ? $"  {i["id"]} {i["name"]}: {i["stateBefore"]} -> {i["state"]} on {to}{(i["reason"] is { } why ? $" ({why})" : "")}"
                    : $"  {i["id"]} {i["name"]}: stays {i["state"]} on {r["host"]}: {i["reason"]}");
        });
        // Some instance could not move: the admin has something left to do, and scripts see it.
        return printed != 0 ? printed : result!["refused"]!.GetValue<int>() > 0 ? 1 : 0;
    }

    static async Task<int> DeleteHost(CliContext cx)
    {
        cx.Args.AllowOnly("--force");
        var name = cx.Args.Positional(0, "the host name");
        await cx.Api.DeleteAsync($"api/v1/hosts/{Uri.EscapeDataString(name)}" + (cx.Args.Has("--force") ? "?force=true" : ""));
        return cx.Print(new JsonObject { ["deleted"] = name }, _ => cx.Out.WriteLine($"removed host {name}"));
    }
}
