using System.Globalization;
using System.Security.Claims;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// One EC2 Query request after authentication: its parameters (query string and form body together) and its caller.
/// The accessors read AWS's flattened shapes: Name.N lists, Filter.N.Name/Value.M, Tag.N.Key/Value.
/// </summary>
internal sealed class Ec2Request(string action, IReadOnlyList<KeyValuePair<string, string>> parameters, ClaimsPrincipal principal, string requestId)
{
    public string Action { get; } = action;
    public ClaimsPrincipal Principal { get; } = principal;
    public Caller Caller { get; } = principal.ToCaller();
    public string RequestId { get; } = requestId;
    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; } = parameters;

    public string? Get(string name) => Parameters.LastOrDefault(kv => kv.Key == name).Value;

    public string Require(string name) => Get(name) is { Length: > 0 } v ? v : throw Ec2Exception.MissingParameter(name);

    public int? Int(string name, int min, int max)
    {
        if (Get(name) is not { } text) return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            throw Ec2Exception.InvalidParameterValue(name, text, $"Accepted: an integer from {min} to {max}.");
        return value;
    }

    public bool? Bool(string name) => Get(name) switch
    {
        null => null,
        var t when t.Equals("true", StringComparison.OrdinalIgnoreCase) => true,
        var t when t.Equals("false", StringComparison.OrdinalIgnoreCase) => false,
        var t => throw Ec2Exception.InvalidParameterValue(name, t, "Accepted: true or false."),
    };

    /// <summary>The values of a flattened list: Prefix.1, Prefix.2, ... (in index order).</summary>
    public IReadOnlyList<string> List(string prefix) =>
        Parameters.Select(kv => (kv, index: IndexAfter(kv.Key, prefix + ".")))
            .Where(p => p.index is not null && !p.kv.Key[(prefix.Length + 1)..].Contains('.'))
            .OrderBy(p => p.index).Select(p => p.kv.Value).ToList();

    /// <summary>The members of a flattened list of structures: Prefix.N.Field → one dictionary per N.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> Structs(string prefix)
    {
        var groups = new SortedDictionary<int, Dictionary<string, string>>();
        foreach (var (key, value) in Parameters)
        {
            if (!key.StartsWith(prefix + ".", StringComparison.Ordinal)) continue;
            var rest = key[(prefix.Length + 1)..];
            var dot = rest.IndexOf('.');
            if (dot <= 0 || !int.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out var n)) continue;
            if (!groups.TryGetValue(n, out var fields)) groups[n] = fields = new Dictionary<string, string>(StringComparer.Ordinal);
            fields[rest[(dot + 1)..]] = value;
        }
        return groups.Values.ToList();
    }

    /// <summary>Filter.N.Name / Filter.N.Value.M as name → values.</summary>
    public IReadOnlyList<(string Name, IReadOnlyList<string> Values)> Filters() =>
        Structs("Filter").Select(f =>
        {
            var name = f.TryGetValue("Name", out var n) ? n : throw Ec2Exception.MissingParameter("Filter.N.Name");
            var values = f.Where(kv => kv.Key.StartsWith("Value.", StringComparison.Ordinal))
                .OrderBy(kv => int.TryParse(kv.Key[6..], CultureInfo.InvariantCulture, out var i) ? i : 0).Select(kv => kv.Value).ToList();
            return (name, (IReadOnlyList<string>)values);
        }).ToList();

    static int? IndexAfter(string key, string prefix)
    {
        if (!key.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var rest = key[prefix.Length..];
        var dot = rest.IndexOf('.');
        var digits = dot < 0 ? rest : rest[..dot];
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }
}
