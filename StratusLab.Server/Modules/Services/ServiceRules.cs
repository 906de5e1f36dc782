using System.Globalization;
using System.Text.RegularExpressions;
using StratusLab.Server.Modules.Monitoring.Contracts;

namespace StratusLab.Server.Modules.Services;

/// <summary>A parsed elasticity expression: <c>AGG(KPI[, WINDOW]) OP THRESHOLD</c>.</summary>
internal sealed record KpiCondition(KpiAggregate Aggregate, string Kpi, TimeSpan Window, string Operator, double Threshold)
{
    public bool Holds(double value) => Operator switch
    {
        ">" => value > Threshold,
        ">=" => value >= Threshold,
        "<" => value < Threshold,
        "<=" => value <= Threshold,
        _ => false,
    };
}

/// <summary>A parsed adjustment: +N / -N members, or +N% / -N% of the current cardinality (at least one member).</summary>
internal sealed record Adjustment(int Amount, bool Percent)
{
    public int Apply(int current)
    {
        if (!Percent) return current + Amount;
        var step = (int)Math.Ceiling(Math.Abs(current * Amount / 100.0));
        return current + Math.Sign(Amount) * Math.Max(1, step);
    }
}

/// <summary>Pure parsers of the rule syntax; each returns null and a message instead of throwing.</summary>
internal static partial class ServiceRules
{
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromSeconds(60);

    [GeneratedRegex(@"^\s*(avg|min|max|sum)\s*\(\s*([A-Za-z][A-Za-z0-9_.\-]*)\s*(?:,\s*(\d+)\s*([smh]?)\s*)?\)\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex ExpressionPattern();

    [GeneratedRegex(@"^\s*([+-])\s*(\d+)\s*(%?)\s*$")]
    private static partial Regex AdjustmentPattern();

    public static KpiCondition? ParseExpression(string? text, out string? error)
    {
        error = null;
        var m = text is null ? null : ExpressionPattern().Match(text);
        if (m is null || !m.Success)
        {
            error = $"'{text}' is not a rule expression; write AGG(KPI[, WINDOW]) OP NUMBER, e.g. 'avg(rps) > 50' or 'max(load, 2m) <= 0.5' (AGG: avg, min, max, sum; WINDOW: 30s, 5m, 1h, default 60s; OP: >, >=, <, <=).";
            return null;
        }
        var aggregate = Enum.Parse<KpiAggregate>(m.Groups[1].Value, ignoreCase: true);
        var kpi = m.Groups[2].Value;
        if (!KpiNames.IsValid(kpi))
        {
            error = $"'{kpi}' is not a KPI name: 1-{KpiNames.MaxLength} characters, a letter first, then letters, digits, '_', '.' or '-'.";
            return null;
        }
        var window = DefaultWindow;
        if (m.Groups[3].Success && m.Groups[3].Value.Length > 0)
        {
            var n = long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
            window = m.Groups[4].Value switch { "m" => TimeSpan.FromMinutes(n), "h" => TimeSpan.FromHours(n), _ => TimeSpan.FromSeconds(n) };
            if (window <= TimeSpan.Zero || window > TimeSpan.FromHours(24))
            {
                error = $"The window of '{text}' must be between 1 s and 24 h.";
                return null;
            }
        }
        return new KpiCondition(aggregate, kpi, window, m.Groups[5].Value, double.Parse(m.Groups[6].Value, CultureInfo.InvariantCulture));
    }

    public static Adjustment? ParseAdjustment(string? text, out string? error)
    {
        error = null;
        var m = text is null ? null : AdjustmentPattern().Match(text);
        if (m is null || !m.Success || !int.TryParse(m.Groups[2].Value, CultureInfo.InvariantCulture, out var n) || n == 0 || n > 1000)
        {
            error = $"'{text}' is not an adjustment; write +N or -N (members) or +N% or -N% (of the current cardinality), N from 1 to 1000.";
            return null;
        }
        return new Adjustment(m.Groups[1].Value == "-" ? -n : n, m.Groups[3].Value == "%");
    }

    public static Quartz.CronExpression? ParseCron(string? text, out string? error)
    {
        error = null;
        try
        {
            if (string.IsNullOrWhiteSpace(text)) throw new FormatException("it is empty");
            return new Quartz.CronExpression(text, TimeZoneInfo.Utc);
        }
        catch (FormatException e)
        {
            error = $"'{text}' is not a Quartz cron expression ({e.Message}); write seconds minutes hours day-of-month month day-of-week, e.g. '0 0 8 ? * MON-FRI' (UTC).";
            return null;
        }
    }

    /// <summary>The context key of a role's addresses: ROLE_&lt;NAME&gt;_IPS, the name upper-cased with '-' and '.' as '_'.</summary>
    public static string IpsKey(string role) => $"ROLE_{role.ToUpperInvariant().Replace('-', '_').Replace('.', '_')}_IPS";

    /// <summary>Roles in an order where each comes after the roles it depends on (the template is checked acyclic).</summary>
    public static IReadOnlyList<string> DependencyOrder(IReadOnlyList<(string Name, IReadOnlyList<string> DependsOn)> roles)
    {
        var done = new List<string>();
        var left = roles.ToList();
        while (left.Count > 0)
        {
            var next = left.FirstOrDefault(r => r.DependsOn.All(done.Contains));
            if (next.Name is null) break;
            done.Add(next.Name);
            left.Remove(next);
        }
        return done;
    }

    /// <summary>A cycle in the dependency graph (the names along it, the first repeated last), or null.</summary>
    public static IReadOnlyList<string>? FindCycle(IReadOnlyDictionary<string, IReadOnlyList<string>> dependsOn)
    {
        var state = new Dictionary<string, int>();
        var path = new List<string>();
        List<string>? Visit(string n)
        {
            state[n] = 1;
            path.Add(n);
            foreach (var d in dependsOn.GetValueOrDefault(n) ?? [])
            {
                if (!dependsOn.ContainsKey(d)) continue;
                if (state.GetValueOrDefault(d) == 1) return [.. path[path.IndexOf(d)..], d];
                if (state.GetValueOrDefault(d) == 0 && Visit(d) is { } c) return c;
            }
            path.RemoveAt(path.Count - 1);
            state[n] = 2;
            return null;
        }
        foreach (var n in dependsOn.Keys)
            if (state.GetValueOrDefault(n) == 0 && Visit(n) is { } cycle) return cycle;
        return null;
    }
}
