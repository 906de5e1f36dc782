using System.Globalization;

namespace StratusLab.Server.Modules.Pdisk.Sharing;

/// <summary>One logical unit of a tgt target.</summary>
internal sealed record TgtLun(int Lun, string Type, string? BackingPath, bool ReadOnly, string Size);

/// <summary>One target as <c>tgtadm --op show --mode target</c> prints it.</summary>
internal sealed record TgtTarget(int Tid, string Name, IReadOnlyList<TgtLun> Luns, IReadOnlyList<string> Acl, IReadOnlyList<string> ConnectedAddresses)
{
    /// <summary>The backing file or device of the data LUN (LUN 0 is tgt's controller).</summary>
    public string? BackingPath => Luns.FirstOrDefault(l => l.Lun != 0 && l.BackingPath is not null)?.BackingPath;
}

/// <summary>One iSCSI connection to a target, as <c>tgtadm --op show --mode conn</c> prints it.</summary>
internal sealed record TgtConnection(int Session, int Connection, string Initiator, string? Address);

/// <summary>tgtadm argument arrays and output parsing (pure, table-tested).</summary>
internal static class TgtAdm
{
    public const string Tool = "tgtadm";
    public const string Daemon = "tgtd";
    public const string IqnPrefix = "iqn.2011-01.eu.stratuslab:";
    public const int DataLun = 1;

    /// <summary>
    /// Negotiation limits raised from tgt's defaults (8 KiB data segments, 64 KiB first burst, solicited writes
    /// only), which cap loopback throughput far below the disk's: large segments and unsolicited data let
    /// QEMU's initiator stream large writes.
    /// </summary>
    public static readonly IReadOnlyList<(string Name, string Value)> ThroughputParameters =
    [
        ("MaxRecvDataSegmentLength", "4194304"),
        ("MaxXmitDataSegmentLength", "4194304"),
        ("FirstBurstLength", "4194304"),
        ("MaxBurstLength", "16776192"),
        ("InitialR2T", "No"),
        ("ImmediateData", "Yes"),
    ];

    public static string IqnOf(Guid uuid) => IqnPrefix + uuid.ToString("D");

    /// <summary>The volume uuid a StratusLab target name carries, else null.</summary>
    public static Guid? UuidOf(string targetName) =>
        targetName.StartsWith(IqnPrefix, StringComparison.Ordinal) && Guid.TryParseExact(targetName[IqnPrefix.Length..], "D", out var uuid) ? uuid : null;

    /// <summary>The transport URL of a volume's LUN through QEMU's own initiator.</summary>
    public static string Turl(string portalAddress, int port, Guid uuid)
    {
        var host = portalAddress.Contains(':') && !portalAddress.StartsWith('[') ? $"[{portalAddress}]" : portalAddress;
        return $"iscsi://{host}:{port.ToString(CultureInfo.InvariantCulture)}/{IqnOf(uuid)}/{DataLun.ToString(CultureInfo.InvariantCulture)}";
    }

    static string Tid(int tid) => tid.ToString(CultureInfo.InvariantCulture);

    /// <summary>The management channel of a tgtd started with the same control port (tgtd and tgtadm both take it).</summary>
    public static IReadOnlyList<string> ControlPort(int port) => ["--control-port", port.ToString(CultureInfo.InvariantCulture)];

    public static IReadOnlyList<string> ShowTargets() => ["--lld", "iscsi", "--op", "show", "--mode", "target"];
    public static IReadOnlyList<string> ShowSystem() => ["--lld", "iscsi", "--op", "show", "--mode", "system"];
    public static IReadOnlyList<string> NewTarget(int tid, string iqn) => ["--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", Tid(tid), "-T", iqn];

    public static IReadOnlyList<string> NewLun(int tid, string backingPath) =>
        ["--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", Tid(tid), "--lun", DataLun.ToString(CultureInfo.InvariantCulture), "-b", backingPath];

    public static IReadOnlyList<string> SetReadOnly(int tid, bool readOnly) =>
        ["--lld", "iscsi", "--op", "update", "--mode", "logicalunit", "--tid", Tid(tid), "--lun", DataLun.ToString(CultureInfo.InvariantCulture), "--params", readOnly ? "readonly=1" : "readonly=0"];

