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

/// <summary>
/// This server's own Meter, for observable gauges whose values belong to one server (its store, its hosts). The meter
/// shares the <see cref="Telemetry.Name"/> of the process-wide one, and its Scope is this object; a view in
/// <see cref="PlatformModule"/> drops the instruments of any other server's meter, so a process holding several
/// servers (the tests) exports each server's gauges only on its own /metrics.
/// </summary>
public sealed class ServerMeter : IDisposable
{
    public ServerMeter() => Meter = new Meter(Telemetry.Name, null, null, this);

    public Meter Meter { get; }

    /// <summary>True when <paramref name="instrument"/> was made by another server's meter.</summary>
    public bool IsForeign(Instrument instrument) => instrument.Meter.Scope is ServerMeter other && !ReferenceEquals(other, this);

    public void Dispose() => Meter.Dispose();
}
