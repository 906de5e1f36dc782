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
        Say(vm.InstanceId, "ACPI power button: powered off");
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

    /// <summary>Makes a VM vanish as if its host crashed (for testing failure handling).</summary>
    public Task CrashAsync(long instanceId) => store.SetSimulatedVmAsync(instanceId, null);
}
