namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>A disk attached at boot.</summary>
internal sealed record VmDisk(string Path, string Format, bool ReadOnly = false)
{
    /// <summary>A qcow2 disk's backing image as QEMU must open it instead of the header's path (an iscsi:// URL), and its format.</summary>
    public string? BackingPath { get; init; }
    public string? BackingFormat { get; init; }
    /// <summary>The initiator name the backing is opened as (-iscsi initiator-name covers -drive URLs, not -blockdev nodes).</summary>
    public string? BackingInitiator { get; init; }
}

/// <summary>A host port forwarded into the guest (port address translation).</summary>
internal sealed record PortForward(int GuestPort, string HostAddress, int HostPort, string Protocol = "tcp");

/// <summary>
/// A network interface: QEMU user-mode networking (slirp) with its forwarded ports, or, when <see cref="Tap"/> is set, a
/// tap device the network driver made on its bridge. For user-mode NICs <see cref="Cidr"/>, <see cref="Host"/>,
/// <see cref="Dns"/> and <see cref="GuestIp"/> set slirp's network, host and DNS addresses and its DHCP address.
/// </summary>
internal sealed record VmNic(string Mac, IReadOnlyList<PortForward> Forwards)
{
    public string? Tap { get; init; }
    public string? Cidr { get; init; }
    public string? Host { get; init; }
    public string? Dns { get; init; }
    public string? GuestIp { get; init; }
    public int? Mtu { get; init; }
}

/// <summary>Everything a driver needs to start one VM.</summary>
internal sealed record VmSpec(
    long InstanceId,
    string Hostname,
    string Directory,
    int Cpu,
    long MemoryMiB,
    IReadOnlyList<VmDisk> Disks,
    string? ContextIso,
    IReadOnlyList<VmNic> Nics,
    IReadOnlyList<string> RawArguments);

/// <summary>Identifies a VM a driver started.</summary>
internal sealed record VmRef(long InstanceId, string? Directory, int? Pid);

/// <summary>What the driver reports about a started VM.</summary>
internal sealed record VmStarted(int? Pid, string Accelerator);

/// <summary>
/// The power state a driver sees; <see cref="Panicked"/>: the guest kernel panicked (pvpanic) and the VM is halted;
/// <see cref="Unresponsive"/>: the VM's process is there but does not answer (frozen, wedged).
/// </summary>
internal enum VmPowerState { Running, Paused, Off, Panicked, Unresponsive }

/// <summary>A driver action failed; the message is the hypervisor's own error text.</summary>
internal class HypervisorException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The VM has no graphical or serial console (the driver runs no VM, or the console socket is gone); the message says why and what to do.</summary>
internal sealed class NoConsoleException(string message, Exception? inner = null) : HypervisorException(message, inner);

/// <summary>
/// The VM's host does not answer: whether the VM runs is unknown; the message says why. <see cref="HostDown"/>: the host is
/// known to be down (an SSH node in ERROR after its missed probes), so the instance is UNKNOWN at once; otherwise it is one
/// silent answer, counted towards Compute:UnknownAfterSeconds.
/// </summary>
internal sealed class VmStateUnknownException(string message, Exception? inner = null, bool hostDown = true) : HypervisorException(message, inner)
{
    public bool HostDown { get; } = hostDown;
}

/// <summary>What a driver needs to read a VM's counters besides its reference (the simulated driver derives them from these).</summary>
internal sealed record VmStatsRequest(long Cpu, long MemoryMiB, DateTimeOffset? StartedAt);

/// <summary>Starts and controls VMs on one host.</summary>
internal interface IHypervisorDriver
{
    string Name { get; }

    /// <summary>Whether PROLOG must build real media (disk overlay, context ISO, forwarded ports) for this driver.</summary>
    bool UsesRealMedia { get; }

    /// <summary>Host-side preparation before BOOT (the simulated driver models transfer time and faults here).</summary>
    Task PrologAsync(VmSpec spec, CancellationToken ct);

    Task<VmStarted> StartAsync(VmSpec spec, CancellationToken ct);
    Task<VmPowerState> QueryAsync(VmRef vm, CancellationToken ct);

    /// <summary>
    /// Asks the guest to power off (ACPI); kills it if it is still running after <paramref name="timeout"/>. A zero timeout is
    /// an immediate power-off: no ACPI request, the VM is switched off at once (its disks are kept).
    /// </summary>
    Task ShutdownAsync(VmRef vm, TimeSpan timeout, CancellationToken ct);

    Task KillAsync(VmRef vm, CancellationToken ct);
    Task PauseAsync(VmRef vm, CancellationToken ct);
    Task ResumeAsync(VmRef vm, CancellationToken ct);
    Task ResetAsync(VmRef vm, CancellationToken ct);

    /// <summary>Hot-plugs a disk into a running VM.</summary>
    Task AttachDiskAsync(VmRef vm, HotDisk disk, CancellationToken ct);

    /// <summary>Hot-unplugs a disk; the guest must release it (ACPI), then the block node is removed.</summary>
    Task DetachDiskAsync(VmRef vm, string deviceId, CancellationToken ct);

    /// <summary>The VM's cumulative counters (see <see cref="Contracts.InstanceCounters"/>), or null when it does not run.</summary>
    Task<Contracts.InstanceCounters?> StatsAsync(VmRef vm, VmStatsRequest request, CancellationToken ct);

    /// <summary>
    /// Connects to the VM's graphical console, an RFB (VNC) server with no authentication of its own (security type None):
    /// the caller was authorized before. Throws <see cref="NoConsoleException"/> with the reason when there is none.
    /// </summary>
    Task<Stream> OpenGraphicalConsoleAsync(VmRef vm, CancellationToken ct);

    /// <summary>
    /// Connects to the VM's serial port (the interactive console), byte for byte. Drivers that run no local or node QEMU have
    /// none: they throw a <see cref="HypervisorException"/> with the reason.
    /// </summary>
    Task<Stream> OpenSerialConsoleAsync(VmRef vm, CancellationToken ct) =>
        throw new NoConsoleException($"instance {vm.InstanceId} runs on the {Name} driver, which has no serial port to connect to");

    /// <summary>Instance ids of every VM of this server's data dir that this driver finds running.</summary>
    Task<IReadOnlyList<VmRef>> ListRunningAsync(CancellationToken ct);
}
