namespace StratusLab.Server.Cli;

/// <summary>A usage or input error in a CLI command: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>A failure the CLI reports as one line, exit code 1.</summary>
public sealed class CliException(string message) : Exception(message);

/// <summary>Parsed command-line: positionals, --options (repeatable) and boolean flags.</summary>
public sealed class CliArgs
{
    static readonly HashSet<string> BooleanFlags = ["--json", "--wait", "--help", "-h", "--force", "--ssh", "--yes", "--all", "--default", "--follow", "--console", "--repair"];

    public List<string> Positionals { get; } = [];
    public Dictionary<string, List<string>> Options { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Flags { get; } = new(StringComparer.Ordinal);

    public static CliArgs Parse(IEnumerable<string> args, IReadOnlyDictionary<string, string>? aliases = null)
    {
        var result = new CliArgs();
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var arg = list[i];
            if (arg == "--")
            {
                result.Positionals.AddRange(list.Skip(i + 1));
                break;
            }
            if (!arg.StartsWith('-') || arg == "-")
            {
                result.Positionals.Add(arg);
                continue;
            }
            string name = arg, value;
            var eq = arg.IndexOf('=');
            if (arg.StartsWith("--") && eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            else
            {
                if (aliases is not null && aliases.TryGetValue(name, out var long_)) name = long_;
                if (BooleanFlags.Contains(name))
                {
                    result.Flags.Add(name);
                    continue;
                }
                if (i + 1 >= list.Count) throw new UsageException($"{name} needs a value.");
                value = list[++i];
            }
            if (aliases is not null && aliases.TryGetValue(name, out var mapped)) name = mapped;
            if (!result.Options.TryGetValue(name, out var values)) result.Options[name] = values = [];
            values.Add(value);
        }
        return result;
    }

    public bool Has(string flag) => Flags.Contains(flag);

    public string? Option(string name) => Options.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> All(string name) => Options.TryGetValue(name, out var v) ? v : [];

    public long? LongOption(string name)
    {
        var text = Option(name);
        if (text is null) return null;
        return long.TryParse(text, out var value) ? value : throw new UsageException($"{name} = '{text}' is not a whole number.");
    }

    /// <summary>Fails on options the command does not know, so typos never pass silently.</summary>
    public void AllowOnly(params string[] names)
    {
        var allowed = new HashSet<string>(names.Concat(["--endpoint", "--token", "--ca-file", "--accept-fingerprint", "--json", "--help", "-h"]));
        foreach (var key in Options.Keys.Concat(Flags))
            if (!allowed.Contains(key))
                throw new UsageException($"unknown option '{key}'; this command accepts {string.Join(", ", names.DefaultIfEmpty("no options"))}.");
    }

    public string Positional(int index, string what) =>
        index < Positionals.Count ? Positionals[index] : throw new UsageException($"missing {what}.");
}
