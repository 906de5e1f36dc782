using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>The Ec2 section: the region name clients sign for, and how far a request's clock may be off.</summary>
internal sealed class Ec2Options : IValidatedOptions
{
    public string Region { get; set; } = "stratuslab-1";
    public int MaxClockSkewMinutes { get; set; } = 15;

    public string Zone => Region + "a";

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        if (!System.Text.RegularExpressions.Regex.IsMatch(Region, "^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$"))
            problems.Add($"Ec2:Region = '{Region}' is not a region name; accepted: lower-case letters, digits and '-', 2 to 32 characters (e.g. stratuslab-1).");
        problems.Range("Ec2:MaxClockSkewMinutes", MaxClockSkewMinutes, 1, 60);
        return problems;
    }
}
