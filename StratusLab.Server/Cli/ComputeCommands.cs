using System.Diagnostics;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>Instances: run, describe, kill, shutdown, connect; instance types.</summary>
public static class ComputeCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("run-instance", "[IMAGE] [-t TYPE] [-n COUNT] [--name NAME] [--cpu N --memory MiB] [--context K=V]... [--key FILE] [--key-name NAME] [--user-data FILE|-] [--hostname NAME] [--context-method opennebula|nocloud] [--ready-port PORT] [--network NAME]... [--port GUEST-PORT]... [--persistent-disk UUID]... [--wait] [--timeout S]",
            "start instances of an image (default: the test appliance)", RunInstance),
        new("describe-instance", "[ID]... [--state STATE]", "show instances (all of yours without IDs)", DescribeInstance),
        new("kill-instance", "ID...", "terminate instances at once (their disks are discarded)", KillInstance),
        new("shutdown-instance", "ID...", "power instances off gracefully (ACPI), then remove them", ShutdownInstance),
        new("instance-action", "ID ACTION", "stop, start, reboot, suspend or resume an instance", InstanceAction),
        new("connect-instance", "ID [-i KEY] [--user NAME] [--ssh] [--console] [-- COMMAND...]", "print (or with --ssh run) the ssh command for an instance; with -- COMMAND, run it there and return its exit code; --console: its interactive serial console (Ctrl-] quits)", ConnectInstance),
        new("describe-instance-types", "", "list the instance types", DescribeTypes),
    ];

    static readonly Dictionary<string, string> Aliases = new() { ["-t"] = "--type", ["-n"] = "--count", ["-i"] = "--identity", ["-k"] = "--key", ["-u"] = "--user" };

    static async Task<int> RunInstance(CliContext cx)
    {
        var args = CliArgs.Parse(cx.Args.Positionals.Concat(Flatten(cx.Args)), Aliases);
        args.AllowOnly("--type", "--count", "--name", "--cpu", "--memory", "--context", "--key", "--key-name", "--user-data", "--hostname", "--context-method", "--ready-port",
            "--network", "--port", "--persistent-disk", "--wait", "--timeout", "--ready-timeout");
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
            Console.Error.WriteLine("warning: this instance gets no SSH key, so nobody can log in to it by SSH. Make one with 'ssh-keygen -t ed25519' and "
                + "store it with 'stratuslab key-import default ~/.ssh/id_ed25519.pub' (it becomes your default key), or pass --key FILE.");
        string? userData = null;
        if (args.Option("--user-data") is { } userDataFile)
        {
            if (userDataFile == "-") userData = await Console.In.ReadToEndAsync();
            else if (File.Exists(userDataFile)) userData = await File.ReadAllTextAsync(userDataFile);
            else throw new UsageException($"--user-data '{userDataFile}' does not exist; give a cloud-init file (#cloud-config, a #! script, MIME multipart) or '-' for stdin.");
        }
        var readyPort = args.LongOption("--ready-port");
        var count = args.LongOption("--count");
        var ports = args.All("--port").Select(p => int.TryParse(p, out var v) ? v : throw new UsageException($"--port '{p}' is not a port number.")).ToList();
        var body = new
        {
            image = args.Positionals.Count > 0 ? args.Positionals[0] : null,
            instanceType = args.Option("--type"),
            cpu = args.LongOption("--cpu"),
            memoryMiB = args.LongOption("--memory"),
            name = args.Option("--name"),
            context = context.Count > 0 ? context : null,
            sshKeys = keys.Count > 0 ? keys : null,
            keyName,
            userData,
            hostname = args.Option("--hostname"),
            contextMethod = args.Option("--context-method"),
            readyPort,
            networks = args.All("--network").Count > 0 ? args.All("--network") : null,
            forwardPorts = ports.Count > 0 ? ports : null,
            volumes = args.All("--persistent-disk").Count > 0 ? args.All("--persistent-disk") : null,
            count,
            readyTimeoutSeconds = args.LongOption("--ready-timeout"),
        };
        var created = await cx.Api.PostAsync("api/v1/instances", body);
        var list = created is JsonArray array ? array.Select(n => n!).ToList() : [created!];
        if (args.Has("--wait"))
        {
            var timeout = args.LongOption("--timeout") ?? 300;
            for (var i = 0; i < list.Count; i++)
                list[i] = (await cx.Api.GetAsync($"api/v1/instances/{list[i]["id"]}/wait?state=ready&timeout={Math.Min(timeout, 600)}"))!;
        }
        var output = created is JsonArray ? new JsonArray(list.Select(n => n.DeepClone()).ToArray()) : list[0];
        var failed = list.Where(n => n["state"]!.GetValue<string>() == "FAILED").ToList();
        cx.Print(output, _ =>
        {
            foreach (var n in list) cx.Out.WriteLine(Summary(n));
        });
        if (failed.Count > 0)
            throw new CliException($"{failed.Count} instance(s) failed: " + string.Join("; ", failed.Select(f => $"{f["id"]} in {f["failedStep"]}: {f["failureReason"]}")));
        if (args.Has("--wait") && list.Any(n => !n["ready"]!.GetValue<bool>()))
            throw new CliException("timed out before every instance was ready; see 'stratuslab describe-instance'.");
        return 0;
    }

    static async Task<bool> HasDefaultKeyPairAsync(CliContext cx)
    {
        try { return (await cx.Api.GetAsync("api/v1/keys"))?.AsArray().Any(k => k?["isDefault"]?.GetValue<bool>() == true) == true; }
        catch (CliException) { return true; } // a server without key pairs: no warning rather than a wrong one
    }

    static string Summary(JsonNode n)
    {
        var ports = n["portForwards"]!.AsArray().Select(p => $"{p!["guestPort"]}->{p["hostAddress"]}:{p["hostPort"]}");
        var addresses = n["nics"]?.AsArray().Select(x => $"{x!["network"]}:{x["ip"]}") ?? [];
        var state = n["state"]!.GetValue<string>() + (n["ready"]!.GetValue<bool>() ? " (ready)" : "");
        var failure = n["failureReason"] is { } reason ? $"  {n["failedStep"]}: {reason}" : "";
        return $"{n["id"],-5} {n["name"],-16} {state,-18} {n["image"]} {n["cpu"]} CPU {n["memoryMiB"]} MiB  {string.Join(" ", addresses.Concat(ports))}{failure}";
    }

    static async Task<int> DescribeInstance(CliContext cx)
    {
        cx.Args.AllowOnly("--state");
        JsonNode result;
        if (cx.Args.Positionals.Count == 0)
        {
            var state = cx.Args.Option("--state");
            result = (await cx.Api.GetAsync("api/v1/instances" + (state is null ? "" : "?state=" + Uri.EscapeDataString(state))))!;
        }
        else
        {
            var array = new JsonArray();
            foreach (var id in cx.Args.Positionals) array.Add(await cx.Api.GetAsync($"api/v1/instances/{Id(id)}"));
            result = cx.Args.Positionals.Count == 1 ? array[0]!.DeepClone() : array;
        }
        return cx.Print(result, node =>
        {
            var rows = node is JsonArray a ? a.Select(n => n!).ToList() : [node];
            cx.Table(rows,
                ("id", n => n["id"]?.ToString()), ("name", n => n["name"]?.ToString()), ("state", n => n["state"]!.ToString() + (n["ready"]!.GetValue<bool>() ? "/ready" : "")),
                ("image", n => n["image"]?.ToString()), ("cpu", n => n["cpu"]?.ToString()), ("mem", n => n["memoryMiB"]?.ToString()),
                ("ip", n => string.Join(",", n["nics"]?.AsArray().Select(x => x!["ip"]!.ToString()) ?? [])),
                ("ports", n => string.Join(",", n["portForwards"]!.AsArray().Select(p => $"{p!["guestPort"]}:{p["hostPort"]}"))),
                ("reason", n => n["failureReason"] is { } r ? $"{n["failedStep"]}: {r}" : ""));
        });
    }

    static async Task<int> KillInstance(CliContext cx) => await Each(cx, "killed", id => cx.Api.DeleteAsync($"api/v1/instances/{id}"));

    static async Task<int> ShutdownInstance(CliContext cx) => await Each(cx, "shutting down", id => cx.Api.PostAsync($"api/v1/instances/{id}/actions/shutdown", null));

    static async Task<int> InstanceAction(CliContext cx)
    {
        cx.Args.AllowOnly();
        var id = Id(cx.Args.Positional(0, "the instance ID"));
        var action = cx.Args.Positional(1, "the action (stop, start, reboot, suspend, resume)");
        var node = await cx.Api.PostAsync($"api/v1/instances/{id}/actions/{Uri.EscapeDataString(action)}", null);
        return cx.Print(node, n => cx.Out.WriteLine($"{action} requested for instance {id} ({n["state"]})"));
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
            cx.Args.AllowOnly("--console");
            return await ConsoleCommands.InteractiveAsync(cx, Id(cx.Args.Positional(0, "the instance ID")));
        }
        // Everything after the instance ID that is not an option of ours is the remote command, '-a' included.
        var args = CliArgs.Parse(Flatten(cx.Args).Append("--").Concat(cx.Args.Positionals), Aliases);
        args.AllowOnly("--identity", "--ssh", "--user");
        var id = Id(args.Positional(0, "the instance ID"));
        var remote = args.Positionals.Skip(1).ToList();
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
        cx.Args.AllowOnly();
        var types = await cx.Api.GetAsync("api/v1/instance-types");
        return cx.Print(types, list => cx.Table(list.AsArray(),
            ("name", t => t["name"]?.ToString()), ("cpu", t => t["cpu"]?.ToString()), ("memory (MiB)", t => t["memoryMiB"]?.ToString())));
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

    // Re-parse with this command's short aliases (-t, -n, -i) from what the generic parser saw.
    static IEnumerable<string> Flatten(CliArgs args)
    {
        foreach (var (key, values) in args.Options)
            foreach (var v in values) { yield return key; yield return v; }
        foreach (var flag in args.Flags) yield return flag;
    }
}
