using System.Globalization;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// Where a QEMU VM keeps its control socket, its event socket (a second QMP monitor that only listens), its serial port
/// socket (the interactive console), its VNC socket (the graphical console), its pidfile and its serial log (kept outside
/// the VM directory: it outlives the VM).
/// </summary>
internal sealed record QemuPaths(string QmpSocket, string PidFile, string SerialLog)
{
    // sun_path is 108 bytes; deep data dirs fall back to a short, unique path under /tmp.
    const int MaxSocketPath = 100;

    public string EventSocket { get; init; } = "";
    public string ConsoleSocket { get; init; } = "";
    public string VncSocket { get; init; } = "";

    public static QemuPaths For(string directory, string? serialLog = null) =>
        new(Socket(directory, "qmp"), Path.Combine(directory, "qemu.pid"), serialLog ?? Path.Combine(directory, "serial.log"))
        {
            EventSocket = Socket(directory, "events"),
            ConsoleSocket = Socket(directory, "console"),
            VncSocket = Socket(directory, "vnc"),
        };

    static string Socket(string directory, string name)
    {
        var socket = Path.Combine(directory, name + ".sock");
        if (socket.Length <= MaxSocketPath) return socket;
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(directory)))[..16];
        return Path.Combine(Path.GetTempPath(), "stratuslab-qmp", name == "qmp" ? hash + ".sock" : $"{hash}.{name}.sock");
    }
}

internal sealed partial class QemuDriver
{
    /// <summary>The process name marker that ties a QEMU process to its instance (used by reconciliation).</summary>
    public static string ProcessName(long instanceId) => "stratuslab-" + instanceId.ToString(CultureInfo.InvariantCulture);

    /// <summary>The MAC of a user-mode NIC: QEMU's locally administered 52:54 prefix, the NIC index, then the instance id.</summary>
    public static string MacFor(long instanceId, int nic) =>
        string.Create(CultureInfo.InvariantCulture, $"52:54:{nic & 0xff:x2}:{(instanceId >> 16) & 0xff:x2}:{(instanceId >> 8) & 0xff:x2}:{instanceId & 0xff:x2}");

