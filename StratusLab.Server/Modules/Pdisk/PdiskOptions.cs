using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>The Pdisk section: the volume backend, its sharing, and the volume and transfer limits.</summary>
internal sealed class PdiskOptions : IValidatedOptions
{
    public string Backend { get; set; } = "file";
    public string VolumesDir { get; set; } = "";
    public string FileFormat { get; set; } = "raw";
    public string VolumeGroup { get; set; } = "";
    public string ThinPool { get; set; } = "";
    public string Sharing { get; set; } = "local";
    public PdiskIscsiOptions Iscsi { get; set; } = new();
    public int QuarantineMinutes { get; set; } = 15;

    /// <summary>How long a clone made for an instance may wait for its mount before the reconciler takes it for an orphan.</summary>
    public int UnmountedCloneMinutes { get; set; } = 10;
    public long MaxVolumeGiB { get; set; } = 1024;
    public long MaxUploadBytes { get; set; } = 100L << 30;
    public long MaxUrlDownloadBytes { get; set; } = 100L << 30;
    public int UrlDownloadTimeoutMinutes { get; set; } = 60;

    const string LvmName = "^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,126}$";

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.OneOf("Pdisk:Backend", Backend, "file", "lvm");
        problems.OneOf("Pdisk:FileFormat", FileFormat, "raw", "qcow2");
        problems.OneOf("Pdisk:Sharing", Sharing, "local", "iscsi");
        if (VolumesDir.Length > 0 && !Path.IsPathFullyQualified(VolumesDir))
            problems.Add($"Pdisk:VolumesDir = '{VolumesDir}' is not accepted; accepted values: empty (<data-dir>/volumes), or an absolute directory path.");
        if (Backend == "lvm" && VolumeGroup.Length == 0)
            problems.Add("Pdisk:VolumeGroup is empty but Pdisk:Backend is lvm; accepted values: the name of an existing LVM volume group (see 'vgs').");
        problems.EachMatches("Pdisk:VolumeGroup", VolumeGroup.Length == 0 ? [] : [VolumeGroup], LvmName, "an LVM volume group name (letters, digits, '_', '.', '+', '-')");
        problems.EachMatches("Pdisk:ThinPool", ThinPool.Length == 0 ? [] : [ThinPool], LvmName, "empty (classic LVs), or a thin pool LV name in Pdisk:VolumeGroup");
        if (!System.Net.IPAddress.TryParse(Iscsi.PortalAddress, out _))
            problems.Add($"Pdisk:Iscsi:PortalAddress = '{Iscsi.PortalAddress}' is not accepted; accepted values: an IP address such as 127.0.0.1.");
        problems.Range("Pdisk:Iscsi:Port", Iscsi.Port, 1, 65535);
        problems.EachMatches("Pdisk:Iscsi:Initiators", Iscsi.Initiators, @"^(ALL|[0-9.]+(/[0-9]{1,2})?|[0-9A-Fa-f:]+)$", "initiator IP addresses (or networks like 10.0.0.0/24, or ALL)");
        foreach (var address in Iscsi.ListenAddresses)
            if (!System.Net.IPAddress.TryParse(address, out var ip) || ip.Equals(System.Net.IPAddress.Any) || ip.Equals(System.Net.IPAddress.IPv6Any))
                problems.Add($"Pdisk:Iscsi:ListenAddresses has '{address}', which is not accepted; accepted values: IP addresses of this machine that SSH nodes reach it at " +
                    "(such as 192.168.1.10), one per entry; not 0.0.0.0 or ::, so tgtd never listens where no node is meant to reach it.");
        problems.Range("Pdisk:Iscsi:ControlPort", Iscsi.ControlPort, 0, 65535);
        problems.Range("Pdisk:Iscsi:HealthCheckSeconds", Iscsi.HealthCheckSeconds, 1, 86_400);
        problems.Range("Pdisk:UnmountedCloneMinutes", UnmountedCloneMinutes, 0, 10_080);
        problems.Range("Pdisk:QuarantineMinutes", QuarantineMinutes, 0, 525_600);
        problems.Range("Pdisk:MaxVolumeGiB", MaxVolumeGiB, 1, 1L << 20);
        problems.Range("Pdisk:MaxUploadBytes", MaxUploadBytes, 1L << 20, 1L << 50);
        problems.Range("Pdisk:MaxUrlDownloadBytes", MaxUrlDownloadBytes, 1L << 20, 1L << 50);
        problems.Range("Pdisk:UrlDownloadTimeoutMinutes", UrlDownloadTimeoutMinutes, 1, 10_080);
        return problems;
    }
}

/// <summary>Pdisk:Iscsi: the tgtd portal volumes are shared through when Pdisk:Sharing is iscsi.</summary>
internal sealed class PdiskIscsiOptions
{
    public string PortalAddress { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 3260;
    public List<string> Initiators { get; set; } = [];

    /// <summary>
    /// Addresses tgtd listens on besides <see cref="PortalAddress"/>: where SSH nodes reach this machine (empty by default:
    /// loopback only, and volumes cannot be used on nodes). Each becomes a tgtd portal, added to a running tgtd too.
    /// </summary>
    public List<string> ListenAddresses { get; set; } = [];
    public bool StartTgtd { get; set; } = true;

    /// <summary>tgtd's management port (tgtd/tgtadm -C); 0 is tgt's default channel.</summary>
    public int ControlPort { get; set; }

    /// <summary>How often the server checks that tgtd runs and every iSCSI volume is exported (restarting and re-exporting when not).</summary>
    public int HealthCheckSeconds { get; set; } = 30;
}
