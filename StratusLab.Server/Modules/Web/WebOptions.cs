using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Web;

/// <summary>The Web section: the dashboard's session.</summary>
internal sealed class WebOptions : IValidatedOptions
{
    /// <summary>A session not used for this long ends (sliding: each request renews it).</summary>
    public int IdleTimeoutMinutes { get; set; } = 30;

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.Range("Web:IdleTimeoutMinutes", IdleTimeoutMinutes, 1, 7 * 24 * 60);
        return problems;
    }
}
