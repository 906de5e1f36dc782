using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Services;

/// <summary>The Services section: how often elasticity rules are evaluated.</summary>
internal sealed class ServicesOptions : IValidatedOptions
{
    /// <summary>Seconds between two evaluations of every service's rules (a rule's periods count these evaluations).</summary>
    public int EvaluateIntervalSeconds { get; set; } = 10;

    public IEnumerable<string> Problems()
    {
        var p = new ConfigurationProblems();
        p.Range("Services:EvaluateIntervalSeconds", EvaluateIntervalSeconds, 1, 3600);
        return p;
    }
}
