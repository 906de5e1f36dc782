using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>The Scheduling section: the placement policy, overcommit and the pending timeouts.</summary>
internal sealed class SchedulingOptions : IValidatedOptions
{
    public string Policy { get; set; } = "packing";
    public int PendingTimeoutSeconds { get; set; } = 300;
    public int SafetyNetSeconds { get; set; } = 10;
    public double CpuOvercommit { get; set; } = 4;

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
        if (CpuOvercommit is < 0.1 or > 100 || double.IsNaN(CpuOvercommit))
            problems.Add($"Scheduling:CpuOvercommit = {CpuOvercommit} is out of range; accepted values: 0.1..100.");
        return problems;
    }
}
