using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// No processes: every action succeeds after Compute:SimulatedDelayMs unless a fault is injected.
/// Its VMs are rows in the store, so they survive a server restart like QEMU processes do.
/// </summary>
internal sealed class SimulatedDriver(ComputeStore store, SimulatedFaults faults, ComputeOptions options, Console.ConsoleLogs consoles) : IHypervisorDriver
{
    // A serial log of the simulated VM's own lifecycle, so the console API has something true to show without QEMU.
    void Say(long instanceId, string line) =>
        consoles.Append(instanceId, $"[{DateTimeOffset.UtcNow:HH:mm:ss.fff}] simulated: {line}\n");

    public string Name => "simulated";
    public bool UsesRealMedia => options.SimulatedMedia;

    async Task ActAsync(string action, long instanceId, CancellationToken ct)
    {
        // The instance's host is read only while some simulated host is in an outage: a deploy makes no extra store trip.
        if (faults.AnyDown && (await store.GetAsync(instanceId))?.Host is { } host && faults.IsDown(host))
        {
            if (action == "query")
                throw new VmStateUnknownException($"simulated host {host} does not answer (outage); the VM is re-attached if it still runs when the host answers again");
            throw new HypervisorException($"simulated host {host} does not answer (outage)");
        }
        var fault = faults.Take(action, instanceId);
        if (fault is { Mode: "hang" }) await Task.Delay(Timeout.Infinite, ct);
        var delay = fault is { Mode: "delay" } ? fault.DelayMs : options.SimulatedDelayMs;
        if (delay > 0) await Task.Delay(delay, ct);
        if (fault is { Mode: "fail" }) throw new HypervisorException(fault.Message);
    }

    public Task PrologAsync(VmSpec spec, CancellationToken ct) => ActAsync("prolog", spec.InstanceId, ct);

    public async Task<VmStarted> StartAsync(VmSpec spec, CancellationToken ct)
    {
        await ActAsync("start", spec.InstanceId, ct);
        await store.SetSimulatedVmAsync(spec.InstanceId, "running");
        Say(spec.InstanceId, $"power on: {spec.Cpu} CPU, {spec.MemoryMiB} MiB, {spec.Disks.Count} disk(s), {spec.Nics.Count} NIC(s)");
        Say(spec.InstanceId, $"{spec.Hostname} booted");
        return new VmStarted(null, "simulated");
    }

    public async Task<VmPowerState> QueryAsync(VmRef vm, CancellationToken ct)
    {
        if (faults.Peek("query", vm.InstanceId) is { Mode: "silent" } && await store.GetSimulatedVmAsync(vm.InstanceId) is not null)
        {
            faults.Take("query", vm.InstanceId);
            return VmPowerState.Unresponsive;
        }
        await ActAsync("query", vm.InstanceId, ct);
        return await store.GetSimulatedVmAsync(vm.InstanceId) switch
        {
            "running" => VmPowerState.Running,
            "paused" => VmPowerState.Paused,
            _ => VmPowerState.Off,
        };
    }

    public async Task ShutdownAsync(VmRef vm, TimeSpan timeout, CancellationToken ct)
    {
        await ActAsync("shutdown", vm.InstanceId, ct);
        await store.SetSimulatedVmAsync(vm.InstanceId, null);
        Say(vm.InstanceId, timeout <= TimeSpan.Zero ? "power cut: switched off at once (forced)" : "ACPI power button: powered off");
    }

    public async Task KillAsync(VmRef vm, CancellationToken ct)
    {
        await ActAsync("kill", vm.InstanceId, ct);
        if (await store.GetSimulatedVmAsync(vm.InstanceId) is not null) Say(vm.InstanceId, "killed");
        await store.SetSimulatedVmAsync(vm.InstanceId, null);
    }

    public async Task PauseAsync(VmRef vm, CancellationToken ct)
    {
        await ActAsync("pause", vm.InstanceId, ct);
        await store.SetSimulatedVmAsync(vm.InstanceId, "paused");
        Say(vm.InstanceId, "paused");
    }

    public async Task ResumeAsync(VmRef vm, CancellationToken ct)
    {
        await ActAsync("resume", vm.InstanceId, ct);
        await store.SetSimulatedVmAsync(vm.InstanceId, "running");
        Say(vm.InstanceId, "resumed");
    }

    public async Task ResetAsync(VmRef vm, CancellationToken ct)
    {
        await ActAsync("reset", vm.InstanceId, ct);
        Say(vm.InstanceId, "reset: rebooting");
        Say(vm.InstanceId, "booted again");
    }

    public Task AttachDiskAsync(VmRef vm, HotDisk disk, CancellationToken ct) => ActAsync("attach", vm.InstanceId, ct);

    public Task DetachDiskAsync(VmRef vm, string deviceId, CancellationToken ct) => ActAsync("detach", vm.InstanceId, ct);

    public async Task<IReadOnlyList<VmRef>> ListRunningAsync(CancellationToken ct) =>
        (await store.ListSimulatedVmsAsync()).Select(id => new VmRef(id, null, null)).ToList();

    /// <summary>
    /// Simulated counters, a pure function of the VM's size and the seconds since it started (so two reads at the same time
    /// agree, and every counter only grows): CPU busy 10-40% per vCPU in a 5-minute wave, RSS 55-65% of its memory, disk
    /// about 20 KiB/s read and 50 KiB/s written in 4 KiB requests, network about 8 KiB/s in and 4 KiB/s out. Marked simulated.
    /// </summary>
    public async Task<Contracts.InstanceCounters?> StatsAsync(VmRef vm, VmStatsRequest request, CancellationToken ct)
    {
        if (await store.GetSimulatedVmAsync(vm.InstanceId) is null) return null;
        return CountersAt(request, DateTimeOffset.UtcNow);
    }

    internal static Contracts.InstanceCounters CountersAt(VmStatsRequest request, DateTimeOffset now)
    {
        var t = Math.Max(0, (now - (request.StartedAt ?? now)).TotalSeconds);
        // d(cpu)/dt = cpu * (0.25 + 0.15 sin(t / 300)) >= 0.1 * cpu: always growing.
        var cpuSeconds = request.Cpu * (0.25 * t + 0.15 * 300 * (1 - Math.Cos(t / 300)));
        var rss = (long)(request.MemoryMiB * 1024 * 1024 * (0.6 + 0.05 * Math.Sin(t / 600)));
        var read = (long)(t * 20 * 1024);
        var written = (long)(t * 50 * 1024);
        return new Contracts.InstanceCounters(Math.Round(cpuSeconds, 2), rss, read, written, read / 4096, written / 4096,
            (long)(t * 8 * 1024), (long)(t * 4 * 1024), Simulated: true);
    }

    /// <summary>Makes a VM vanish as if its host crashed (for testing failure handling).</summary>
    public Task CrashAsync(long instanceId) => store.SetSimulatedVmAsync(instanceId, null);

    public Task<Stream> OpenGraphicalConsoleAsync(VmRef vm, CancellationToken ct) =>
        throw new NoConsoleException($"instance {vm.InstanceId} runs on the simulated driver, which runs no VM and so has no screen; its graphical console exists on the qemu and ssh drivers");
}
