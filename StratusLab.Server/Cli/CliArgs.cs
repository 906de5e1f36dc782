namespace StratusLab.Server.Cli;

/// <summary>A usage or input error in a CLI command: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>A failure the CLI reports as one line, exit code 1; <see cref="Field"/> is the API field the server blamed, if any.</summary>
public sealed class CliException(string message) : Exception(message)
{
    /// <summary>The HTTP status of a server refusal (shown with --verbose).</summary>
    public int? Status { get; init; }
    public string? Field { get; init; }
}

/// <summary>What a command got from the command line: positionals and options by long name (repeatable), flags.</summary>
public sealed class CliArgs
{
    public List<string> Positionals { get; } = [];
    public Dictionary<string, List<string>> Options { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Flags { get; } = new(StringComparer.Ordinal);

    public bool Has(string flag) => Flags.Contains(flag);

    public string? Option(string name) => Options.TryGetValue(name, out var v) && v.Count > 0 ? v[^1] : null;

    public IReadOnlyList<string> All(string name) => Options.TryGetValue(name, out var v) ? v : [];

    public long? LongOption(string name)
    {
        var text = Option(name);
        if (text is null) return null;
        return long.TryParse(text, out var value) ? value : throw new UsageException($"{name} = '{text}' is not a whole number.");
    }

    /// <summary>Kept for the command handlers' readability: the parser already refused options a command does not declare.</summary>
    public void AllowOnly(params string[] names) { }

    public string Positional(int index, string what) =>
        index < Positionals.Count ? Positionals[index] : throw new UsageException($"missing {what}.");
}

/// <summary>
/// A command's usage line read as its declaration: positionals (UPPERCASE words, '...' = several, [..] = optional),
/// options (--long VALUE, a|b|c = the accepted values, '...' = repeatable; a flag has no VALUE), and '--' for a
/// command that passes the rest of the line through (connect-instance).
/// </summary>
public sealed record UsageSpec(IReadOnlyList<UsageSpec.Positional> Arguments, IReadOnlyList<UsageSpec.Opt> Options, bool PassThrough)
{
    public sealed record Positional(string Name, bool Optional, bool Many);
    public sealed record Opt(string Name, string? Value, bool Many, IReadOnlyList<string> Choices);

    static readonly Dictionary<string, string> ShortToLong = CliOptions.Table.Where(o => o.Short is not null).ToDictionary(o => o.Short!, o => o.Name);

    public static UsageSpec Parse(string usage)
    {
        var words = usage.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        var arguments = new List<Positional>();
        var options = new List<Opt>();
        var passThrough = false;
        var depth = 0;
        for (var i = 0; i < words.Count; i++)
        {
            var raw = words[i];
            var optional = depth > 0 || raw.StartsWith('[');
            depth += raw.Count(c => c is '[' or '(') - raw.Count(c => c is ']' or ')');
            var word = raw.Trim('[', ']', '(', ')');
            var many = word.EndsWith("...") || raw.EndsWith("]...") || raw.EndsWith(")...");
            word = word.Replace("...", "").Trim('[', ']', '(', ')');
            if (word is "|" or "") continue;
            if (word == "--") { passThrough = true; break; }
            if (word.StartsWith('-'))
            {
                var name = word.StartsWith("--") ? word : ShortToLong.TryGetValue(word, out var l) ? l : throw new InvalidOperationException($"short flag {word} is not in CliOptions");
                string? value = null;
                if (i + 1 < words.Count && !words[i + 1].TrimStart('[', '(').StartsWith('-') && !words[i + 1].StartsWith('[') && !words[i + 1].StartsWith('(') && words[i + 1] != "|")
                {
                    var next = words[++i];
                    depth += next.Count(c => c is '[' or '(') - next.Count(c => c is ']' or ')');
                    many |= next.EndsWith("...");
                    value = next.Replace("...", "").Trim('[', ']', '(', ')');
                }
                var choices = value is not null && value.Contains('|') && value.Split('|').All(s => s.Length > 0 && s.Any(char.IsLetter) && s.All(c => char.IsLower(c) || char.IsDigit(c) || c == '-')) ? value.Split('|') : [];
                var existing = options.FindIndex(o => o.Name == name);
                if (existing >= 0) options[existing] = options[existing] with { Many = options[existing].Many || many };
                else options.Add(new Opt(name, value, many, choices));
                continue;
            }
            arguments.Add(new Positional(word, optional, many));
        }
        return new UsageSpec(arguments, options, passThrough);
    }
}
