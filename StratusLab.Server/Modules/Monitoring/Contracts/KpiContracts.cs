namespace StratusLab.Server.Modules.Monitoring.Contracts;

/// <summary>How the members' values of a KPI are combined.</summary>
public enum KpiAggregate { Avg, Min, Max, Sum }

/// <summary>
/// A KPI over a set of instances (a service role's members) over a window: <see cref="Value"/> is the aggregate, over the
/// members that reported, of each member's mean over the window (null when none reported). <see cref="Members"/> is
/// how many members reported, <see cref="Samples"/> how many samples went in, <see cref="PerMember"/> each reporting
/// member's mean (for recording why a decision was taken).
/// </summary>
public sealed record KpiReading(string Name, KpiAggregate Aggregate, double? Value, int Members, int Samples,
    DateTimeOffset From, DateTimeOffset To, IReadOnlyDictionary<long, double> PerMember);

/// <summary>Guest KPI names: 1-64 characters, a letter first, then letters, digits, '_', '.' or '-'.</summary>
public static class KpiNames
{
    public const int MaxLength = 64;

    public static bool IsValid(string name) =>
        name.Length is > 0 and <= MaxLength && char.IsAsciiLetter(name[0])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');
}

/// <summary>
/// Reads the guest KPIs that instances pushed through the guest API (PUT /guest/v1/metrics), for whoever decides on
/// them (a service's elasticity rules): the aggregate over members over a window, from the same store the API shows.
/// </summary>
public interface IKpiReader
{
    /// <summary>
    /// <paramref name="aggregate"/> over <paramref name="instanceIds"/> of each member's mean of <paramref name="name"/> over the
    /// last <paramref name="window"/> (raw samples; the window must lie within the raw retention). Throws
    /// <see cref="Platform.Contracts.InvalidInputException"/> for an invalid name or a window that is not positive.
    /// </summary>
    Task<KpiReading> ReadAsync(IReadOnlyCollection<long> instanceIds, string name, KpiAggregate aggregate, TimeSpan window, CancellationToken ct = default);

    /// <summary>The latest value of each KPI an instance reported, with its time (empty when none).</summary>
    Task<IReadOnlyDictionary<string, (double Value, DateTimeOffset At)>> LatestAsync(long instanceId, CancellationToken ct = default);
}
