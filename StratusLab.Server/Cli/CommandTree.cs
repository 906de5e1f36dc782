using System.CommandLine;
using System.CommandLine.Parsing;

namespace StratusLab.Server.Cli;

/// <summary>The System.CommandLine tree made from the command tables, and what it tells about a parse.</summary>
public sealed class CommandTree
{
    public required RootCommand Root { get; init; }
    public Dictionary<Command, ClientCommand> Specs { get; } = [];
    public Dictionary<Command, (Argument<string[]>? Positionals, Dictionary<string, Option> Options)> Parts { get; } = [];
    public Dictionary<string, Option> Globals { get; } = [];

    static readonly Dictionary<string, CommandTree> Built = [];

    /// <summary>The whole tree (built once per process: the tables are static).</summary>
    public static CommandTree Build() => Build(null);

    /// <summary>
    /// The tree for a line whose command word is <paramref name="command"/>: only that command when it is one (start-up
    /// time: a one-command tree parses the same line the same way), else all of them (help, suggestions, completion).
    /// </summary>
    public static CommandTree Build(string? command)
    {
        var only = command is not null && (command == "admin" || ClientCli.Commands.Any(c => c.Name == command)) ? command : "";
        lock (Built)
        {
            if (!Built.TryGetValue(only, out var tree)) Built[only] = tree = Create(only);
            return tree;
        }
    }

    static CommandTree Create(string only)
    {
        var root = new RootCommand("StratusLab Server: a private IaaS cloud in one binary.");
        var tree = new CommandTree { Root = root };
        foreach (var info in CliOptions.Global)
        {
            Option option = info.Name is "--json" or "--verbose" ? new Option<bool>(info.Name) : new Option<string>(info.Name);
            if (info.Short is not null) option.Aliases.Add(info.Short);
            option.Description = info.Description;
            option.Recursive = true;
            root.Options.Add(option);
            tree.Globals[info.Name] = option;
        }
        foreach (var spec in ClientCli.Commands.Where(c => only.Length == 0 || c.Name == only)) root.Subcommands.Add(tree.Add(spec));
        if (only.Length > 0 && only != "admin") return tree;
        var admin = new Command("admin", "local operations on a data dir, with or without a running server");
        foreach (var spec in AdminCli.Commands) admin.Subcommands.Add(tree.Add(spec));
        root.Subcommands.Add(admin);
        return tree;
    }

