using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace StratusLab.Server.Platform.Telemetry;

/// <summary>The one ActivitySource and Meter of the server; modules add their spans and instruments here.</summary>
public static class Telemetry
{
    public const string Name = "StratusLab";
    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> ToolCalls = Meter.CreateCounter<long>("stratuslab.tool.calls", description: "External tool invocations");
    public static readonly Histogram<double> ToolDuration = Meter.CreateHistogram<double>("stratuslab.tool.duration", unit: "s", description: "External tool run time");
}