    public static IReadOnlyList<string> SetParameter(int tid, string name, string value) =>
        ["--lld", "iscsi", "--op", "update", "--mode", "target", "--tid", Tid(tid), "-n", name, "-v", value];

    public static IReadOnlyList<string> Bind(int tid, string initiatorAddress) => ["--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", Tid(tid), "-I", initiatorAddress];
    public static IReadOnlyList<string> Unbind(int tid, string initiatorAddress) => ["--lld", "iscsi", "--op", "unbind", "--mode", "target", "--tid", Tid(tid), "-I", initiatorAddress];

    /// <summary>An ACL entry naming one initiator (tgt lets a login in when its address or its initiator name is bound).</summary>
    public static IReadOnlyList<string> BindInitiatorName(int tid, string initiatorName) => ["--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", Tid(tid), "--initiator-name", initiatorName];
    public static IReadOnlyList<string> UnbindInitiatorName(int tid, string initiatorName) => ["--lld", "iscsi", "--op", "unbind", "--mode", "target", "--tid", Tid(tid), "--initiator-name", initiatorName];

    /// <summary>The connections (session, connection, initiator name, address) logged in to a target.</summary>
    public static IReadOnlyList<string> ShowConnections(int tid) => ["--lld", "iscsi", "--op", "show", "--mode", "conn", "--tid", Tid(tid)];

    /// <summary>Closes one connection (tgtadm's man page: closing a connection can lose the initiator's unwritten data, which is what fencing wants).</summary>
    public static IReadOnlyList<string> DeleteConnection(int tid, int session, int connection) =>
        ["--lld", "iscsi", "--op", "delete", "--mode", "conn", "--tid", Tid(tid), "--sid", session.ToString(CultureInfo.InvariantCulture), "--cid", connection.ToString(CultureInfo.InvariantCulture)];

