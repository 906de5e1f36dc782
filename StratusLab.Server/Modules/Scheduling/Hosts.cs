using StratusLab.Server.Modules.Scheduling.Expressions;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>A host as the scheduler sees it: declared capacity, what placements hold, what monitoring measured.</summary>
internal sealed record HostState(
    string Name, string Driver, bool Enabled, long Cpus, long MemoryMiB,
    long AllocatedCpus, long AllocatedMemoryMiB, long RunningVms, double CpuUsage, long MemoryUsedMiB, string State = "OK", string? StateReason = null)
{
    /// <summary>A peer cloud that takes instances when no other host has room (Scheduling:BurstTo, or the host's burst flag).</summary>
    public bool Burst { get; init; }

    /// <summary>A peer cloud (driver cloud): used only by policy, never by default.</summary>
    public bool IsPeer => Driver == "cloud";

    public long FreeCpus => Cpus - AllocatedCpus;
    public long FreeMemoryMiB => MemoryMiB - AllocatedMemoryMiB;

    /// <summary>The attributes requirement and rank expressions may use.</summary>
    public static readonly IReadOnlySet<string> AttributeNames = new HashSet<string>
    {
        "NAME", "HOSTNAME", "HYPERVISOR", "TOTAL_CPU", "ALLOCATED_CPU", "FREE_CPU", "TOTAL_MEMORY", "ALLOCATED_MEMORY",
        "FREE_MEMORY", "RUNNING_VMS", "CPU_USAGE", "MEMORY_USAGE", "FREE_MEMORY_MEASURED",
    };

    public IReadOnlyDictionary<string, Value> Attributes() => new Dictionary<string, Value>
    {
        ["NAME"] = Value.Of(Name),
        ["HOSTNAME"] = Value.Of(Name),
        ["HYPERVISOR"] = Value.Of(Driver),
        ["TOTAL_CPU"] = Value.Of(Cpus),
        ["ALLOCATED_CPU"] = Value.Of(AllocatedCpus),
        ["FREE_CPU"] = Value.Of(FreeCpus),
        ["TOTAL_MEMORY"] = Value.Of(MemoryMiB),
        ["ALLOCATED_MEMORY"] = Value.Of(AllocatedMemoryMiB),
        ["FREE_MEMORY"] = Value.Of(FreeMemoryMiB),
        ["RUNNING_VMS"] = Value.Of(RunningVms),
        ["CPU_USAGE"] = Value.Of(CpuUsage),
        ["MEMORY_USAGE"] = Value.Of(MemoryUsedMiB),
        ["FREE_MEMORY_MEASURED"] = Value.Of(MemoryMiB - MemoryUsedMiB),
    };
}

/// <summary>What one instance asks for.</summary>
internal sealed record PlacementRequest(long InstanceId, long Cpu, long MemoryMiB, Expr? Requirements, string? RequirementsText, Policy Policy);

/// <summary>The outcome of choosing a host: the host, or why each host was rejected.</summary>
internal sealed record PlacementDecision(string? Host, IReadOnlyList<string> Rejections)
{
    public string Message => Rejections.Count == 0 ? "no host is registered or enabled" : string.Join("; ", Rejections);
}

/// <summary>A placement policy: a rank expression; the highest rank wins, ties go to the first host by name.</summary>
internal sealed record Policy(string Name, Expr Rank, string RankText)
{
    public static readonly IReadOnlyList<string> BuiltIn = ["packing", "striping", "load-aware"];

    /// <summary>packing fills the busiest host first, striping spreads, load-aware picks the least measured CPU use; "rank:EXPR" is custom.</summary>
    public static Policy Parse(string text)
    {
        return text switch
        {
            "packing" => new Policy(text, Expr.Parse("RUNNING_VMS * 1000000 - FREE_CPU", HostState.AttributeNames), "RUNNING_VMS"),
            "striping" => new Policy(text, Expr.Parse("- RUNNING_VMS", HostState.AttributeNames), "- RUNNING_VMS"),
            "load-aware" => new Policy(text, Expr.Parse("- CPU_USAGE", HostState.AttributeNames), "- CPU_USAGE"),
            _ when text.StartsWith("rank:", StringComparison.Ordinal) => new Policy("custom", Expr.Parse(text[5..], HostState.AttributeNames), text[5..]),
            _ => throw new ArgumentException($"unknown policy '{text}'; accepted: {string.Join(", ", BuiltIn)}, or rank:<expression> such as rank:- (RUNNING_VMS * 50 + FREE_CPU)"),
        };
    }
}

/// <summary>Chooses a host for one request (pure: no I/O).</summary>
internal static class Placement
{
    /// <summary>
    /// Peer clouds (driver cloud) are used only by policy: when the request's requirements hold on them, or, for burst
    /// targets, when no other host fits. Among the candidates the highest rank wins.
    /// </summary>
    public static PlacementDecision Choose(PlacementRequest request, IEnumerable<HostState> hosts)
    {
        var rejections = new List<string>();
        var ordered = hosts.OrderBy(h => h.Name, StringComparer.Ordinal).ToList();
        var best = Best(request, ordered.Where(h => !h.IsPeer || Names(request, h)), rejections);
        if (best is null)
        {
            var bursting = ordered.Where(h => h.IsPeer && h.Burst && !Names(request, h)).ToList();
            best = Best(request, bursting, rejections);
            foreach (var peer in ordered.Where(h => h.IsPeer && !h.Burst && !Names(request, h)))
                rejections.Add($"{peer.Name}: a peer cloud, used only when the requirements name it (NAME = \"{peer.Name}\", or HYPERVISOR = \"cloud\") or as a burst target (Scheduling:BurstTo, or burst = true)");
        }
        return new PlacementDecision(best, best is null ? rejections : []);
    }

    /// <summary>The request's requirements name the peer, or peers in general (HYPERVISOR = "cloud").</summary>
    static bool Names(PlacementRequest request, HostState peer) =>
        request.RequirementsText is { } text && (text.Contains('"' + peer.Name + '"', StringComparison.OrdinalIgnoreCase)
            || text.Contains("\"cloud\"", StringComparison.OrdinalIgnoreCase) || text.Contains("'" + peer.Name + "'", StringComparison.OrdinalIgnoreCase));

    static string? Best(PlacementRequest request, IEnumerable<HostState> hosts, List<string> rejections)
    {
        string? best = null;
        var bestRank = double.NegativeInfinity;
        foreach (var host in hosts)
        {
            if (!host.Enabled) { rejections.Add($"{host.Name}: disabled"); continue; }
            if (host.State == "ERROR") { rejections.Add($"{host.Name}: in state ERROR ({host.StateReason})"); continue; }
            if (host.FreeCpus < request.Cpu) { rejections.Add($"{host.Name}: needs {request.Cpu} CPU, {host.FreeCpus} free"); continue; }
            if (host.FreeMemoryMiB < request.MemoryMiB) { rejections.Add($"{host.Name}: needs {request.MemoryMiB} MiB, {host.FreeMemoryMiB} free"); continue; }
            var attributes = host.Attributes();
            if (request.Requirements is not null && !request.Requirements.Evaluate(attributes).Truthy)
            {
                rejections.Add($"{host.Name}: requirement {request.RequirementsText} is false");
                continue;
            }
            var rank = request.Policy.Rank.Evaluate(attributes);
            var score = rank.IsText || double.IsNaN(rank.Number) ? double.MinValue : rank.Number;
            if (best is null || score > bestRank)
            {
                best = host.Name;
                bestRank = score;
            }
        }
        return best;
    }
}
