using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Web;

/// <summary>The Web section: the dashboard's session.</summary>
internal sealed class WebOptions : IValidatedOptions
{
    /// <summary>A session not used for this long ends (sliding: each request renews it).</summary>
    public int IdleTimeoutMinutes { get; set; } = 30;

    /// <summary>When set, the idle timeout in seconds instead of <see cref="IdleTimeoutMinutes"/> (short sessions, tests).</summary>
    public int? IdleTimeoutSeconds { get; set; }

    public TimeSpan IdleTimeout => IdleTimeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : TimeSpan.FromMinutes(IdleTimeoutMinutes);

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.Range("Web:IdleTimeoutMinutes", IdleTimeoutMinutes, 1, 7 * 24 * 60);
        if (IdleTimeoutSeconds is { } seconds) problems.Range("Web:IdleTimeoutSeconds", seconds, 5, 7 * 24 * 3600);
        return problems;
    }
}
