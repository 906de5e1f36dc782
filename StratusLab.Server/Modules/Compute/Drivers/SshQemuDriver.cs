using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// QEMU on an SSH node (host driver "ssh"): the same arguments as on this machine, run on the node over the node's
/// control master, with every node-side path under the node's own root ({root}/instances/{id}, {root}/cache), never the
/// server's data dir. The boot disk comes from the node-local cache (boot mode cache: the image a CoW clone stands on is
/// copied to the node once, and each VM gets its own qcow2 overlay there), or is the Pdisk volume the node's QEMU opens
/// over iSCSI (boot mode iscsi: the clone, with its ORIGIN's export as backing; nothing is copied to or from the node). QMP is the node's socket forwarded to the VM's local socket
/// (ssh -O forward -L), so every QMP use goes through the same <see cref="QmpSessions"/> gate as local VMs.
/// </summary>
internal sealed class SshQemuDriver(SshTransport ssh, ICommandRunner runner, INodeDirectory nodes, ComputeStore store, QemuImg qemuImg,
    Console.ConsoleLogs consoles, ComputeOptions compute, ILogger<SshQemuDriver> logger) : IHypervisorDriver
{
    static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    readonly QmpSessions _qmp = new();

    /// <summary>How far each VM's node-side serial log has been copied into its console log; unknown after a server restart (it resumes at the end).</summary>
    readonly System.Collections.Concurrent.ConcurrentDictionary<long, long> _consoleOffsets = new();

    // Fixed text; the offset, the path and the limit are positional arguments. Prints the log's size, then the new bytes.
    const string ConsoleScript = """f="$2"; [ -f "$f" ] || exit 0; size=$(stat -c %s "$f"); echo "$size"; [ "$1" = end ] && exit 0; tail -c +"$(( $1 + 1 ))" "$f" | head -c "$3" """;

    public string Name => "ssh";
    public bool UsesRealMedia => true;

    async Task<NodeInfo> NodeOfAsync(long instanceId, CancellationToken ct)
    {
        var row = await store.GetAsync(instanceId) ?? throw new HypervisorException($"instance {instanceId} does not exist");
        if (row.Host is null) throw new HypervisorException($"instance {instanceId} is not placed on a host");
        return await nodes.FindNodeAsync(row.Host, ct) ?? throw new HypervisorException($"host {row.Host} of instance {instanceId} is not an SSH node");
    }

    static string NodeDirectory(NodeInfo node, long instanceId) => $"{node.Root}/instances/{instanceId.ToString(CultureInfo.InvariantCulture)}";

    static string LocalSocket(VmRef vm) =>
        vm.Directory is null ? throw new HypervisorException($"instance {vm.InstanceId} has no VM directory") : QemuPaths.For(vm.Directory).QmpSocket;

    public async Task PrologAsync(VmSpec spec, CancellationToken ct)
    {
        var node = await NodeOfAsync(spec.InstanceId, ct);
        if (node.State != "OK") throw new HypervisorException($"node {node.Name} is in state {node.State}: {node.Reason}");
    }

    public async Task<VmStarted> StartAsync(VmSpec spec, CancellationToken ct)
    {
        var node = await NodeOfAsync(spec.InstanceId, ct);
        // Volumes (every disk after the boot disk) are opened by the node's QEMU over iSCSI, logging in with the node's own initiator name.
        if (spec.Disks.Skip(1).FirstOrDefault(d => !IsIscsi(d.Path)) is { } pathDisk)
            throw new HypervisorException($"the volume at {pathDisk.Path} is a path on this machine, which node {node.Name} cannot open; attach volumes shared over iSCSI to VMs on SSH nodes");
        // The boot disk is staged to the node (cache mode) unless it is a volume the node opens over iSCSI (iscsi mode).
        var bootOverIscsi = spec.Disks.Count > 0 && IsIscsi(spec.Disks[0].Path);
        var iscsiDisks = bootOverIscsi || spec.Disks.Skip(1).Any();
        if (iscsiDisks) RequireIscsi(node);
        var dir = NodeDirectory(node, spec.InstanceId);
        var paths = QemuPaths.For(dir, dir + "/serial.log");
        try
        {
            await RemoteAsync(node, ["mkdir", "-p", dir, node.Root + "/cache", Path.GetDirectoryName(paths.QmpSocket)!], ct);
            await RemoteAsync(node, ["rm", "-f", paths.QmpSocket, paths.EventSocket, paths.ConsoleSocket, paths.VncSocket, paths.PidFile, paths.SerialLog], ct);
            // A new VM's serial log is copied from its first byte; set before QEMU writes anything, so a monitor pass that
            // runs meanwhile cannot take the log's end as where to resume (that lost the boot lines on a loaded machine).
            _consoleOffsets[spec.InstanceId] = 0;
            var disks = new List<VmDisk>();
            for (var i = 0; i < spec.Disks.Count; i++) disks.Add(i > 0 ? spec.Disks[i] : bootOverIscsi ? spec.Disks[i] with { BackingInitiator = node.IscsiInitiator } : await StageDiskAsync(node, spec.Disks[i], dir, i, ct));
            string? iso = null;
            if (spec.ContextIso is not null)
            {
                iso = dir + "/context.iso";
                await ssh.CopyToAsync(node.Ssh, spec.ContextIso, iso, CommandTimeout, ct);
            }
            var args = QemuDriver.BuildArguments(spec with { Directory = dir, Disks = disks, ContextIso = iso }, node.Accelerator, paths);
            if (iscsiDisks) args = [.. args, "-iscsi", "initiator-name=" + node.IscsiInitiator];
            try
            {
                await ssh.RunAsync(node.Ssh, ["qemu-system-x86_64", .. args], CommandTimeout, ct);
            }
            catch (ToolFailedException e)
            {
                throw new HypervisorException($"QEMU did not start on node {node.Name}: {e.StandardError.Trim()}", e);
            }
            var pid = int.Parse((await RemoteAsync(node, ["cat", paths.PidFile], ct)).Trim(), CultureInfo.InvariantCulture);
            // The VNC server asks no password: only the node's SSH user (the server's forwarding) may connect to its socket.
            await RemoteAsync(node, ["chmod", "600", paths.VncSocket], ct);
            consoles.Prepare(spec.InstanceId);
            Directory.CreateDirectory(spec.Directory);
            await ssh.ForwardUnixSocketAsync(node.Ssh, QemuPaths.For(spec.Directory).QmpSocket, paths.QmpSocket, ct);
            logger.LogInformation("Instance {Id}: QEMU runs on node {Node} as pid {Pid} in {Directory}", spec.InstanceId, node.Name, pid, dir);
            return new VmStarted(pid, node.Accelerator);
        }
        catch (SshFailure e)
        {
            throw new HypervisorException($"node {node.Name}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The disk as the node opens it. A CoW clone (a qcow2 overlay) is copied to the node as it is (small, unless the VM
    /// wrote to it before a stop) and rebased, without reading data, onto the node's cached copy of the same image,
    /// which is copied once per image; any other disk is copied whole.
    /// </summary>
    async Task<VmDisk> StageDiskAsync(NodeInfo node, VmDisk disk, string dir, int index, CancellationToken ct)
    {
        var info = await qemuImg.InfoAsync(disk.Path, ct, disk.Format);
        var target = $"{dir}/disk{index.ToString(CultureInfo.InvariantCulture)}.{disk.Format}";
        await ssh.CopyToAsync(node.Ssh, disk.Path, target, TimeSpan.FromMinutes(30), ct);
        if (info.BackingFile is { } backing && disk.Format == "qcow2")
        {
            var backingPath = Path.IsPathRooted(backing) ? backing : Path.Combine(Path.GetDirectoryName(disk.Path)!, backing);
            var backingFormat = info.BackingFormat ?? (await qemuImg.InfoAsync(backingPath, ct)).Format;
            var cached = $"{node.Root}/cache/{CacheName(backingPath)}";
            var present = await ssh.RunAsync(node.Ssh, ["test", "-f", cached], CommandTimeout, ct, acceptedExitCodes: [1]);
            if (present.ExitCode != 0)
            {
                var partial = cached + ".part";
                await ssh.CopyToAsync(node.Ssh, backingPath, partial, TimeSpan.FromMinutes(30), ct);
                await RemoteAsync(node, ["mv", "-f", partial, cached], ct);
                logger.LogInformation("Node {Node}: cached {Image} as {Cached}", node.Name, backingPath, cached);
            }
            await RemoteAsync(node, ["qemu-img", "rebase", "-u", "-f", "qcow2", "-F", backingFormat, "-b", cached, target], ct);
        }
        return disk with { Path = target };
    }

    /// <summary>
    /// After the VM stopped: its boot disk comes back from the node into the instance's clone, rebased onto the clone's own
    /// backing image, so a start on any host, save-as-image and the clone's lifecycle see what the guest wrote.
    /// </summary>
    async Task CopyBootDiskBackAsync(NodeInfo node, long instanceId, CancellationToken ct)
    {
        var row = await store.GetAsync(instanceId);
        // A boot disk the node opened over iSCSI was written in place: nothing to bring back.
        if (row?.BootDisk is not { } boot || IsIscsi(boot.Path) || !File.Exists(boot.Path)) return;
        var info = await qemuImg.InfoAsync(boot.Path, ct, boot.Format);
        var incoming = boot.Path + ".from-node";
        await ssh.CopyFromAsync(node.Ssh, $"{NodeDirectory(node, instanceId)}/disk0.{boot.Format}", incoming, TimeSpan.FromMinutes(30), ct);
        if (info.BackingFile is { } backing && boot.Format == "qcow2")
            await runner.RunAsync(new ToolCommand(QemuImg.Tool, ["rebase", "-u", "-f", "qcow2", "-F", info.BackingFormat ?? "qcow2", "-b", backing, incoming]), ct);
        File.Move(incoming, boot.Path, overwrite: true);
    }

    /// <summary>The cache name of an image: its file name and size, so a changed image is a new entry (plain characters only).</summary>
    static string CacheName(string path)
    {
        var name = Regex.Replace(Path.GetFileName(path), "[^A-Za-z0-9._-]", "_");
        return $"{new FileInfo(path).Length.ToString(CultureInfo.InvariantCulture)}-{name}";
    }

    public async Task<VmPowerState> QueryAsync(VmRef vm, CancellationToken ct)
    {
        var node = await NodeOfAsync(vm.InstanceId, ct);
        if (node.State != "OK" && node.MissedProbes > 0)
            throw new VmStateUnknownException($"node {node.Name} is in ERROR ({node.Reason}); the VM is re-attached if it still runs when the node answers again");
        // The console comes back on every pass, whether or not QMP answers this time (it does not need QMP).
        await CopyConsoleAsync(node, vm.InstanceId, ct);
        try
        {
            var status = await QmpAsync(node, vm, "query-status", null, ct);
            if (status?["status"]?.GetValue<string>() == "guest-panicked") return VmPowerState.Panicked;
            return status?["running"]?.GetValue<bool>() == true ? VmPowerState.Running : VmPowerState.Paused;
        }
        catch (QmpTimeoutException)
        {
            return VmPowerState.Unresponsive;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or HypervisorException)
        {
            try { return await IsRunningOnNodeAsync(node, vm, ct) ? VmPowerState.Running : VmPowerState.Off; }
            catch (HypervisorException unreachable) when (unreachable.InnerException is SshFailure)
            {
                throw new VmStateUnknownException($"node {node.Name} does not answer ({unreachable.InnerException.Message})", unreachable, hostDown: false);
            }
        }
    }

    /// <summary>
    /// Counters of a VM on a node: CPU time and RSS from the node's /proc (its QEMU found by pidfile, read in one SSH
    /// command), block I/O from QMP query-blockstats through the forwarded socket and the VM's QMP gate. User-mode NICs
    /// keep no counters (null), as on this machine. Null when the node does not answer or the VM is gone.
    /// </summary>
    public async Task<Contracts.InstanceCounters?> StatsAsync(VmRef vm, VmStatsRequest request, CancellationToken ct)
    {
        NodeInfo node;
        try { node = await NodeOfAsync(vm.InstanceId, ct); }
        catch (HypervisorException) { return null; }
        if (node.State != "OK") return null;
        var pidFile = QemuPaths.For(NodeDirectory(node, vm.InstanceId)).PidFile;
        string output;
        try
        {
            // Fixed text; the pidfile is a positional argument. Prints /proc/<pid>/stat, a separator line, then /proc/<pid>/status.
            output = await RemoteAsync(node, ["sh", "-c", "p=$(cat \"$1\") || exit 0; cat /proc/$p/stat && echo --- && cat /proc/$p/status", "stats", pidFile], ct);
        }
        catch (Exception e) when (e is HypervisorException or SshFailure or ToolFailedException or ToolTimeoutException) { return null; }
        var parts = output.Split("\n---\n", 2);
        if (parts.Length != 2) return null;
        double cpu;
        try { cpu = QemuDriver.ParseCpuSeconds(parts[0].Trim()); }
        catch (Exception e) when (e is FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException) { return null; }
        var rss = QemuDriver.ParseRssBytes(parts[1]);
        QemuDriver.BlockTotals blocks;
        try { blocks = QemuDriver.BlockTotals.Of(await QmpAsync(node, vm, "query-blockstats", null, ct)); }
        catch (HypervisorException) { return new Contracts.InstanceCounters(cpu, rss, null, null, null, null, null, null, Simulated: false); }
        (long? Balloon, long? Total, long? Available) memory;
        try { memory = await QemuDriver.GuestMemoryAsync((command, arguments) => QmpAsync(node, vm, command, arguments, ct)); }
        catch (HypervisorException) { memory = (null, null, null); }
        return new Contracts.InstanceCounters(cpu, rss, blocks.ReadBytes, blocks.WriteBytes, blocks.ReadOps, blocks.WriteOps, null, null, Simulated: false)
        {
            BalloonBytes = memory.Balloon, GuestMemoryTotalBytes = memory.Total, GuestMemoryAvailableBytes = memory.Available,
        };
    }

    /// <summary>Runs a QMP command through the forwarded socket; when the forwarding is gone (a new control master after a node blip), it is made again once.</summary>
    async Task<JsonNode?> QmpAsync(NodeInfo node, VmRef vm, string command, JsonObject? arguments, CancellationToken ct)
    {
        try
        {
            return await _qmp.ExecuteAsync(LocalSocket(vm), command, arguments, ct);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException || e is HypervisorException and not QmpTimeoutException and not QmpCommandException)
        {
            logger.LogInformation("Instance {Id}: re-forwarding QMP from node {Node} ({Error})", vm.InstanceId, node.Name, e.Message);
            await ForwardAsync(node, vm, ct);
            return await _qmp.ExecuteAsync(LocalSocket(vm), command, arguments, ct);
        }
    }

    async Task ForwardAsync(NodeInfo node, VmRef vm, CancellationToken ct)
    {
        try
        {
            var remote = QemuPaths.For(NodeDirectory(node, vm.InstanceId)).QmpSocket;
            Directory.CreateDirectory(vm.Directory!);
            await ssh.ForwardUnixSocketAsync(node.Ssh, LocalSocket(vm), remote, ct);
        }
        catch (Exception e) when (e is SshFailure or ToolFailedException or ToolTimeoutException)
        {
            throw new HypervisorException($"node {node.Name}: {e.Message}", e);
        }
    }

    /// <summary>Whether this instance's QEMU (its pidfile under the node directory) runs on the node.</summary>
    async Task<bool> IsRunningOnNodeAsync(NodeInfo node, VmRef vm, CancellationToken ct)
    {
        try
        {
            var found = await ssh.RunAsync(node.Ssh, ["pgrep", "-f", "--", PidFilePattern(node, vm.InstanceId)], CommandTimeout, ct, acceptedExitCodes: [1]);
            return found.ExitCode == 0;
        }
        catch (Exception e) when (e is SshFailure or ToolFailedException or ToolTimeoutException)
        {
            throw new HypervisorException($"node {node.Name} does not answer: {e.Message}", e);
        }
    }

    static string PidFilePattern(NodeInfo node, long instanceId) => "-pidfile " + Regex.Escape(QemuPaths.For(NodeDirectory(node, instanceId)).PidFile) + "( |$)";

    /// <summary>The serial console comes back over SSH: what the node's serial log gained since the last copy is appended to the console log.</summary>
    async Task CopyConsoleAsync(NodeInfo node, long instanceId, CancellationToken ct)
    {
        var known = _consoleOffsets.TryGetValue(instanceId, out var offset);
        var log = $"{NodeDirectory(node, instanceId)}/serial.log";
        var max = (compute.ConsoleLogMaxKiB * 1024L).ToString(CultureInfo.InvariantCulture);
        try
        {
            var result = await ssh.RunAsync(node.Ssh, ["sh", "-c", ConsoleScript, "sh", known ? offset.ToString(CultureInfo.InvariantCulture) : "end", log, max], CommandTimeout, ct);
            var output = result.StandardOutput;
            var newline = output.IndexOf('\n', StringComparison.Ordinal);
            logger.LogDebug("Instance {Id}: console copy from node {Node} at offset {Offset}: exit {Exit} in {Ms} ms, {Bytes} bytes out, stderr '{Stderr}'",
                instanceId, node.Name, known ? offset : -1, result.ExitCode, (long)result.Duration.TotalMilliseconds, output.Length, result.StandardError.Trim());
            if (newline < 0 || !long.TryParse(output[..newline], NumberStyles.Integer, CultureInfo.InvariantCulture, out var size)) return;
            if (!known) { _consoleOffsets.TryAdd(instanceId, size); return; }
            var text = output[(newline + 1)..];
            if (text.Length == 0) return;
            consoles.Append(instanceId, text);
            _consoleOffsets[instanceId] = Math.Min(size, offset + System.Text.Encoding.UTF8.GetByteCount(text));
            consoles.Bound(instanceId);
        }
        catch (Exception e) when (e is SshFailure or ToolFailedException or ToolTimeoutException)
        {
            logger.LogDebug("Instance {Id}: copying the console from node {Node} failed: {Error}", instanceId, node.Name, e.Message);
        }
    }

    public async Task ShutdownAsync(VmRef vm, TimeSpan timeout, CancellationToken ct)
    {
        var node = await NodeOfAsync(vm.InstanceId, ct);
        // A zero timeout is a forced power-off: no ACPI request, the process is killed below.
        if (timeout > TimeSpan.Zero)
        {
            try { await QmpAsync(node, vm, "system_powerdown", null, ct); }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or HypervisorException or IOException)
            {
                logger.LogWarning("Instance {Id}: ACPI power-down request on node {Node} failed ({Error}); killing it", vm.InstanceId, node.Name, e.Message);
            }
        }
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!await IsRunningOnNodeAsync(node, vm, ct)) break;
            await Task.Delay(500, ct);
        }
        await KillProcessAsync(node, vm, ct);
        try { await CopyBootDiskBackAsync(node, vm.InstanceId, ct); }
        catch (SshFailure e) { throw new HypervisorException($"node {node.Name}: the boot disk could not be copied back: {e.Message}", e); }
        await KillAsync(vm, ct);
    }

    async Task KillProcessAsync(NodeInfo node, VmRef vm, CancellationToken ct)
    {
        try
        {
            await ssh.RunAsync(node.Ssh, ["pkill", "-KILL", "-f", "--", PidFilePattern(node, vm.InstanceId)], CommandTimeout, ct, acceptedExitCodes: [1]);
        }
        catch (SshFailure e)
        {
            throw new HypervisorException($"node {node.Name} does not answer, so instance {vm.InstanceId} could not be stopped there: {e.Message}", e);
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (await IsRunningOnNodeAsync(node, vm, ct))
        {
            if (DateTime.UtcNow > deadline) throw new HypervisorException($"QEMU of instance {vm.InstanceId} did not die on node {node.Name} after SIGKILL");
            await Task.Delay(100, ct);
        }
    }

    /// <summary>Kills the VM's QEMU on the node, removes its node directory and the QMP forwarding: nothing of it stays on the node.</summary>
    public async Task KillAsync(VmRef vm, CancellationToken ct)
    {
        var node = await NodeOfAsync(vm.InstanceId, ct);
        var dir = NodeDirectory(node, vm.InstanceId);
        var paths = QemuPaths.For(dir);
        await KillProcessAsync(node, vm, ct);
        // The VM's last words (a crash, a panic) are kept before its node directory goes.
        await CopyConsoleAsync(node, vm.InstanceId, ct);
        _consoleOffsets.TryRemove(vm.InstanceId, out _);
        try
        {
            await RemoteAsync(node, ["rm", "-rf", "--", dir, paths.QmpSocket, paths.EventSocket, paths.ConsoleSocket, paths.VncSocket], ct);
            if (vm.Directory is not null)
            {
                await ssh.CancelForwardAsync(node.Ssh, LocalSocket(vm), paths.QmpSocket, ct);
                await ssh.CancelForwardAsync(node.Ssh, QemuPaths.For(vm.Directory).VncSocket, paths.VncSocket, ct);
                await ssh.CancelForwardAsync(node.Ssh, QemuPaths.For(vm.Directory).ConsoleSocket, paths.ConsoleSocket, ct);
            }
        }
        catch (SshFailure e)
        {
            throw new HypervisorException($"node {node.Name} does not answer, so instance {vm.InstanceId} could not be cleaned up there: {e.Message}", e);
        }
    }

    public async Task PauseAsync(VmRef vm, CancellationToken ct) => await QmpAsync(await NodeOfAsync(vm.InstanceId, ct), vm, "stop", null, ct);
    public async Task ResumeAsync(VmRef vm, CancellationToken ct) => await QmpAsync(await NodeOfAsync(vm.InstanceId, ct), vm, "cont", null, ct);
    public async Task ResetAsync(VmRef vm, CancellationToken ct) => await QmpAsync(await NodeOfAsync(vm.InstanceId, ct), vm, "system_reset", null, ct);

    /// <summary>
    /// The VM's VNC socket on the node, forwarded (ssh -O forward -L, over the node's control master) to the VM's local VNC
    /// socket path, made on first use and again when a new control master lost it.
    /// </summary>
    public Task<Stream> OpenGraphicalConsoleAsync(VmRef vm, CancellationToken ct) =>
        OpenForwardedAsync(vm, paths => paths.VncSocket, $"the graphical console of instance {vm.InstanceId}", ct);

    /// <summary>The VM's serial port on the node, forwarded the same way as its screen.</summary>
    public Task<Stream> OpenSerialConsoleAsync(VmRef vm, CancellationToken ct) =>
        OpenForwardedAsync(vm, paths => paths.ConsoleSocket, $"the serial console of instance {vm.InstanceId}", ct);

    async Task<Stream> OpenForwardedAsync(VmRef vm, Func<QemuPaths, string> socketOf, string what, CancellationToken ct)
    {
        if (vm.Directory is null) throw new NoConsoleException($"instance {vm.InstanceId} has no VM directory, so {what} cannot be reached");
        var local = socketOf(QemuPaths.For(vm.Directory));
        if (File.Exists(local))
        {
            try { return await QemuDriver.ConnectUnixAsync(local, what, ct); }
            catch (NoConsoleException e) { logger.LogInformation("Instance {Id}: forwarding {What} again ({Error})", vm.InstanceId, what, e.Message); }
        }
        var node = await NodeOfAsync(vm.InstanceId, ct);
        if (node.State != "OK") throw new NoConsoleException($"node {node.Name} is in state {node.State} ({node.Reason}), so {what} cannot be reached; try again once the node answers");
        try
        {
            Directory.CreateDirectory(vm.Directory);
            var remote = socketOf(QemuPaths.For(NodeDirectory(node, vm.InstanceId)));
            // A forwarding the master still lists but whose local socket is gone would be taken as made: cancel it first.
            await ssh.CancelForwardAsync(node.Ssh, local, remote, ct);
            await ssh.ForwardUnixSocketAsync(node.Ssh, local, remote, ct);
        }
        catch (Exception e) when (e is SshFailure or ToolFailedException or ToolTimeoutException)
        {
            throw new NoConsoleException($"{what} could not be forwarded from node {node.Name}: {e.Message}", e);
        }
        return await QemuDriver.ConnectUnixAsync(local, what, ct);
    }

    static bool IsIscsi(string path) => path.StartsWith("iscsi://", StringComparison.Ordinal);

    /// <summary>A node opens volumes with QEMU's own iSCSI initiator, under the node's own initiator name (which Pdisk's ACL names).</summary>
    static void RequireIscsi(NodeInfo node)
    {
        if (!node.IscsiDriver)
            throw new HypervisorException($"QEMU on node {node.Name} has no iSCSI block driver, so it cannot open volumes; install the Debian package qemu-block-extra on the node and probe it again");
        if (node.IscsiInitiator is not { Length: > 0 })
            throw new HypervisorException($"node {node.Name} has no iSCSI initiator name recorded; remove the host and add it again");
    }

    /// <summary>
    /// Hot-plugs a volume into a VM on a node: blockdev-add with QEMU's iscsi driver (logging in as the node's initiator to
    /// the front-end's target) and device_add, through the forwarded QMP socket and the VM's QMP gate.
    /// </summary>
    public async Task AttachDiskAsync(VmRef vm, HotDisk disk, CancellationToken ct)
    {
        var node = await NodeOfAsync(vm.InstanceId, ct);
        if (disk.Blockdev["file"] is not JsonObject { } file || file["driver"]?.GetValue<string>() != "iscsi")
            throw new HypervisorException($"node {node.Name} cannot open a path on this machine; attach a volume shared over iSCSI to VMs on SSH nodes");
        RequireIscsi(node);
        var blockdev = (JsonObject)disk.Blockdev.DeepClone();
        blockdev["file"]!["initiator-name"] = node.IscsiInitiator;
        await QmpAsync(node, vm, "query-status", null, ct);
        await QemuDriver.AttachOverQmpAsync(_qmp, LocalSocket(vm), disk with { Blockdev = blockdev }, ct);
        logger.LogInformation("Instance {Id}: volume {Device} attached on node {Node} over iSCSI as initiator {Initiator}", vm.InstanceId, disk.DeviceId, node.Name, node.IscsiInitiator);
    }

    public async Task DetachDiskAsync(VmRef vm, string deviceId, CancellationToken ct)
    {
        var node = await NodeOfAsync(vm.InstanceId, ct);
        if (!await IsRunningOnNodeAsync(node, vm, ct)) return;
        // Made again first when the forwarding is gone (a new control master after a node blip).
        await QmpAsync(node, vm, "query-status", null, ct);
        await QemuDriver.DetachOverQmpAsync(_qmp, LocalSocket(vm), deviceId, ct);
    }

    /// <summary>VMs on nodes are re-attached through their instance rows (QueryAsync); orphans on nodes are not hunted yet.</summary>
    public Task<IReadOnlyList<VmRef>> ListRunningAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<VmRef>>([]);

    /// <summary>
    /// On every node that answers: the VMs it runs (found by their node-side pidfile) that no live instance of this server
    /// owns on that node are killed and their node directory removed. Such a VM is what a node that was evacuated while
    /// it was dead still runs when it answers again (fenced off its disks, but holding memory, CPU and its addresses).
    /// <paramref name="ownedHere"/> says whether an instance id is live on the node of that name. Returns what was killed.
    /// </summary>
    public async Task<IReadOnlyList<(string Node, long InstanceId)>> SweepNodesAsync(Func<long, string, Task<bool>> ownedHere, CancellationToken ct)
    {
        var killed = new List<(string, long)>();
        foreach (var node in await nodes.ListNodesAsync(ct))
        {
            if (node.State != "OK") continue;
            var instances = $"{node.Root}/instances/";
            string listing;
            try
            {
                var found = await ssh.RunAsync(node.Ssh, ["pgrep", "-a", "-f", "--", "-pidfile " + Regex.Escape(instances) + "[0-9]+/"], CommandTimeout, ct, acceptedExitCodes: [1]);
                listing = found.StandardOutput;
            }
            catch (Exception e) when (e is SshFailure or ToolFailedException or ToolTimeoutException)
            {
                logger.LogDebug("Node {Node}: its VMs could not be listed ({Error}); the next sweep tries again", node.Name, e.Message);
                continue;
            }
            var ids = Regex.Matches(listing, "-pidfile " + Regex.Escape(instances) + "([0-9]+)/").Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Distinct();
            foreach (var id in ids)
            {
                if (await ownedHere(id, node.Name)) continue;
                logger.LogWarning("Node {Node}: killing the VM of instance {Id}, which no live instance owns there (left by an evacuation while the node was dead, or by a failed clean-up)", node.Name, id);
                try
                {
                    await ssh.RunAsync(node.Ssh, ["pkill", "-KILL", "-f", "--", PidFilePattern(node, id)], CommandTimeout, ct, acceptedExitCodes: [1]);
                    await RemoteAsync(node, ["rm", "-rf", "--", NodeDirectory(node, id)], ct);
                    killed.Add((node.Name, id));
                }
                catch (Exception e) when (e is SshFailure or ToolFailedException or ToolTimeoutException)
                {
                    logger.LogWarning("Node {Node}: the VM of instance {Id} could not be killed ({Error}); the next sweep tries again", node.Name, id, e.Message);
                }
            }
        }
        return killed;
    }

    async Task<string> RemoteAsync(NodeInfo node, IReadOnlyList<string> command, CancellationToken ct)
    {
        try
        {
            return (await ssh.RunAsync(node.Ssh, command, CommandTimeout, ct)).StandardOutput;
        }
        catch (ToolFailedException e)
        {
            throw new HypervisorException($"{command[0]} failed on node {node.Name}: {e.StandardError.Trim()}", e);
        }
    }
}
