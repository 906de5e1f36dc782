using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;

namespace StratusLab.Server.Cli;

/// <summary>Instances: run, describe, kill, shutdown, connect; instance types.</summary>
public static class ComputeCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("run-instance", "[IMAGE] [-t TYPE] [-n COUNT] [--name NAME] [--cpu N --memory MiB] [--context K=V]... [-k FILE]... [--key-name NAME] [--user-data FILE|-] [--hostname NAME] [--context-method opennebula|nocloud] [--ready-port PORT] [--ready-timeout S] [--network NAME]... [--port GUEST-PORT]... [--persistent-disk UUID]... [-w] [--timeout S]",
            "start instances of an image (default: the test appliance); IMAGE is a name, a Marketplace identifier, an http(s) URL or a volume UUID", RunInstance)
            { Example = "stratuslab run-instance --wait\nstratuslab run-instance -n 3 -t m1.small debian --network lab", Describe = new Dictionary<string, string> { ["--type"] = "the instance type (see describe-instance-types)", ["--name"] = "the instance name (with -n, numbered)" } },
        new("describe-instance", "[ID]... [--state STATE] [-a]", "show instances (all of yours without IDs; DONE ones only with --all or --state DONE)", DescribeInstance)
            { Example = "stratuslab describe-instance\nstratuslab describe-instance 3 --json" },
        new("kill-instance", "ID...", "terminate instances at once (their disks are discarded)", KillInstance) { Example = "stratuslab kill-instance 3 4" },
        new("shutdown-instance", "ID... [--save]", "power instances off gracefully (ACPI), then remove them; with --save their disks become new images", ShutdownInstance) { Example = "stratuslab shutdown-instance 3\nstratuslab shutdown-instance 3 --save" },
        new("instance-action", "ID stop|start|reboot|suspend|resume [--force] [--graceful]", "stop, start, reboot, suspend or resume an instance", InstanceAction) { Example = "stratuslab instance-action 3 reboot\nstratuslab instance-action 3 reboot --graceful" },
        new("stop-instance", "ID... [--force]", "stop instances, keeping their disks (ACPI power-off; --force: power off at once); start them again with instance-action ID start", StopInstance)
            { Example = "stratuslab stop-instance 3\nstratuslab stop-instance 3 --force" },
        new("rename-instance", "ID NAME", "give an instance a new name (its guest keeps its host name)", RenameInstance) { Example = "stratuslab rename-instance 3 web-1" },
        new("connect-instance", "ID [--identity KEY] [-u NAME] [--ssh] [--console] [-- COMMAND...]", "print (or with --ssh run) the ssh command for an instance; with a COMMAND, run it there and return its exit code; --console: its interactive serial console (Ctrl-] quits)", ConnectInstance)
            { Example = "stratuslab connect-instance 3 --ssh\nstratuslab connect-instance 3 -- uname -a\nstratuslab connect-instance 3 --console" },
        new("describe-instance-types", "", "list the instance types", DescribeTypes) { Example = "stratuslab describe-instance-types" },
    ];

    static readonly string[] Actions = ["stop", "start", "reboot", "suspend", "resume"];

    static async Task<int> RunInstance(CliContext cx)
    {
        var args = cx.Args;
        var context = new Dictionary<string, string>();
        foreach (var kv in args.All("--context"))
        {
            var eq = kv.IndexOf('=');
            if (eq <= 0) throw new UsageException($"--context '{kv}' is not KEY=VALUE.");
            context[kv[..eq]] = kv[(eq + 1)..];
        }
        var keys = new List<string>();
        foreach (var file in args.All("--key"))
        {
            if (!File.Exists(file)) throw new UsageException($"--key '{file}' does not exist; give an SSH public key file such as ~/.ssh/id_ed25519.pub.");
            keys.AddRange(File.ReadAllLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
        }
        var keyName = args.Option("--key-name");
        if (args.All("--key").Count == 0 && keyName is null && DefaultPublicKey() is { } defaultKey) keys.Add(defaultKey);
        if (keys.Count == 0 && keyName is null && !await HasDefaultKeyPairAsync(cx))
            cx.Err.WriteLine("warning: this instance gets no SSH key, so nobody can log in to it by SSH. Make one with 'ssh-keygen -t ed25519' and "
                + "store it with 'stratuslab key-import default ~/.ssh/id_ed25519.pub' (it becomes your default key), or pass --key FILE.");
        string? userData = null;
        if (args.Option("--user-data") is { } userDataFile)
        {
            if (userDataFile == "-") userData = await Console.In.ReadToEndAsync();
            else if (File.Exists(userDataFile)) userData = await File.ReadAllTextAsync(userDataFile);
            else throw new UsageException($"--user-data '{userDataFile}' does not exist; give a cloud-init file (#cloud-config, a #! script, MIME multipart) or '-' for stdin.");
        }
        var ports = args.All("--port").Select(p => int.TryParse(p, out var v) ? v : throw new UsageException($"--port '{p}' is not a port number.")).ToList();
        var volumes = new List<string>();
        foreach (var v in args.All("--persistent-disk")) volumes.Add(await PdiskCommands.Uuid(cx, v));
        var image = args.Positionals.Count > 0 ? args.Positionals[0] : null;
        if (image is not null && !Guid.TryParse(image, out _) && image.Length is >= 6 and < 36 && image.All(c => char.IsAsciiHexDigit(c) || c == '-') && image.Contains('-'))
            image = await PdiskCommands.Uuid(cx, image);
        var request = new CreateInstanceRequest(
            Image: image,
            InstanceType: args.Option("--type"),
            Cpu: Int(args, "--cpu"),
            MemoryMiB: args.LongOption("--memory"),
            Name: args.Option("--name"),
            Networks: args.All("--network").Count > 0 ? args.All("--network") : null,
            Volumes: volumes.Count > 0 ? volumes : null,
            Context: context.Count > 0 ? context : null,
            SshKeys: keys.Count > 0 ? keys : null,
            UserData: userData,
            Count: Int(args, "--count"),
            ForwardPorts: ports.Count > 0 ? ports : null,
            ContextMethod: args.Option("--context-method"),
            Hostname: args.Option("--hostname"),
            KeyName: keyName,
            ReadyPort: Int(args, "--ready-port")) { ReadyTimeoutSeconds = Int(args, "--ready-timeout") };
        var wait = args.Has("--wait");
        var timeout = TimeSpan.FromSeconds(args.LongOption("--timeout") ?? 300);
        // Subscribed before the launch, so no state change is missed between the answer and the stream.
        using var events = wait ? await InstanceWatch.OpenAsync(cx) : null;
        var created = await cx.Api.SendAsync(HttpMethod.Post, "api/v1/instances", request);
        var list = (created is JsonArray ? created.Deserialize<List<InstanceView>>(ApiClient.Json) : [created.Deserialize<InstanceView>(ApiClient.Json)!])!;
        if (wait) list = await InstanceWatch.UntilReadyAsync(cx, events!, list, timeout);
        if (cx.Json)
        {
            if (created is JsonArray) cx.Print(list, _ => { });
            else cx.Print(list[0], _ => { });
        }
        else foreach (var n in list) cx.Out.WriteLine(Summary(n));
        var failed = list.Where(n => n.State == "FAILED").ToList();
        if (failed.Count > 0)
            throw new CliException($"{failed.Count} instance(s) failed: " + string.Join("; ", failed.Select(f => $"{f.Id} in {f.FailedStep}: {f.FailureReason}")));
        if (wait && list.Any(n => !n.Ready))
            throw new CliException("timed out before every instance was ready; see 'stratuslab describe-instance'.");
        return 0;
    }

    static int? Int(CliArgs args, string name) => args.LongOption(name) is { } v
        ? v is >= int.MinValue and <= int.MaxValue ? (int)v : throw new UsageException($"{name} = {v} is out of range.")
        : null;

    static async Task<bool> HasDefaultKeyPairAsync(CliContext cx)
    {
        try { return (await cx.Api.GetAsync<List<KeyPair>>("api/v1/keys")).Any(k => k.IsDefault); }
        catch (CliException) { return true; } // a server without key pairs: no warning rather than a wrong one
    }

    static string Summary(InstanceView n)
    {
        var ports = n.PortForwards.Select(p => $"{p.GuestPort}->{p.HostAddress}:{p.HostPort}");
        var addresses = n.Nics.Select(x => $"{x.Network}:{x.Ip}");
        var state = n.State + (n.Ready ? " (ready)" : "");
        var failure = n.FailureReason is { } reason ? $"  {n.FailedStep}: {reason}" : "";
        return $"{n.Id,-5} {n.Name,-16} {state,-18} {n.Image} {n.Cpu} CPU {n.MemoryMiB} MiB  {string.Join(" ", addresses.Concat(ports))}{failure}";
    }

    static async Task<int> DescribeInstance(CliContext cx)
    {
        List<InstanceView> rows;
        if (cx.Args.Positionals.Count == 0)
        {
            var state = cx.Args.Option("--state");
            rows = await cx.Api.GetAsync<List<InstanceView>>("api/v1/instances" + (state is null ? "" : "?state=" + Uri.EscapeDataString(state)));
            // Ended instances stay listed by the API for their history; the CLI shows them on request.
            if (state is null && !cx.Args.Has("--all")) rows = rows.Where(r => r.State != "DONE").ToList();
        }
        else
        {
            rows = [];
            foreach (var id in cx.Args.Positionals) rows.Add(await cx.Api.GetAsync<InstanceView>($"api/v1/instances/{Id(id)}"));
        }
        if (cx.Json)
        {
            if (cx.Args.Positionals.Count == 1) return cx.Print(rows[0], _ => { });
            return cx.Print(rows, _ => { });
        }
        var volumes = rows.Any(r => r.Volumes.Count > 0) || cx.Args.Positionals.Count > 0 ? await MountsAsync(cx) : [];
        cx.TableOf(rows,
            ("id", n => n.Id.ToString()), ("name", n => n.Name), ("state", n => n.State + (n.Ready ? "/ready" : "")),
            ("image", n => n.Image), ("cpu", n => n.Cpu.ToString()), ("mem", n => n.MemoryMiB + "M"),
            ("ip", n => string.Join(",", n.Nics.Select(x => x.Ip))),
            ("ports", n => string.Join(",", n.PortForwards.Select(p => $"{p.GuestPort}:{p.HostPort}"))),
            ("disks", n => string.Join(",", volumes.Where(v => v.InstanceId == n.Id).Select(v => $"{v.Uuid[..8]}:{v.GuestDevice}"))),
            ("reason", n => n.FailureReason is { } r ? $"{n.FailedStep}: {r}" : ""));
        return 0;
    }

    sealed record MountRow(string Uuid, long InstanceId, string GuestDevice);

    /// <summary>The volumes mounted in instances, with the device the guest sees them as.</summary>
    static async Task<List<MountRow>> MountsAsync(CliContext cx)
    {
        try
        {
            var volumes = await cx.Api.GetAsync<List<VolumeView>>("api/v1/volumes");
            return volumes.SelectMany(v => v.Mounts.Select(m => new MountRow(v.Uuid, m.InstanceId, m.GuestDevice))).ToList();
        }
        catch (CliException) { return []; }
    }

    static async Task<int> KillInstance(CliContext cx) => await Each(cx, "killed", id => cx.Api.DeleteAsync($"api/v1/instances/{id}"));

    static async Task<int> ShutdownInstance(CliContext cx) =>
        await Each(cx, cx.Args.Has("--save") ? "shutting down (its disk becomes an image):" : "shutting down",
            id => cx.Api.PostAsync($"api/v1/instances/{id}/actions/shutdown{(cx.Args.Has("--save") ? "?save=true" : "")}", null));

    static async Task<int> InstanceAction(CliContext cx)
    {
        var id = Id(cx.Args.Positional(0, "the instance ID"));
        var action = cx.Args.Positional(1, "the action (stop, start, reboot, suspend, resume)");
        if (!Actions.Contains(action))
            throw new UsageException($"'{action}' is not an action{CommandTree.Suggest(action, Actions)}; give one of {string.Join(", ", Actions)} (shutdown-instance and kill-instance end an instance).");
        var node = await cx.Api.PostAsync($"api/v1/instances/{id}/actions/{Uri.EscapeDataString(action)}{ActionQuery(cx)}", null);
        return cx.Print(node, n => cx.Out.WriteLine($"{action} requested for instance {id} ({n["state"]})"));
    }

    static string ActionQuery(CliContext cx)
    {
        var query = new[] { ("--force", "force=true"), ("--graceful", "graceful=true") }.Where(f => cx.Args.Has(f.Item1)).Select(f => f.Item2).ToList();
        return query.Count == 0 ? "" : "?" + string.Join('&', query);
    }

    static Task<int> StopInstance(CliContext cx) =>
        Each(cx, cx.Args.Has("--force") ? "powered off (forced)" : "stop requested for",
            id => cx.Api.PostAsync($"api/v1/instances/{id}/actions/stop{ActionQuery(cx)}", null));

    static async Task<int> RenameInstance(CliContext cx)
    {
        var id = Id(cx.Args.Positional(0, "the instance ID"));
        var name = cx.Args.Positional(1, "the new name");
        var node = await cx.Api.SendAsync(HttpMethod.Patch, $"api/v1/instances/{id}", new { name });
        return cx.Print(node, n => cx.Out.WriteLine($"instance {id} is now named {n["name"]}"));
    }

    static async Task<int> Each(CliContext cx, string verb, Func<long, Task<JsonNode?>> act)
    {
        cx.Args.AllowOnly();
        if (cx.Args.Positionals.Count == 0) throw new UsageException("give at least one instance ID.");
        var results = new JsonArray();
        foreach (var id in cx.Args.Positionals.Select(Id)) results.Add(await act(id));
        return cx.Print(results, _ => { foreach (var id in cx.Args.Positionals) cx.Out.WriteLine($"{verb} instance {id}"); });
    }

    static async Task<int> ConnectInstance(CliContext cx)
    {
        if (cx.Args.Has("--console"))
        {
            return await ConsoleCommands.InteractiveAsync(cx, Id(cx.Args.Positional(0, "the instance ID")));
        }
        var args = cx.Args;
        var (idText, remote) = SplitRemote(cx.Raw);
        var id = Id(idText ?? throw new UsageException("missing the instance ID."));
        var node = (await cx.Api.GetAsync($"api/v1/instances/{id}"))!;
        var command = SshCommand(node, args.Option("--user"), args.Option("--identity"), remote)
            ?? throw new CliException($"instance {id} has no forwarded SSH port (state {node["state"]}).");
        if (!args.Has("--ssh") && remote.Count == 0)
            return cx.Print(new JsonObject { ["command"] = new JsonArray(command.Select(c => (JsonNode)c).ToArray()) }, _ => cx.Out.WriteLine(string.Join(' ', command)));
        var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new CliException("could not start ssh; is openssh-client installed?");
        await process.WaitForExitAsync();
        return process.ExitCode;
    }

    static readonly HashSet<string> ConnectValueOptions = ["--identity", "--user", "-u", "--endpoint", "--token", "--ca-file", "--accept-fingerprint"];
    static readonly HashSet<string> ConnectFlags = ["--ssh", "--console", "--json", "--verbose", "-v"];

    /// <summary>
    /// The instance ID and the remote command from the words as typed: our options until the first word after the ID
    /// (or '--'); from there on everything is the remote command, its own options ('ls -a') included.
    /// </summary>
    internal static (string? Id, List<string> Remote) SplitRemote(IReadOnlyList<string> words)
    {
        string? id = null;
        for (var i = 0; i < words.Count; i++)
        {
            var word = words[i];
            if (word == "--") return (id, words.Skip(i + 1).ToList());
            if (ConnectValueOptions.Contains(word)) { i++; continue; }
            if (ConnectFlags.Contains(word) || (word.StartsWith("--") && ConnectValueOptions.Contains(word.Split('=')[0]))) continue;
            if (id is null) { id = word; continue; }
            return (id, words.Skip(i).ToList());
        }
        return (id, []);
    }

    /// <summary>
    /// The ssh command for an instance: its forwarded SSH port, as <paramref name="user"/>, else the image's default login
    /// user when the instance shows one (loginUser), else root; then the remote command, if any. Null without an SSH forward.
    /// </summary>
    public static List<string>? SshCommand(JsonNode instance, string? user, string? identity, IReadOnlyList<string> remote)
    {
        var ssh = instance["portForwards"]?.AsArray().FirstOrDefault(p => p!["guestPort"]!.GetValue<int>() == 22);
        if (ssh is null) return null;
        var login = user ?? instance["loginUser"]?.GetValue<string>() ?? instance["defaultUser"]?.GetValue<string>() ?? "root";
        var command = new List<string> { "ssh", "-p", ssh["hostPort"]!.ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR" };
        if (identity is not null) command.AddRange(["-i", identity]);
        command.Add($"{login}@{ssh["hostAddress"]}");
        if (remote.Count > 0) command.AddRange(["--", .. remote]);
        return command;
    }

    static async Task<int> DescribeTypes(CliContext cx)
    {
        var types = await cx.Api.GetAsync<List<InstanceTypeView>>("api/v1/instance-types");
        return cx.Print(types, list => cx.TableOf(list, ("name", t => t.Name), ("cpu", t => t.Cpu.ToString()), ("memory (MiB)", t => t.MemoryMiB.ToString())));
    }

    static long Id(string text) => long.TryParse(text, out var id) && id > 0 ? id : throw new UsageException($"'{text}' is not an instance ID (a positive number).");

    static string? DefaultPublicKey()
    {
        var ssh = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh");
        foreach (var name in new[] { "id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub" })
        {
            var path = Path.Combine(ssh, name);
            if (File.Exists(path)) return File.ReadAllText(path).Trim();
        }
        return null;
    }

}