    /// <summary>Parses <c>tgtadm --op show --mode conn</c> ("Session: 2", "Connection: 0", "Initiator: iqn...", "IP Address: 127.0.0.1").</summary>
    public static IReadOnlyList<TgtConnection> ParseConnections(string text)
    {
        var list = new List<TgtConnection>();
        int? session = null, connection = null;
        string? initiator = null, address = null;
        void Flush()
        {
            if (session is { } s && connection is { } c && initiator is { } i) list.Add(new TgtConnection(s, c, i, address));
            connection = null;
            initiator = address = null;
        }
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (Value(line, "Session:") is { } sid)
            {
                Flush();
                session = int.Parse(sid, CultureInfo.InvariantCulture);
            }
            else if (Value(line, "Connection:") is { } cid)
            {
                Flush();
                connection = int.Parse(cid, CultureInfo.InvariantCulture);
            }
            else if (Value(line, "Initiator:") is { } name) initiator = name.Split(' ')[0];
            else if (Value(line, "IP Address:") is { } ip) address = ip;
        }
        Flush();
        return list;
    }

    public static IReadOnlyList<string> ShowPortals() => ["--lld", "iscsi", "--op", "show", "--mode", "portal"];

    /// <summary>One more address:port tgtd listens on (a running tgtd takes it without a restart).</summary>
    public static IReadOnlyList<string> NewPortal(string address, int port) => ["--lld", "iscsi", "--op", "new", "--mode", "portal", "--param", "portal=" + Portal(address, port)];

    public static string Portal(string address, int port) =>
        (address.Contains(':') ? $"[{address}]" : address) + ":" + port.ToString(CultureInfo.InvariantCulture);

    /// <summary>The address:port pairs of <c>tgtadm --op show --mode portal</c> ("Portal: 127.0.0.1:3260,1").</summary>
    public static IReadOnlyList<string> ParsePortals(string text) =>
        text.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("Portal:", StringComparison.Ordinal))
            .Select(l => l["Portal:".Length..].Trim()).Select(p => p.LastIndexOf(',') is var comma and > 0 ? p[..comma] : p).ToList();

    /// <summary>Whether an ACL entry is an initiator name rather than an address or network.</summary>
    public static bool IsInitiatorName(string aclEntry) => aclEntry.StartsWith("iqn.", StringComparison.Ordinal) || aclEntry.StartsWith("eui.", StringComparison.Ordinal);

    /// <summary>Removes a target even while initiators are connected (they get I/O errors, as when a disk is pulled).</summary>
    public static IReadOnlyList<string> DeleteTarget(int tid) => ["--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", Tid(tid), "--force"];

    /// <summary>tgtd bound to one portal address (a one-box cloud listens on loopback only).</summary>
    public static IReadOnlyList<string> StartDaemon(string portalAddress, int port) =>
        ["--iscsi", $"portal={portalAddress}:{port.ToString(CultureInfo.InvariantCulture)}"];

    /// <summary>tgtadm's words for "the daemon is not there" (its socket is missing or refuses).</summary>
    public static bool IsDaemonDown(string stderr) =>
        stderr.Contains("not connected", StringComparison.OrdinalIgnoreCase) ||
        stderr.Contains("can't connect", StringComparison.OrdinalIgnoreCase) ||
        stderr.Contains("Connection refused", StringComparison.OrdinalIgnoreCase) ||
        stderr.Contains("No such file", StringComparison.OrdinalIgnoreCase);

    public static bool IsAlreadyExists(string stderr) => stderr.Contains("already exists", StringComparison.OrdinalIgnoreCase);
    public static bool IsNotFound(string stderr) => stderr.Contains("can't find", StringComparison.OrdinalIgnoreCase);

    /// <summary>The lowest target id not in use (tgt ids start at 1).</summary>
    public static int LowestFreeTid(IEnumerable<TgtTarget> targets, IEnumerable<int>? alsoTaken = null)
    {
        var taken = targets.Select(t => t.Tid).Concat(alsoTaken ?? []).ToHashSet();
        var tid = 1;
        while (taken.Contains(tid)) tid++;
        return tid;
    }

    /// <summary>Parses <c>tgtadm --lld iscsi --op show --mode target</c>.</summary>
    public static IReadOnlyList<TgtTarget> ParseTargets(string text)
    {
        var targets = new List<TgtTarget>();
        int? tid = null;
        string name = "";
        var luns = new List<TgtLun>();
        var acl = new List<string>();
        var connected = new List<string>();
        string section = "";
        int? lun = null;
        string lunType = "", lunSize = "";
        string? backing = null;
        var readOnly = false;

        void FlushLun()
        {
            if (lun is { } n) luns.Add(new TgtLun(n, lunType, backing, readOnly, lunSize));
            lun = null;
            lunType = lunSize = "";
            backing = null;
            readOnly = false;
        }

        void FlushTarget()
        {
            FlushLun();
            if (tid is { } t) targets.Add(new TgtTarget(t, name, luns.ToList(), acl.ToList(), connected.ToList()));
            tid = null;
            luns.Clear();
            acl.Clear();
            connected.Clear();
            section = "";
        }

        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            if (line.StartsWith("Target ", StringComparison.Ordinal))
            {
                FlushTarget();
                var colon = line.IndexOf(':');
                if (colon < 0 || !int.TryParse(line[7..colon], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                    throw new FormatException($"tgtadm: cannot read the target line '{line}'");
                tid = id;
                name = line[(colon + 1)..].Trim();
                continue;
            }
            if (tid is null) continue;
            var trimmed = line.Trim();
            var indent = line.Length - line.TrimStart().Length;
            if (indent == 4 && trimmed.EndsWith(':'))
            {
                FlushLun();
                section = trimmed.TrimEnd(':');
                continue;
            }
            switch (section)
            {
                case "LUN information":
                    if (trimmed.StartsWith("LUN:", StringComparison.Ordinal))
                    {
                        FlushLun();
                        lun = int.Parse(trimmed[4..].Trim(), CultureInfo.InvariantCulture);
                    }
                    else if (Value(trimmed, "Type:") is { } type) lunType = type;
                    else if (Value(trimmed, "Size:") is { } size) lunSize = size;
                    else if (Value(trimmed, "Readonly:") is { } ro) readOnly = ro.Equals("Yes", StringComparison.OrdinalIgnoreCase);
                    else if (Value(trimmed, "Backing store path:") is { } path) backing = path == "None" ? null : path;
                    break;
                case "ACL information":
                    acl.Add(trimmed);
                    break;
                case "I_T nexus information":
                    if (Value(trimmed, "IP Address:") is { } ip) connected.Add(ip);
                    break;
            }
        }
        FlushTarget();
        return targets;
    }

    static string? Value(string line, string key) => line.StartsWith(key, StringComparison.Ordinal) ? line[key.Length..].Trim() : null;
}
