// The stratuslab command line, on System.CommandLine (parsing, '--' handling, completions).
//
// Adding a command: add one entry to the family file's All list (ComputeCommands.cs, PdiskCommands.cs, ...; a new
// family file goes into ClientCli.Families below):
//
//     new("describe-metrics", "[ID]... [--since TIME]", "show measured use per instance", DescribeMetrics)
//         { Example = "stratuslab describe-metrics 3 --since 2026-01-01T00:00:00Z" },
//
// The usage line IS the declaration: UPPERCASE words are positionals ('...' several, [..] optional), --long VALUE
// options (a|b = accepted values, '...' repeatable), a flag has no VALUE. Every option must be in CliOptions.cs (one
// description, one short flag, the API fields it sets); Describe = { ["--x"] = "..." } overrides a description for
// one command. The handler gets CliContext: cx.Args (by long name), cx.Api (typed GET/POST with Contracts records),
// cx.Print/cx.Table (--json aware). Tests in Cli/CliParsingTests.cs check every command's help and flags.
using System.CommandLine;
using System.CommandLine.Help;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>One client command: its name, usage (its declaration, see the top of ClientCli.cs), summary and handler.</summary>
public sealed record ClientCommand(string Name, string Usage, string Summary, Func<CliContext, Task<int>> Run)
{
    /// <summary>One or more example lines (full command lines) shown by --help.</summary>
    public string? Example { get; init; }
    /// <summary>Per-command option descriptions, over CliOptions' general ones.</summary>
    public IReadOnlyDictionary<string, string>? Describe { get; init; }
    public UsageSpec Spec => _spec ??= UsageSpec.Parse(Usage);
    UsageSpec? _spec;
}

/// <summary>What a command handler gets: its arguments, the API client and output helpers.</summary>
public sealed class CliContext(CliArgs args, Func<ApiClient> client, TextWriter output, TextWriter error) : IDisposable
{
    public void Dispose() => _api?.Dispose();

    ApiClient? _api;
    public CliArgs Args { get; } = args;
    public ApiClient Api => _api ??= client();
    public TextWriter Out { get; } = output;
    public TextWriter Err { get; } = error;
    public bool Json => Args.Has("--json");
    public bool Verbose => Args.Has("--verbose");
    /// <summary>The words after the command name, as typed (for commands that pass a remote command through).</summary>
    public IReadOnlyList<string> Raw { get; init; } = [];
    /// <summary>True when progress may be drawn: stderr is a terminal and the output is not --json.</summary>
    public bool Interactive => !Json && ReferenceEquals(Err, Console.Error) && !Console.IsErrorRedirected;

    /// <summary>Writes the JSON as is with --json, else the human rendering.</summary>
    public int Print(JsonNode? node, Action<JsonNode> human)
    {
        if (Json) Out.WriteLine(node?.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) ?? "null");
        else if (node is not null) human(node);
        return 0;
    }

    /// <summary>Writes a typed API record as JSON with --json, else the human rendering.</summary>
    public int Print<T>(T value, Action<T> human)
    {
        if (Json) Out.WriteLine(JsonSerializer.Serialize(value, ApiClient.JsonIndented));
        else human(value);
        return 0;
    }

    public void Table(IEnumerable<JsonNode?> rows, params (string Header, Func<JsonNode, string?> Value)[] columns) =>
        TableOf(rows.Where(r => r is not null).Select(r => r!), columns);

    /// <summary>A table that fits the terminal: the widest column is cut (with '…') until the line fits.</summary>
    public void TableOf<T>(IEnumerable<T> rows, params (string Header, Func<T, string?> Value)[] columns)
    {
        var data = rows.Select(r => columns.Select(c => c.Value(r) is { Length: > 0 } v ? v : "-").ToArray()).ToList();
        var widths = columns.Select((c, i) => Math.Max(c.Header.Length, data.Count == 0 ? 0 : data.Max(d => d[i].Length))).ToArray();
        var max = CliTerminal.Width(Out);
        while (widths.Sum() + 2 * (widths.Length - 1) > max)
        {
            var widest = Array.IndexOf(widths, widths.Max());
            if (widths[widest] <= Math.Max(8, columns[widest].Header.Length)) break;
            widths[widest]--;
        }
        string Cell(string v, int w) => v.Length <= w ? v.PadRight(w) : v[..(w - 1)] + "…";
        Out.WriteLine(string.Join("  ", columns.Select((c, i) => Cell(c.Header.ToUpperInvariant(), widths[i]))).TrimEnd());
        foreach (var row in data) Out.WriteLine(string.Join("  ", row.Select((v, i) => Cell(v, widths[i]))).TrimEnd());
    }
}

/// <summary>The terminal: its width, and a progress bar for long waits.</summary>
public static class CliTerminal
{
    /// <summary>The console's width on a terminal, else $COLUMNS, else unlimited (pipes get whole lines).</summary>
    public static int Width(TextWriter writer)
    {
        if (Environment.GetEnvironmentVariable("COLUMNS") is { } c && int.TryParse(c, out var columns) && columns > 20) return columns;
        if (ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected)
        {
            try { return Math.Max(40, Console.WindowWidth); }
            catch (IOException) { }
        }
        return int.MaxValue / 4;
    }

