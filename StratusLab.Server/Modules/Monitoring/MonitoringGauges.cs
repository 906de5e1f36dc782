using System.Diagnostics.Metrics;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Telemetry;

namespace StratusLab.Server.Modules.Monitoring;

/// <summary>
/// The /metrics gauges Monitoring feeds: instances per state, per-host capacity and use, and (opt-in, at most
/// Monitoring:PerInstanceSeriesMax instances) per-instance counters. Labels are bounded: state names, host names, and
/// the capped instance ids. Values are those of the last sample pass.
/// </summary>
internal sealed class MonitoringGauges
{
    sealed record Snapshot(IReadOnlyDictionary<string, long> States, IReadOnlyList<HostSummary> Hosts, IReadOnlyList<InstanceSampleRow> Instances);

    volatile Snapshot _snapshot = new(new Dictionary<string, long>(), [], []);

    /// <summary>Registers the gauges on this server's own meter: they report this server's last pass, never another's in the same process.</summary>
    public MonitoringGauges(ServerMeter serverMeter)
    {
        var meter = serverMeter.Meter;
        meter.CreateObservableGauge("stratuslab.instances", () =>
            _snapshot.States.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("state", kv.Key))),
            description: "Instances per lifecycle state");
        HostGauge(meter, "stratuslab.host.cpus", "Schedulable CPUs of the host", h => h.Cpus);
        HostGauge(meter, "stratuslab.host.memory_mib", "Memory of the host (MiB)", h => h.MemoryMiB);
        HostGauge(meter, "stratuslab.host.allocated_cpus", "CPUs held by the host's instances", h => h.AllocatedCpus);
        HostGauge(meter, "stratuslab.host.allocated_memory_mib", "Memory held by the host's instances (MiB)", h => h.AllocatedMemoryMiB);
        HostGauge(meter, "stratuslab.host.running_vms", "Instances placed on the host", h => h.RunningVms);
        HostGauge(meter, "stratuslab.host.cpu_usage_percent", "Measured CPU use of the host (%)", h => h.CpuUsagePercent);
        HostGauge(meter, "stratuslab.host.memory_used_mib", "Measured memory use of the host (MiB)", h => h.MemoryUsedMiB);
        InstanceGauge(meter, "stratuslab.instance.cpu_seconds", "CPU time of the instance's VM (s)", s => s.CpuSeconds);
        InstanceGauge(meter, "stratuslab.instance.memory_rss_bytes", "Resident memory of the instance's VM process (bytes)", s => s.RssBytes);
        InstanceGauge(meter, "stratuslab.instance.disk_read_bytes", "Bytes the instance read from its disks", s => s.DiskReadBytes);
        InstanceGauge(meter, "stratuslab.instance.disk_write_bytes", "Bytes the instance wrote to its disks", s => s.DiskWriteBytes);
        InstanceGauge(meter, "stratuslab.instance.net_rx_bytes", "Bytes the instance received", s => s.NetRxBytes);
        InstanceGauge(meter, "stratuslab.instance.net_tx_bytes", "Bytes the instance sent", s => s.NetTxBytes);
    }

    public void Update(IReadOnlyDictionary<string, long> states, IReadOnlyList<HostSummary> hosts, IReadOnlyList<InstanceSampleRow> instances) =>
        _snapshot = new Snapshot(states, hosts, instances);

    void HostGauge(Meter meter, string name, string description, Func<HostSummary, double> value) =>
        meter.CreateObservableGauge(name, () =>
            _snapshot.Hosts.Select(h => new Measurement<double>(value(h), new KeyValuePair<string, object?>("host", h.Name))),
            description: description);

    void InstanceGauge(Meter meter, string name, string description, Func<InstanceSampleRow, double?> value) =>
        meter.CreateObservableGauge(name, () =>
            _snapshot.Instances.Where(s => value(s) is not null)
                .Select(s => new Measurement<double>(value(s)!.Value, new KeyValuePair<string, object?>("instance", s.InstanceId.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    new KeyValuePair<string, object?>("simulated", s.Simulated ? "true" : "false"))),
            description: description);
}