    Command Add(ClientCommand spec)
    {
        var command = new Command(spec.Name, spec.Summary) { Hidden = spec.Name.StartsWith("__") };
        Argument<string[]>? positionals = null;
        if (spec.Spec.Arguments.Count > 0 || spec.Spec.PassThrough)
        {
            positionals = new Argument<string[]>("args") { Arity = ArgumentArity.ZeroOrMore };
            command.Arguments.Add(positionals);
        }
        var options = new Dictionary<string, Option>();
        foreach (var o in spec.Spec.Options)
        {
            var info = CliOptions.Get(o.Name);
            Option option = o.Value is null ? new Option<bool>(o.Name) : new Option<string[]>(o.Name) { Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
            if (info.Short is not null) option.Aliases.Add(info.Short);
            option.Description = spec.Describe?.GetValueOrDefault(o.Name) ?? info.Description;
            if (o.Choices.Count > 0) option.CompletionSources.Add(o.Choices.ToArray());
            command.Options.Add(option);
            options[o.Name] = option;
        }
        if (spec.Spec.PassThrough) command.TreatUnmatchedTokensAsErrors = false;
        Specs[command] = spec;
        Parts[command] = (positionals, options);
        return command;
    }

    /// <summary>The parsed line as a command handler reads it: positionals, options by long name, flags (globals too).</summary>
    public static CliArgs Arguments(ParseResult result, CommandTree tree, ClientCommand spec)
    {
        var args = new CliArgs();
        var (positionals, options) = tree.Parts[result.CommandResult.Command];
        if (positionals is not null) args.Positionals.AddRange(result.GetValue(positionals) ?? []);
        foreach (var (name, option) in options.Concat(tree.Globals))
        {
            switch (option)
            {
                case Option<bool> flag when result.GetValue(flag):
                    args.Flags.Add(name);
                    break;
                case Option<string[]> many when result.GetValue(many) is { Length: > 0 } values:
                    args.Options[name] = [.. values];
                    break;
                case Option<string> one when result.GetValue(one) is { } value:
                    args.Options[name] = [value];
                    break;
            }
        }
        return args;
    }

    /// <summary>What is wrong with the line, in the CLI's terms (with a "did you mean"), or null.</summary>
    public static string? Problem(ParseResult result, CommandTree tree, ClientCommand? spec)
    {
        var command = result.CommandResult.Command;
        var unmatched = command.TreatUnmatchedTokensAsErrors ? result.UnmatchedTokens.ToList() : [];
        if (spec is not null && !spec.Spec.PassThrough && tree.Parts[command].Positionals is { } p)
            unmatched.AddRange((result.GetValue(p) ?? []).Where(LooksLikeOption));
        if (unmatched.Count > 0)
        {
            var token = unmatched[0];
            if (LooksLikeOption(token))
            {
                var known = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Concat(tree.Globals.Keys).Where(n => n.StartsWith("--")).Distinct();
                var where = spec is null ? "" : $" for {command.Name}";
                return $"unknown option '{token}'{where}{Suggest(token.Split('=')[0], known)}; '{Help(command)}' lists the options.";
            }
            if (spec is null)
                return $"unknown command '{token}'{Suggest(token, command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))}; '{Help(command)}' lists the commands.";
            return $"unexpected argument '{token}'; usage: stratuslab {PathOf(command)} {spec.Usage}";
        }
        if (result.Errors.Count > 0) return result.Errors[0].Message.TrimEnd('.') + $"; see '{Help(command)}'.";
        return null;
    }

    static string Help(Command command) => ("stratuslab " + PathOf(command)).TrimEnd() + " --help";

    /// <summary>A command's words after 'stratuslab' ("admin check", "run-instance"; "" for the root).</summary>
    public static string PathOf(Command command)
    {
        var names = new List<string>();
        for (var c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault()) names.Insert(0, c.Name);
        return string.Join(' ', names);
    }

    static bool LooksLikeOption(string token) => token.Length > 1 && token[0] == '-' && !double.TryParse(token, out _);

    /// <summary>" (did you mean 'x'?)" for the closest names: a shared prefix, or a small edit distance.</summary>
    public static string Suggest(string typed, IEnumerable<string> names)
    {
        var candidates = names
            .Select(n => (Name: n, Distance: Distance(typed, n)))
            .Where(c => c.Distance <= Math.Max(2, typed.Length / 3) || (typed.Length >= 4 && (c.Name.StartsWith(typed) || typed.StartsWith(c.Name))))
            .OrderBy(c => c.Distance).ThenBy(c => c.Name).Take(3).Select(c => $"'{c.Name}'").ToList();
        return candidates.Count == 0 ? "" : $" (did you mean {string.Join(" or ", candidates)}?)";
    }

    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
            for (var j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    /// <summary>The words a shell may complete at <paramref name="index"/> of <paramref name="words"/> (the line after 'stratuslab').</summary>
    public static IEnumerable<string> Complete(int index, IReadOnlyList<string> words)
    {
        var tree = Build();
        var current = index < words.Count ? words[index] : "";
        var before = words.Take(Math.Min(index, words.Count)).ToArray();
        var result = tree.Root.Parse(before);
        return result.GetCompletions().Select(c => c.Label).Where(l => l.StartsWith(current, StringComparison.Ordinal) && !l.StartsWith("__")).Distinct();
    }
}

/// <summary>The help texts: commands by family, a command's options with defaults and an example.</summary>
public static class CommandHelp
{
    public static void Root(TextWriter output)
    {
        var width = CliTerminal.Width(output);
        output.WriteLine("""
            StratusLab Server: a private IaaS cloud in one binary.

            usage: stratuslab <command> [options]    'stratuslab <command> --help' shows its options and an example
            """);
        var pad = ClientCli.Commands.Max(c => c.Name.Length) + 2;
        foreach (var (family, commands) in ClientCli.Families)
        {
            output.WriteLine();
            output.WriteLine(family + ":");
            foreach (var c in commands.Where(c => !c.Name.StartsWith("__"))) output.WriteLine(Wrap($"  {c.Name.PadRight(pad)}", c.Summary, width));
            if (family == "Server") output.WriteLine(Wrap($"  {"admin".PadRight(pad)}", "local operations on a data dir: " + string.Join(", ", AdminCli.Commands.Select(a => a.Name)) + " ('stratuslab admin --help')", width));
        }
        output.WriteLine();
        output.WriteLine("Global options (anywhere on the line):");
        foreach (var o in CliOptions.Global) output.WriteLine(Wrap($"  {Flag(o.Name, o.Short, o.Name is "--json" or "--verbose" ? null : o.Name[2..].ToUpperInvariant()),-24}", Describe(o.Description, o.Default), width));
        output.WriteLine(Wrap("  ", "The client finds the server and its token through --endpoint/--token, STRATUSLAB_ENDPOINT/STRATUSLAB_TOKEN, ~/.config/stratuslab/client.json (written by scripts/run.sh and 'stratuslab login'), then the local server's admin.token (STRATUSLAB_DATA names its data dir). Exit codes: 0 ok, 1 the server refused or the operation failed, 2 a usage error, 130 interrupted; connect-instance returns the remote command's.", width));
    }

    public static void Group(TextWriter output, Command group, CommandTree tree)
    {
        var width = CliTerminal.Width(output);
        output.WriteLine($"usage: stratuslab {group.Name} <command> [options]\n\n{group.Description}\n");
        var pad = group.Subcommands.Max(c => (c.Name + " " + tree.Specs[c].Usage).Length);
        foreach (var c in group.Subcommands)
            output.WriteLine(Wrap($"  {(c.Name + " " + tree.Specs[c].Usage).PadRight(pad)}  ", c.Description ?? "", width));
    }

    public static void Command(TextWriter output, ClientCommand spec, string fullName)
    {
        var width = CliTerminal.Width(output);
        output.WriteLine($"usage: stratuslab {fullName} {spec.Usage}".TrimEnd());
        output.WriteLine();
        output.WriteLine(Wrap("", spec.Summary, width));
        if (spec.Spec.Options.Count > 0)
        {
            output.WriteLine();
            output.WriteLine("Options:");
            foreach (var o in spec.Spec.Options)
            {
                var info = CliOptions.Get(o.Name);
                var text = spec.Describe?.GetValueOrDefault(o.Name) ?? info.Description;
                if (o.Choices.Count > 0) text += $" (one of: {string.Join(", ", o.Choices)})";
                if (o.Many && !text.Contains("repeatable")) text += " (repeatable)";
                output.WriteLine(Wrap($"  {Flag(o.Name, info.Short, o.Value),-28} ", Describe(text, info.Default), width));
            }
        }
        output.WriteLine();
        output.WriteLine("Global options: --endpoint URL, --token TOKEN, --ca-file FILE, --accept-fingerprint FP, --json, -v/--verbose, -h/--help ('stratuslab --help' says more).");
        if (spec.Example is { } example)
        {
            output.WriteLine();
            output.WriteLine("Example:");
            foreach (var line in example.Split('\n')) output.WriteLine("  " + line);
        }
    }

    static string Flag(string name, string? shortName, string? value) =>
        (shortName is null ? "    " : shortName + ", ") + name + (value is null ? "" : " " + value);

    static string Describe(string text, string? @default) => @default is null ? text : $"{text} [default: {@default}]";

    /// <summary>The text after a fixed-width head, wrapped at the terminal's width with a hanging indent.</summary>
    static string Wrap(string head, string text, int width)
    {
        var indent = head.Length;
        if (width >= int.MaxValue / 8 || indent + 20 > width) return head + text;
        var lines = new List<string>();
        var line = head;
        foreach (var word in text.Split(' '))
        {
            if (line.Length + word.Length + 1 > width && line.Trim().Length > 0 && line.Length > indent)
            {
                lines.Add(line.TrimEnd());
                line = new string(' ', indent);
            }
            line += (line.Length == indent || line.EndsWith(' ') ? "" : " ") + word;
        }
        lines.Add(line.TrimEnd());
        return string.Join('\n', lines);
    }
}