    /// <summary>"[#####.....]  42%  12.0/28.5 MiB" on one line (carriage return, no newline).</summary>
    public static string Bar(string what, long done, long? total)
    {
        var mib = done / 1048576.0;
        if (total is not > 0) return $"\r{what}: {mib:0.0} MiB   ";
        var fraction = Math.Clamp((double)done / total.Value, 0, 1);
        var filled = (int)Math.Round(fraction * 30);
        return $"\r{what} [{new string('#', filled)}{new string('.', 30 - filled)}] {fraction * 100,3:0}%  {mib:0.0}/{total.Value / 1048576.0:0.0} MiB   ";
    }

    /// <summary>Sizes as people read them: MiB under 1 GiB, else GiB.</summary>
    public static string Size(long bytes) =>
        bytes < 1L << 30 ? $"{Math.Max(1, (bytes + (1 << 20) - 1) >> 20)}M" : $"{bytes / (double)(1L << 30):0.#}G";
}

/// <summary>The whole command line: serve, admin, the client commands; help, errors and completion.</summary>
public static class ClientCli
{
    /// <summary>The client commands by family, in the order the help lists them.</summary>
    public static readonly IReadOnlyList<(string Family, IReadOnlyList<ClientCommand> Commands)> Families =
    [
        ("Server", ServerCommands.All),
        ("Instances", [.. ComputeCommands.All, .. ConsoleCommands.All]),
        ("SSH keys", KeyCommands.All),
        ("Volumes", PdiskCommands.All),
        ("Image cache", ImageCommands.All),
        ("Networks and firewalls", NetworkingCommands.All),
        ("Marketplace and image policy", MarketplaceCommands.All),
        ("Users, tokens and quotas", IdentityCommands.All),
        ("Hosts", SchedulingCommands.All),
        ("Monitoring and accounting", MonitoringCommands.All),
        ("Services", ServiceCommands.All),
        ("Shell", ShellCommands.All),
    ];

    public static readonly IReadOnlyList<ClientCommand> Commands = [.. Families.SelectMany(f => f.Commands)];

    /// <summary>Exit codes, as the README lists them.</summary>
    public const int Ok = 0, Failed = 1, UsageError = 2, Interrupted = 130;

    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        if (args is [] or ["--help"] or ["-h"] or ["help"])
        {
            CommandHelp.Root(output);
            return Ok;
        }
        if (args is ["--version"])
        {
            output.WriteLine($"stratuslab {typeof(ClientCli).Assembly.GetName().Version}");
            return Ok;
        }
        var tree = CommandTree.Build(CommandWord(args));
        var result = tree.Root.Parse(args);
        var command = result.CommandResult.Command;
        tree.Specs.TryGetValue(command, out var spec);
        var name = spec is null ? "stratuslab" : $"stratuslab {FullName(command)}";

        if (args.Length == 0 || result.Action is HelpAction || (spec is null && args.Length == 1 && args[0] == "help"))
        {
            if (spec is null && command != tree.Root) CommandHelp.Group(output, command, tree);
            else if (spec is null) CommandHelp.Root(output);
            else CommandHelp.Command(output, spec, FullName(command));
            return Ok;
        }
        if (command == tree.Root && args.Any(a => a == "--version"))
        {
            output.WriteLine($"stratuslab {typeof(ClientCli).Assembly.GetName().Version}");
            return Ok;
        }
        if (CommandTree.Problem(result, tree, spec) is { } problem)
        {
            error.WriteLine($"{name}: {problem}");
            return UsageError;
        }
        if (spec is null)
        {
            CommandHelp.Group(output, command, tree);
            return UsageError;
        }
        var parsed = CommandTree.Arguments(result, tree, spec);
        var raw = args.SkipWhile(a => a != command.Name).Skip(1).ToList();
        try
        {
            using var context = new CliContext(parsed, () => new ApiClient(ClientSettings.Resolve(parsed)), output, error) { Raw = raw };
            return await spec.Run(context);
        }
        catch (UsageException e)
        {
            error.WriteLine($"{name}: {e.Message}\nusage: {name} {spec.Usage}");
            return UsageError;
        }
        catch (CliException e)
        {
            var message = FlagNames(e.Message, spec);
            if (parsed.Has("--verbose") && e.Status is { } status) message += $" (HTTP {status}{(e.Field is null ? "" : ", field " + e.Field)})";
            error.WriteLine($"{name}: {message}");
            return Failed;
        }
        catch (OperationCanceledException) when (!parsed.Has("--verbose"))
        {
            error.WriteLine($"{name}: interrupted");
            return Interrupted;
        }
    }

    static string FullName(Command command) => CommandTree.PathOf(command);

    /// <summary>The first word that is not a global option or its value: the command, if the line has one.</summary>
    static string? CommandWord(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--endpoint" or "--token" or "--ca-file" or "--accept-fingerprint") { i++; continue; }
            if (args[i].StartsWith('-')) continue;
            return args[i];
        }
        return null;
    }

    /// <summary>The server speaks in API fields ('memoryMiB'); the user typed flags (--memory): say those.</summary>
    public static string FlagNames(string message, ClientCommand spec)
    {
        foreach (var option in spec.Spec.Options)
            foreach (var field in CliOptions.Get(option.Name).Fields)
                message = message.Replace($"'{field}'", option.Name).Replace($"Field {option.Name}", option.Name);
        return message;
    }
}
