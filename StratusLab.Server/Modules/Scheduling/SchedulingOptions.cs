using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>The Scheduling section: the placement policy, overcommit and the pending timeouts.</summary>
internal sealed class SchedulingOptions : IValidatedOptions
{
    public string Policy { get; set; } = "packing";
    public int PendingTimeoutSeconds { get; set; } = 300;
    public int SafetyNetSeconds { get; set; } = 10;
    public double CpuOvercommit { get; set; } = 4;
    /// <summary>How often SSH nodes are probed.</summary>
    public int NodeProbeIntervalSeconds { get; set; } = 30;
    /// <summary>An SSH node that misses this many probes in a row goes to state ERROR.</summary>
    public int NodeMissedProbes { get; set; } = 3;
    /// <summary>The default directory an SSH node keeps its VMs and image cache in (node-side; never the server's data dir).</summary>
    public string NodeRoot { get; set; } = "/var/lib/stratuslab-node";
    /// <summary>Peer clouds (host names, comma-separated) that take instances when no local host has room.</summary>
    public string BurstTo { get; set; } = "";
    /// <summary>How often peer clouds are probed (credentials, quota headroom).</summary>
    public int PeerProbeIntervalSeconds { get; set; } = 30;

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        try { Scheduling.Policy.Parse(Policy); }
        catch (Exception e) when (e is ArgumentException or Expressions.ExpressionException)
        {
            problems.Add($"Scheduling:Policy = '{Policy}' is not accepted; accepted values: packing, striping, load-aware, or rank:<expression> ({e.Message}).");
        }
        problems.Range("Scheduling:PendingTimeoutSeconds", PendingTimeoutSeconds, 0, 86_400 * 30);
        problems.Range("Scheduling:SafetyNetSeconds", SafetyNetSeconds, 1, 3600);
        problems.Range("Scheduling:NodeProbeIntervalSeconds", NodeProbeIntervalSeconds, 1, 3600);
        problems.Range("Scheduling:NodeMissedProbes", NodeMissedProbes, 1, 1000);
        problems.Range("Scheduling:PeerProbeIntervalSeconds", PeerProbeIntervalSeconds, 1, 3600);
        if (!Path.IsPathFullyQualified(NodeRoot))
            problems.Add($"Scheduling:NodeRoot = '{NodeRoot}' is not accepted; accepted values: an absolute path on the nodes.");
        if (CpuOvercommit is < 0.1 or > 100 || double.IsNaN(CpuOvercommit))
            problems.Add($"Scheduling:CpuOvercommit = {CpuOvercommit} is out of range; accepted values: 0.1..100.");
        return problems;
    }
}
