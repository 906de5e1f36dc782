using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// Runs qemu-system-x86_64 directly (no libvirt): KVM when a real probe boot works, TCG otherwise.
/// VMs are daemonized, so they outlive the server and are re-attached through their QMP sockets.
/// </summary>
internal sealed partial class QemuDriver(ICommandRunner runner, ServerOptions options, ComputeOptions compute, Console.ConsoleLogs consoles, GuestPanics panics,
    ILogger<QemuDriver> logger) : IHypervisorDriver
{
    readonly System.Collections.Concurrent.ConcurrentDictionary<long, Task> _eventListeners = new();

    readonly ICommandRunner _runner = runner;
    readonly SemaphoreSlim _probeLock = new(1, 1);
    readonly QmpSessions _qmp = new();
    string? _accelerator;

    public string Name => "qemu";
    public bool UsesRealMedia => true;

    string Binary => string.IsNullOrEmpty(compute.QemuBinary) ? "qemu-system-x86_64" : compute.QemuBinary;

    /// <summary>The instances folder of this server; only QEMU processes whose pidfile lives under it are ours.</summary>
    string InstancesRoot => Path.Combine(options.DataDir, "instances") + Path.DirectorySeparatorChar;

    /// <summary>The accelerator in use: decided once, by config or by a probe boot, and logged.</summary>
    public async Task<string> AcceleratorAsync(CancellationToken ct)
    {
        if (_accelerator is not null) return _accelerator;
        await _probeLock.WaitAsync(ct);
        try
        {
            if (_accelerator is not null) return _accelerator;
            var configured = compute.Accelerator;
            if (configured is "kvm" or "tcg")
            {
                logger.LogInformation("QEMU accelerator: {Accelerator} (set by Compute:Accelerator)", configured);
                return _accelerator = configured;
            }
            var kvmProblem = await ProbeAsync("kvm", ct);
            if (kvmProblem is null)
            {
                logger.LogInformation("QEMU accelerator: kvm (a probe guest booted under KVM{How})",
                    ProbeKernel() is null ? "; no appliance kernel to probe with, only a boot sector" : "");
                return _accelerator = "kvm";
            }
            var tcgProblem = await ProbeAsync("tcg", ct);
            if (tcgProblem is not null)
                throw new HypervisorException($"QEMU cannot boot a guest here: KVM: {kvmProblem}; TCG: {tcgProblem}. Is qemu-system-x86 installed?");
            logger.LogWarning("QEMU accelerator: tcg (software emulation, slower) because KVM does not work here: {Reason}", kvmProblem);
            return _accelerator = "tcg";
        }
        finally
        {
            _probeLock.Release();
        }
    }

    public async Task PrologAsync(VmSpec spec, CancellationToken ct) => await AcceleratorAsync(ct);

    public async Task<VmStarted> StartAsync(VmSpec spec, CancellationToken ct)
    {
        var accelerator = await AcceleratorAsync(ct);
        var paths = QemuPaths.For(spec.Directory, consoles.Prepare(spec.InstanceId));
        Directory.CreateDirectory(Path.GetDirectoryName(paths.QmpSocket)!);
        File.Delete(paths.QmpSocket);
        File.Delete(paths.EventSocket);
        File.Delete(paths.ConsoleSocket);
        File.Delete(paths.VncSocket);
        File.Delete(paths.PidFile);
        try
        {
            await _runner.RunAsync(new ToolCommand(Binary, BuildArguments(spec, accelerator, paths)) { Timeout = TimeSpan.FromSeconds(60) }, ct);
        }
        catch (ToolFailedException e)
        {
            throw new HypervisorException($"QEMU did not start: {e.StandardError.Trim()}", e);
        }
        var pid = int.Parse((await File.ReadAllTextAsync(paths.PidFile, ct)).Trim());
        // The VNC server asks no password: only this server's user may connect to its socket.
        if (File.Exists(paths.VncSocket)) File.SetUnixFileMode(paths.VncSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WatchEvents(spec.InstanceId, spec.Directory);
        return new VmStarted(pid, accelerator);
    }

    public async Task<VmPowerState> QueryAsync(VmRef vm, CancellationToken ct)
    {
        if (PidOf(vm) is not { } pid) return VmPowerState.Off;
        try
        {
            var status = await _qmp.ExecuteAsync(SocketOf(vm), "query-status", null, ct);
            // After a server restart the event listener is re-attached here; a panic it missed shows in the status.
            WatchEvents(vm.InstanceId, vm.Directory);
            if (status?["status"]?.GetValue<string>() == "guest-panicked") return VmPowerState.Panicked;
            return status?["running"]?.GetValue<bool>() == true ? VmPowerState.Running : VmPowerState.Paused;
        }
        catch (QmpTimeoutException e)
        {
            // A stopped or wedged QEMU: the process is there, so the VM is not gone; the caller says so and asks again later.
            logger.LogWarning("Instance {Id}: QEMU (pid {Pid}) is not answering: {Error}; it is still running, checking again later", vm.InstanceId, pid, e.Message);
            return IsOurProcess(pid, vm.InstanceId) ? VmPowerState.Unresponsive : VmPowerState.Off;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or HypervisorException or IOException)
        {
            return IsOurProcess(pid, vm.InstanceId) ? VmPowerState.Running : VmPowerState.Off;
        }
    }

    public async Task ShutdownAsync(VmRef vm, TimeSpan timeout, CancellationToken ct)
    {
        if (PidOf(vm) is not { } pid) return;
        if (timeout <= TimeSpan.Zero)
        {
            await PowerOffAsync(vm, pid, ct);
            return;
        }
        try
        {
            await _qmp.ExecuteAsync(SocketOf(vm), "system_powerdown", null, ct);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or HypervisorException or IOException)
        {
            logger.LogWarning("Instance {Id}: ACPI power-down request failed ({Error}); killing it", vm.InstanceId, e.Message);
        }
        if (await WaitForExitAsync(pid, vm.InstanceId, timeout, ct)) return;
        logger.LogWarning("Instance {Id} did not power off within {Seconds} s; killing it", vm.InstanceId, timeout.TotalSeconds);
        await KillAsync(vm, ct);
    }

    /// <summary>
    /// Pulls the plug: QMP 'quit' ends QEMU at once without asking the guest (QEMU flushes its own disk caches as it exits);
    /// a QEMU that does not answer or take it within 10 s is killed.
    /// </summary>
    async Task PowerOffAsync(VmRef vm, int pid, CancellationToken ct)
    {
        try
        {
            await _qmp.ExecuteAsync(SocketOf(vm), "quit", null, ct);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or HypervisorException or IOException)
        {
            // QEMU may close the socket before it answers 'quit'; whether it went is checked below.
            logger.LogDebug("Instance {Id}: QMP quit: {Error}", vm.InstanceId, e.Message);
        }
        if (!await WaitForExitAsync(pid, vm.InstanceId, TimeSpan.FromSeconds(10), ct))
            logger.LogWarning("Instance {Id}: QEMU did not quit within 10 s; killing it", vm.InstanceId);
        await KillAsync(vm, ct);
    }

    /// <summary>Kills every QEMU of this instance: the recorded pid, the pidfile's, and any found by its name, whatever the store says.</summary>
    public async Task KillAsync(VmRef vm, CancellationToken ct)
    {
        foreach (var pid in PidsOf(vm))
        {
            try { Process.GetProcessById(pid).Kill(); }
            catch (ArgumentException) { }
            catch (InvalidOperationException) { }
            if (!await WaitForExitAsync(pid, vm.InstanceId, TimeSpan.FromSeconds(15), ct))
                throw new HypervisorException($"QEMU process {pid} of instance {vm.InstanceId} did not die after SIGKILL");
        }
        if (vm.Directory is not null)
        {
            var paths = QemuPaths.For(vm.Directory);
            File.Delete(paths.QmpSocket);
            File.Delete(paths.EventSocket);
            File.Delete(paths.ConsoleSocket);
            File.Delete(paths.VncSocket);
        }
    }

    /// <summary>The VM's VNC server on its unix socket; a VM started before the server gave VMs a screen has none until it is restarted.</summary>
    public async Task<Stream> OpenGraphicalConsoleAsync(VmRef vm, CancellationToken ct)
    {
        var socket = vm.Directory is null ? null : QemuPaths.For(vm.Directory).VncSocket;
        if (socket is null || !File.Exists(socket))
            throw new NoConsoleException($"instance {vm.InstanceId} has no graphical console socket: its VM was started without one (by an older server) or is stopping; stop and start the instance to give it one");
        return await ConnectUnixAsync(socket, $"the graphical console of instance {vm.InstanceId}", ct);
    }

    /// <summary>The VM's serial port, on its unix socket.</summary>
    public async Task<Stream> OpenSerialConsoleAsync(VmRef vm, CancellationToken ct)
    {
        var socket = ConsoleSocketOf(vm);
        if (socket is null || !File.Exists(socket))
            throw new NoConsoleException($"instance {vm.InstanceId} has no serial console socket: its VM is stopping");
        return await ConnectUnixAsync(socket, $"the serial console of instance {vm.InstanceId}", ct);
    }

    static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>A stream on a unix socket, connected within 5 s; refused or late: a <see cref="NoConsoleException"/> naming <paramref name="what"/>.</summary>
    internal static async Task<Stream> ConnectUnixAsync(string path, string what, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
            connect.CancelAfter(ConnectTimeout);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), connect.Token);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (Exception e) when (e is SocketException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            socket.Dispose();
            throw new NoConsoleException($"{what} does not answer ({(e is SocketException ? e.Message : $"no connection within {ConnectTimeout.TotalSeconds:0} s")}); the VM may be stopping: try again", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The unix socket of the VM's serial port (the interactive console), or null when it has none.</summary>
    static string? ConsoleSocketOf(VmRef vm) => vm.Directory is null ? null : QemuPaths.For(vm.Directory).ConsoleSocket;

    /// <summary>One event listener per running VM, for as long as QEMU keeps its event socket open.</summary>
    void WatchEvents(long instanceId, string? directory)
    {
        if (directory is null) return;
        var socket = QemuPaths.For(directory).EventSocket;
        if (!File.Exists(socket)) return;
        var started = new TaskCompletionSource();
        if (!_eventListeners.TryAdd(instanceId, started.Task)) return;
        _ = Task.Run(async () =>
        {
            try { await QmpEventListener.ListenAsync(instanceId, socket, panics, logger, CancellationToken.None); }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                logger.LogDebug("Instance {Id}: the QMP event socket closed: {Error}", instanceId, e.Message);
            }
            finally
            {
                _eventListeners.TryRemove(instanceId, out _);
                started.TrySetResult();
            }
        });
    }

    public Task PauseAsync(VmRef vm, CancellationToken ct) => SimpleCommandAsync(vm, "stop", ct);
    public Task ResumeAsync(VmRef vm, CancellationToken ct) => SimpleCommandAsync(vm, "cont", ct);
    public Task ResetAsync(VmRef vm, CancellationToken ct) => SimpleCommandAsync(vm, "system_reset", ct);

    async Task SimpleCommandAsync(VmRef vm, string command, CancellationToken ct) =>
        await _qmp.ExecuteAsync(SocketOf(vm), command, null, ct);

    public Task AttachDiskAsync(VmRef vm, HotDisk disk, CancellationToken ct) => AttachOverQmpAsync(_qmp, SocketOf(vm), disk, ct);

    /// <summary>blockdev-add + device_add through the VM's QMP gate (the block node is removed again when the device is refused).</summary>
    internal static Task AttachOverQmpAsync(QmpSessions sessions, string socket, HotDisk disk, CancellationToken ct) =>
        sessions.RunAsync<bool>(socket, async (qmp, token) =>
        {
            await qmp.ExecuteAsync("blockdev-add", disk.Blockdev, token);
            try
            {
                // The serial is the device id, so the guest can tell the disk by it (/sys/block/vdX/serial, /dev/disk/by-id/virtio-<id>).
                await qmp.ExecuteAsync("device_add", new JsonObject { ["driver"] = "virtio-blk-pci", ["drive"] = disk.NodeName, ["id"] = disk.DeviceId, ["serial"] = disk.DeviceId }, token);
            }
            catch (HypervisorException)
            {
                await qmp.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = disk.NodeName }, token);
                throw;
            }
            return true;
        }, ct, AttachTimeout);

    /// <summary>blockdev-add of an iSCSI disk logs in to the target first, which can take longer than a plain command.</summary>
    static readonly TimeSpan AttachTimeout = TimeSpan.FromSeconds(30);

    public async Task DetachDiskAsync(VmRef vm, string deviceId, CancellationToken ct)
    {
        if (PidOf(vm) is null) return;
        await DetachOverQmpAsync(_qmp, SocketOf(vm), deviceId, ct);
    }

    /// <summary>device_del, then blockdev-del once the guest released the device (retried for up to 30 s).</summary>
    internal static async Task DetachOverQmpAsync(QmpSessions sessions, string socket, string deviceId, CancellationToken ct)
    {
        try { await sessions.ExecuteAsync(socket, "device_del", new JsonObject { ["id"] = deviceId }, ct); }
        catch (QmpCommandException e) when (e.ErrorClass == "DeviceNotFound") { }
        // device_del completes when the guest acknowledges the unplug; until then the node is in use. Each attempt takes
        // the VM's QMP gate on its own, so the VM monitor is not starved while the guest takes its time.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                await sessions.RunAsync(socket, async (qmp, token) =>
                {
                    // A node QEMU no longer has is already detached: asked, not inferred from an error text.
                    var nodes = await qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, token) as JsonArray ?? [];
                    if (!nodes.Any(n => n?["node-name"]?.GetValue<string>() == "node-" + deviceId)) return true;
                    await qmp.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = "node-" + deviceId }, token);
                    return true;
                }, ct);
                return;
            }
            catch (HypervisorException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, ct);
            }
        }
    }

    /// <summary>Runs any QMP command on a running VM (hot-plug and the like), in turn with every other QMP use of that VM.</summary>
    public Task<JsonNode?> ExecuteQmpAsync(VmRef vm, string command, JsonObject? arguments, CancellationToken ct) =>
        _qmp.ExecuteAsync(SocketOf(vm), command, arguments, ct);

    static string SocketOf(VmRef vm) =>
        vm.Directory is null ? throw new HypervisorException($"instance {vm.InstanceId} has no VM directory") : QemuPaths.For(vm.Directory).QmpSocket;

    /// <summary>The QEMU process of this instance, if one runs: see <see cref="PidsOf"/>.</summary>
    int? PidOf(VmRef vm)
    {
        // The usual case, cheaply: the recorded pid is still this VM's QEMU.
        if (vm.Pid is { } recorded && IsOurProcess(recorded, vm.InstanceId)) return recorded;
        return PidsOf(vm) is [var first, ..] ? first : null;
    }

    /// <summary>
    /// Every live QEMU of this instance: the pid the store recorded, the one in the VM's pidfile (QEMU writes it before
    /// it is started, so a crash of the server between the two still finds it), and any process named for it under
    /// this data dir. The store's pid alone is not enough: it is recorded only once the VM runs.
    /// </summary>
    IReadOnlyList<int> PidsOf(VmRef vm)
    {
        var pids = new List<int>();
        void Consider(int pid)
        {
            if (!pids.Contains(pid) && IsOurProcess(pid, vm.InstanceId)) pids.Add(pid);
        }
        if (vm.Pid is { } recorded) Consider(recorded);
        if (vm.Directory is not null && ReadPidFile(QemuPaths.For(vm.Directory).PidFile) is { } fromFile) Consider(fromFile);
        foreach (var (pid, id) in OurProcesses())
            if (id == vm.InstanceId) Consider(pid);
        return pids;
    }

    static int? ReadPidFile(string path)
    {
        try { return int.TryParse(File.ReadAllText(path).Trim(), out var pid) ? pid : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>Every QEMU process started for this data dir (found by its name and pidfile in /proc), with its instance id.</summary>
    IEnumerable<(int Pid, long InstanceId)> OurProcesses()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            var args = CommandLine(pid);
            if (args is null) continue;
            if (InstanceIdOf(args, InstancesRoot) is { } id) yield return (pid, id);
        }
    }

    public Task<IReadOnlyList<VmRef>> ListRunningAsync(CancellationToken ct)
    {
        var found = OurProcesses().Select(p => new VmRef(p.InstanceId, Path.Combine(InstancesRoot, p.InstanceId.ToString(System.Globalization.CultureInfo.InvariantCulture)), p.Pid)).ToList();
        return Task.FromResult<IReadOnlyList<VmRef>>(found);
    }

    /// <summary>The instance id of a QEMU command line started by this server (its pidfile is under <paramref name="instancesRoot"/>), else null.</summary>
    public static long? InstanceIdOf(IReadOnlyList<string> args, string instancesRoot)
    {
        var name = args.SkipWhile(a => a != "-name").Skip(1).FirstOrDefault();
        var pidFile = args.SkipWhile(a => a != "-pidfile").Skip(1).FirstOrDefault();
        if (name is null || pidFile is null || !pidFile.StartsWith(instancesRoot, StringComparison.Ordinal)) return null;
        var marker = name.Split(',')[0];
        return marker.StartsWith("stratuslab-", StringComparison.Ordinal) && long.TryParse(marker["stratuslab-".Length..], out var id) ? id : null;
    }

    bool IsOurProcess(int pid, long instanceId)
    {
        var args = CommandLine(pid);
        return args is not null && InstanceIdOf(args, InstancesRoot) == instanceId;
    }

    static IReadOnlyList<string>? CommandLine(int pid)
    {
        try
        {
            var raw = File.ReadAllText($"/proc/{pid}/cmdline");
            if (raw.Length == 0) return null;
            // A zombie keeps its pid but has no command line; it is not running.
            return raw.TrimEnd('\0').Split('\0');
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    async Task<bool> WaitForExitAsync(int pid, long instanceId, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            // The command line goes when the process drops its memory, before it closes its files (its
            // forwarded ports, its disks): wait until it is gone or a zombie, which holds nothing.
            if (!IsOurProcess(pid, instanceId) && HasReleasedItsFiles(pid)) return true;
            await Task.Delay(50, ct);
        }
        return !IsOurProcess(pid, instanceId);
    }

    static bool HasReleasedItsFiles(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].TrimStart()[0];
            return state is 'Z' or 'X';
        }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return true; }
    }
}
