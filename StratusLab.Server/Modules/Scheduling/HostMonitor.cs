using System.Globalization;
using Quartz;
using StratusLab.Server.Modules.Scheduling.Contracts;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>Registers this machine as a host with its real capacity, and measures its CPU and memory use.</summary>
internal sealed class HostMonitor(SchedulingStore store, SchedulingOptions options, IConfiguration configuration, ISchedulerSignal signal, ILogger<HostMonitor> logger)
{
    public static string LocalHostName => Environment.MachineName.ToLowerInvariant();

    public async Task RegisterLocalHostAsync()
    {
        var cores = Environment.ProcessorCount;
        var memory = ReadMemInfo("MemTotal") / 1024;
        var cpus = (long)Math.Max(1, Math.Floor(cores * options.CpuOvercommit));
        // Compute's key, read as configuration text: Scheduling does not depend on Compute, and Compute validates it.
        var driver = configuration["Compute:Driver"] ?? "qemu";
        await store.UpdateLocalHostAsync(LocalHostName, driver, cpus, memory);
        logger.LogInformation("Local host {Host}: {Cores} cores (x{Overcommit} = {Cpus} schedulable CPUs), {Memory} MiB, driver {Driver}",
            LocalHostName, cores, options.CpuOvercommit, cpus, memory, driver);
        signal.Wake();
    }

    /// <summary>Measures the local host: CPU use as the 1-minute load average per core (capped at 100%), memory in use (MemTotal - MemAvailable).</summary>
    public async Task MeasureAsync()
    {
        var load = double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
        var usage = Math.Min(100, 100 * load / Environment.ProcessorCount);
        var used = (ReadMemInfo("MemTotal") - ReadMemInfo("MemAvailable")) / 1024;
        await store.SetMeasuredAsync(LocalHostName, Math.Round(usage, 1), used, null);
    }

    static long ReadMemInfo(string key)
    {
        var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith(key + ":", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}

/// <summary>Refreshes the local host's measured load.</summary>
[DisallowConcurrentExecution]
internal sealed class HostMonitorJob(HostMonitor monitor) : IJob
{
    public static readonly JobKey Key = new("host-monitor", "scheduling");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct) => await monitor.MeasureAsync();
}

/// <summary>The hosts as monitoring sees them (see <see cref="IHostInventory"/>).</summary>
internal sealed class HostInventory(SchedulingStore store) : IHostInventory
{
    public async Task<IReadOnlyList<HostSummary>> ListAsync(CancellationToken ct = default) =>
        (await store.ListHostsAsync()).Select(ToSummary).ToList();

    internal static HostSummary ToSummary(HostRow h) => new(h.Name, h.Driver, h.Enabled, h.Cpus, h.MemoryMib, h.AllocatedCpus,
        h.AllocatedMemoryMib, h.RunningVms, h.CpuUsage, h.MemoryUsedMib, h.MonitoredAt, h.IsLocal);

    public Task<bool> SetEnabledAsync(string host, bool enabled, CancellationToken ct = default) => store.SetEnabledAsync(host, enabled);
}
