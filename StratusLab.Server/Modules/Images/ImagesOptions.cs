using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Images;

/// <summary>The Images section: the size and freshness of the image cache.</summary>
internal sealed class ImagesOptions : IValidatedOptions
{
    public long MaxCacheMiB { get; set; } = 51200;
    public int MaxIdleHours { get; set; } = 168;
    public int RevalidateAfterMinutes { get; set; } = 60;
    public int PartialMaxAgeMinutes { get; set; } = 1440;

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.Range("Images:MaxCacheMiB", MaxCacheMiB, 1, 1L << 30);
        problems.Range("Images:MaxIdleHours", MaxIdleHours, 0, 24 * 3650);
        problems.Range("Images:RevalidateAfterMinutes", RevalidateAfterMinutes, 0, 60 * 24 * 3650);
        problems.Range("Images:PartialMaxAgeMinutes", PartialMaxAgeMinutes, 0, 60 * 24 * 3650);
        return problems;
    }
}
