using System.Text.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>One client command: its name, usage, one-line summary and handler.</summary>
public sealed record ClientCommand(string Name, string Usage, string Summary, Func<CliContext, Task<int>> Run);

/// <summary>What a command handler gets: its arguments, the API client and output helpers.</summary>
public sealed class CliContext(CliArgs args, Func<ApiClient> client, TextWriter output) : IDisposable
{
    public void Dispose() => _api?.Dispose();

    ApiClient? _api;
    public CliArgs Args { get; } = args;
    public ApiClient Api => _api ??= client();
    public TextWriter Out { get; } = output;
    public bool Json => Args.Has("--json");

    /// <summary>Writes the JSON as is with --json, else the human rendering.</summary>
    public int Print(JsonNode? node, Action<JsonNode> human)
    {
        if (Json) Out.WriteLine(node?.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) ?? "null");
        else if (node is not null) human(node);
        return 0;
    }

    public void Table(IEnumerable<JsonNode?> rows, params (string Header, Func<JsonNode, string?> Value)[] columns)
    {
        var data = rows.Where(r => r is not null).Select(r => columns.Select(c => c.Value(r!) ?? "-").ToArray()).ToList();
        var widths = columns.Select((c, i) => Math.Max(c.Header.Length, data.Count == 0 ? 0 : data.Max(d => d[i].Length))).ToArray();
        Out.WriteLine(string.Join("  ", columns.Select((c, i) => c.Header.ToUpperInvariant().PadRight(widths[i]))).TrimEnd());
        foreach (var row in data) Out.WriteLine(string.Join("  ", row.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
    }
}

/// <summary>The client commands (the historical stratus-* tools) in one table.</summary>
public static class ClientCli
{
    public static readonly IReadOnlyList<ClientCommand> Commands =
    [
        .. IdentityCommands.All,
        .. KeyCommands.All,
        .. ComputeCommands.All,
        .. ConsoleCommands.All,
        .. NetworkingCommands.All,
        .. ImageCommands.All,
        .. SchedulingCommands.All,
        .. PdiskCommands.All,
        .. MarketplaceCommands.All,
    ];

    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            PrintHelp(output);
            return 0;
        }
        if (args[0] is "--version" or "version")
        {
            output.WriteLine($"stratuslab {typeof(ClientCli).Assembly.GetName().Version}");
            return 0;
        }
        var command = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (command is null)
        {
            error.WriteLine($"stratuslab: unknown command '{args[0]}'. Run 'stratuslab' to list the commands.");
            return 2;
        }
        try
        {
            var parsed = CliArgs.Parse(args.Skip(1));
            if (parsed.Has("--help") || parsed.Has("-h"))
            {
                output.WriteLine($"usage: stratuslab {command.Name} {command.Usage}\n\n{command.Summary}");
                return 0;
            }
            using var context = new CliContext(parsed, () => new ApiClient(ClientSettings.Resolve(parsed)), output);
            return await command.Run(context);
        }
        catch (UsageException e)
        {
            error.WriteLine($"stratuslab {command.Name}: {e.Message}\nusage: stratuslab {command.Name} {command.Usage}");
            return 2;
        }
        catch (CliException e)
        {
            error.WriteLine($"stratuslab {command.Name}: {e.Message}");
            return 1;
        }
    }

    static void PrintHelp(TextWriter output)
    {
        output.WriteLine("""
            StratusLab Server: a private IaaS cloud in one binary.

            usage: stratuslab serve [--data-dir DIR] [--urls URL] [--config FILE]   run the cloud server
                   stratuslab admin <command>                                     local operations on a data dir
                   stratuslab <command> [options]                                 talk to a server

            client commands:
            """);
        var width = Commands.Max(c => c.Name.Length);
        foreach (var c in Commands) output.WriteLine($"  {c.Name.PadRight(width)}  {c.Summary}");
        output.WriteLine("""

            every command accepts --json (machine-readable output), --endpoint URL and --token TOKEN
            (defaults: STRATUSLAB_ENDPOINT / STRATUSLAB_TOKEN, ~/.config/stratuslab/client.json, then the local admin.token).
            'stratuslab <command> --help' shows a command's options; 'stratuslab admin' lists the admin commands.
            """);
    }
}