    /// <summary>The full qemu-system-x86_64 argument array for one VM (pure: no I/O).</summary>
    public static IReadOnlyList<string> BuildArguments(VmSpec spec, string accelerator, QemuPaths paths)
    {
        var args = new List<string>
        {
            "-name", $"{ProcessName(spec.InstanceId)},process={ProcessName(spec.InstanceId)}",
            "-machine", "pc",
            "-accel", accelerator,
        };
        if (accelerator == "kvm") args.AddRange(["-cpu", "host"]);
        args.AddRange([
            "-smp", spec.Cpu.ToString(CultureInfo.InvariantCulture),
            "-m", spec.MemoryMiB.ToString(CultureInfo.InvariantCulture),
            "-nodefaults", "-no-user-config",
            // No window: the screen of a standard VGA card is served by QEMU's VNC server on a unix socket (no password;
            // the socket is made 0600 and only the server connects, proxying it to an authorized WebSocket), never on a TCP port.
            "-display", "none", "-vga", "std",
            "-vnc", $"unix:{Escape(paths.VncSocket)}",
            // The serial port is a socket for the interactive console, and QEMU logs all its output whether or not anyone is attached.
            "-chardev", $"socket,id=serial0,path={Escape(paths.ConsoleSocket)},server=on,wait=off,logfile={Escape(paths.SerialLog)},logappend=on",
            "-serial", "chardev:serial0",
            "-qmp", $"unix:{paths.QmpSocket},server=on,wait=off",
            // A second monitor only for events (GUEST_PANICKED): commands never wait behind it, nor it behind them.
            "-qmp", $"unix:{paths.EventSocket},server=on,wait=off",
            // A guest kernel panic reaches QEMU through pvpanic; the VM pauses so the server decides (and the console shows why).
            "-device", "pvpanic",
            "-action", "panic=pause",
            // The balloon is never inflated here; it is there for the guest's own memory statistics (query-balloon, qom-get guest-stats).
            "-device", $"virtio-balloon-pci,id=balloon0,guest-stats-polling-interval={BalloonStatsSeconds.ToString(CultureInfo.InvariantCulture)}",
            "-pidfile", paths.PidFile,
            "-daemonize",
            "-msg", "timestamp=on",
        ]);
        for (var i = 0; i < spec.Disks.Count; i++)
        {
            var disk = spec.Disks[i];
            var drive = $"file={Escape(disk.Path)},format={disk.Format},if=none,id=disk{i},cache=writeback,discard=unmap";
            if (disk.ReadOnly) drive += ",readonly=on";
            if (disk.BackingPath is { } backing)
            {
                // The qcow2 header names a path on the front-end: its backing is given as a node of its own (a reference
                // replaces the header's name), opened over iSCSI read-only.
                var iscsi = IscsiTarget.Parse(backing);
                args.AddRange(["-blockdev", $"driver=iscsi,node-name=disk{i}-backing-file,transport=tcp,portal={iscsi.Portal},target={iscsi.Target},lun={iscsi.Lun}{(disk.BackingInitiator is { } initiator ? ",initiator-name=" + initiator : "")},read-only=on",
                    "-blockdev", $"driver={disk.BackingFormat ?? "raw"},node-name=disk{i}-backing,file=disk{i}-backing-file,read-only=on"]);
                drive += $",backing=disk{i}-backing";
            }
            args.AddRange(["-drive", drive, "-device", $"virtio-blk-pci,drive=disk{i},id=vd{i}" + (i == 0 ? ",bootindex=0" : "")]);
        }
        if (spec.ContextIso is not null)
            args.AddRange(["-drive", $"file={Escape(spec.ContextIso)},format=raw,if=none,id=context,media=cdrom,readonly=on", "-device", "ide-cd,drive=context,id=cd0"]);
        for (var i = 0; i < spec.Nics.Count; i++)
        {
            var nic = spec.Nics[i];
            string netdev;
            if (nic.Tap is not null)
            {
                // The network driver made the tap and put it on the bridge; QEMU only opens it.
                netdev = $"tap,id=net{i},ifname={nic.Tap},script=no,downscript=no";
            }
            else
            {
                netdev = $"user,id=net{i}";
                if (nic.Cidr is not null) netdev += $",net={nic.Cidr}";
                if (nic.Host is not null) netdev += $",host={nic.Host}";
                if (nic.Dns is not null) netdev += $",dns={nic.Dns}";
                if (nic.GuestIp is not null) netdev += $",dhcpstart={nic.GuestIp}";
                foreach (var f in nic.Forwards)
                    netdev += string.Create(CultureInfo.InvariantCulture, $",hostfwd={f.Protocol}:{f.HostAddress}:{f.HostPort}-{nic.GuestIp}:{f.GuestPort}");
            }
            var device = $"virtio-net-pci,netdev=net{i},mac={nic.Mac}";
            if (nic.Mtu is { } mtu) device += string.Create(CultureInfo.InvariantCulture, $",host_mtu={mtu}");
            args.AddRange(["-netdev", netdev, "-device", device]);
        }
        args.AddRange(spec.RawArguments);
        return args;
    }

    // QEMU option values separate sub-options with ','; a literal comma is written twice.
    static string Escape(string value) => value.Replace(",", ",,");
}

/// <summary>An iSCSI LUN as QEMU's iscsi block driver takes it (portal host:port, target IQN, LUN), from an iscsi:// URL.</summary>
internal sealed record IscsiTarget(string Portal, string Target, int Lun)
{
    /// <summary>iscsi://host[:port]/iqn/lun (IPv6 hosts in brackets); FormatException otherwise (pure).</summary>
    public static IscsiTarget Parse(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "iscsi")
            throw new FormatException($"'{url}' is not an iscsi:// URL");
        var parts = uri.AbsolutePath.Trim('/').Split('/');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[0].Contains(',') || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var lun))
            throw new FormatException($"'{url}' is not iscsi://host[:port]/target/lun");
        var port = uri.Port > 0 ? uri.Port : 3260;
        return new IscsiTarget($"{uri.Host}:{port.ToString(CultureInfo.InvariantCulture)}", Uri.UnescapeDataString(parts[0]), lun);
    }
}
