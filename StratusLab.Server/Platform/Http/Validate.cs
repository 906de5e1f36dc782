using System.Text.RegularExpressions;

using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Platform.Http;

/// <summary>Input checks shared by every module; each failure names the field and what is accepted.</summary>
public static partial class Validate
{
    /// <summary>Names of users, groups, networks, types...: no shell or path characters.</summary>
    public static string Name(string? value, string field)
    {
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidInputException(field, $"'{field}' is required.");
        if (!NamePattern().IsMatch(value))
            throw new InvalidInputException(field,
                $"'{field}' = '{Trim(value)}' is not a valid name: use 1-63 characters, a letter first, then letters, digits, '.', '_' or '-'.");
        return value;
    }

    public static long Range(long value, string field, long min, long max)
    {
        if (value < min || value > max)
            throw new InvalidInputException(field, $"'{field}' = {value} is out of range; accepted: {min}..{max}.");
        return value;
    }

    public static string Trim(string value) => value.Length > 40 ? value[..40] + "..." : value;

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")]
    private static partial Regex NamePattern();
}
