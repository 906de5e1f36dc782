using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Monitoring;

/// <summary>The Monitoring section: sampling, downsampling and retention, /metrics series, guest KPI limits, accounting.</summary>
internal sealed class MonitoringOptions : IValidatedOptions
{
    /// <summary>Seconds between two samples of every running instance and host.</summary>
    public int SampleIntervalSeconds { get; set; } = 30;
    /// <summary>Width of a downsampled bucket, in seconds (3600: hourly).</summary>
    public int RollupSeconds { get; set; } = 3600;
    /// <summary>How long raw samples are kept, in seconds (86400: 24 h).</summary>
    public int RawRetentionSeconds { get; set; } = 86_400;
    /// <summary>How long downsampled buckets are kept, in seconds (2592000: 30 d).</summary>
    public int RollupRetentionSeconds { get; set; } = 2_592_000;
    /// <summary>Per-instance series on /metrics (labels: instance id); off by default to keep cardinality low.</summary>
    public bool PerInstanceSeries { get; set; }
    /// <summary>At most this many instances get per-instance series (the most recently created).</summary>
    public int PerInstanceSeriesMax { get; set; } = 100;
    /// <summary>At most this many KPIs in one guest report.</summary>
    public int KpiMaxPerReport { get; set; } = 32;
    /// <summary>At most this many distinct KPI names per instance.</summary>
    public int KpiMaxNamesPerInstance { get; set; } = 64;
    /// <summary>At most this many guest reports per instance per minute.</summary>
    public int KpiMaxReportsPerMinute { get; set; } = 60;
    /// <summary>Width of one accounting period (one usage record per instance per period), in seconds (86400: daily).</summary>
    public int AccountingPeriodSeconds { get; set; } = 86_400;
    /// <summary>The APEL SiteName (GOCDB site name) of this cloud.</summary>
    public string SiteName { get; set; } = "STRATUSLAB-SITE";
    /// <summary>The APEL CloudComputeService; empty: this machine's host name.</summary>
    public string CloudComputeService { get; set; } = "";

    public IEnumerable<string> Problems()
    {
        var p = new ConfigurationProblems();
        p.Range("Monitoring:SampleIntervalSeconds", SampleIntervalSeconds, 1, 3600);
        p.Range("Monitoring:RollupSeconds", RollupSeconds, 1, 86_400);
        p.Range("Monitoring:RawRetentionSeconds", RawRetentionSeconds, 1, 86_400 * 366);
        p.Range("Monitoring:RollupRetentionSeconds", RollupRetentionSeconds, 1, 86_400 * 3660);
        p.Range("Monitoring:PerInstanceSeriesMax", PerInstanceSeriesMax, 1, 10_000);
        p.Range("Monitoring:KpiMaxPerReport", KpiMaxPerReport, 1, 1000);
        p.Range("Monitoring:KpiMaxNamesPerInstance", KpiMaxNamesPerInstance, 1, 10_000);
        p.Range("Monitoring:KpiMaxReportsPerMinute", KpiMaxReportsPerMinute, 1, 6000);
        p.Range("Monitoring:AccountingPeriodSeconds", AccountingPeriodSeconds, 1, 86_400 * 31);
        if (RollupSeconds < SampleIntervalSeconds)
            p.Add($"Monitoring:RollupSeconds = {RollupSeconds} is out of range; accepted values: at least Monitoring:SampleIntervalSeconds ({SampleIntervalSeconds}).");
        if (string.IsNullOrWhiteSpace(SiteName) || SiteName.Contains('\n'))
            p.Add($"Monitoring:SiteName = '{SiteName}' is not accepted; accepted values: a GOCDB site name on one line.");
        return p;
    }
}
