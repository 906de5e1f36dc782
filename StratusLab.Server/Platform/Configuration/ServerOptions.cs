namespace StratusLab.Server.Platform.Configuration;

/// <summary>The validated server configuration, bound from config/stratuslab.json and its overrides.</summary>
public sealed class ServerOptions
{
    public string DataDir { get; set; } = "";
    public string Urls { get; set; } = "http://127.0.0.1:8440";
    public string PublicUrl { get; set; } = "";
    public StoreOptions Store { get; set; } = new();
    public HttpOptions Http { get; set; } = new();
    public IdentityOptions Identity { get; set; } = new();
    public TelemetryOptions Telemetry { get; set; } = new();
    public ComputeOptions Compute { get; set; } = new();
    public SchedulingOptions Scheduling { get; set; } = new();
    public ImagesOptions Images { get; set; } = new();
    public MarketplaceOptions Marketplace { get; set; } = new();
    public PolicyOptions Policy { get; set; } = new();
    public PdiskOptions Pdisk { get; set; } = new();
    public NetworkingOptions Networking { get; set; } = new();

    public string DatabasePath => Path.Combine(DataDir, "stratuslab.db");
    public string AdminTokenPath => Path.Combine(DataDir, "admin.token");
}

public sealed class StoreOptions
{
    public int BusyTimeoutMs { get; set; } = 10000;
}

public sealed class HttpOptions
{
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;
}

public sealed class IdentityOptions
{
    public int DefaultTokenLifetimeDays { get; set; }
    public int ExpiredTokenRetentionDays { get; set; } = 30;
    public QuotaOptions DefaultQuota { get; set; } = new();
}

public sealed class QuotaOptions
{
    public int Vms { get; set; } = 20;
    public int Cpus { get; set; } = 16;
    public long MemoryMiB { get; set; } = 32768;
    public long StorageGiB { get; set; } = 500;
}

public sealed class TelemetryOptions
{
    public string OtlpEndpoint { get; set; } = "";
}

public sealed class ImagesOptions
{
    public long MaxCacheMiB { get; set; } = 51200;
    public int MaxIdleHours { get; set; } = 168;
    public int RevalidateAfterMinutes { get; set; } = 60;
}

public sealed class SchedulingOptions
{
    public string Policy { get; set; } = "packing";
    public int PendingTimeoutSeconds { get; set; } = 300;
    public int SafetyNetSeconds { get; set; } = 10;
    public double CpuOvercommit { get; set; } = 4;
}

public sealed class ComputeOptions
{
    public string Driver { get; set; } = "qemu";
    public string Accelerator { get; set; } = "auto";
    public string QemuBinary { get; set; } = "";
    public int ShutdownTimeoutSeconds { get; set; } = 60;
    public int SimulatedDelayMs { get; set; } = 50;
    public bool SimulatedMedia { get; set; }
    public string ApplianceImage { get; set; } = "";
    public int BootTimeoutSeconds { get; set; } = 300;
    public int MonitorIntervalSeconds { get; set; } = 5;
    public int MaxConcurrentDeployments { get; set; } = 32;
}

public sealed class MarketplaceOptions
{
    public long MaxEntryBytes { get; set; } = 10 * 1024 * 1024;
    public string SiteEndorserEmail { get; set; } = "site-admin@localhost";
    public int SiteEntryValidDays { get; set; } = 3650;
    public List<string> WhitelistedCertificates { get; set; } = [];
    public int MaxClockSkewMinutes { get; set; } = 10;
    public MarketplaceMailOptions Mail { get; set; } = new();
    public MarketplacePagesOptions Pages { get; set; } = new();
}

public sealed class MarketplaceMailOptions
{
    public string SmtpHost { get; set; } = "";
    public int SmtpPort { get; set; } = 587;
    public bool StartTls { get; set; } = true;
    public string User { get; set; } = "";
    public string Password { get; set; } = "";
    public string From { get; set; } = "marketplace@localhost";
    public string PickupDir { get; set; } = "";
}

public sealed class MarketplacePagesOptions
{
    public string Title { get; set; } = "StratusLab Marketplace";
    public string LogoFile { get; set; } = "";
    public string PrimaryColour { get; set; } = "#1f4e79";
    public string AccentColour { get; set; } = "#e8a317";
    public string BackgroundColour { get; set; } = "#f6f8fa";
}

public sealed class PolicyOptions
{
    public List<string> WhitelistEndorsers { get; set; } = [];
    public List<string> BlacklistEndorsers { get; set; } = [];
    public List<string> WhitelistImages { get; set; } = [];
    public List<string> BlacklistImages { get; set; } = [];
    public List<string> WhitelistChecksums { get; set; } = [];
    public List<string> BlacklistChecksums { get; set; } = [];
}

public sealed class PdiskOptions
{
    public string Backend { get; set; } = "file";
    public string VolumesDir { get; set; } = "";
    public string FileFormat { get; set; } = "raw";
    public string VolumeGroup { get; set; } = "";
    public string ThinPool { get; set; } = "";
    public string Sharing { get; set; } = "local";
    public PdiskIscsiOptions Iscsi { get; set; } = new();
    public int QuarantineMinutes { get; set; } = 15;
    public long MaxVolumeGiB { get; set; } = 1024;
    public long MaxUploadBytes { get; set; } = 100L << 30;
    public long MaxUrlDownloadBytes { get; set; } = 100L << 30;
    public int UrlDownloadTimeoutMinutes { get; set; } = 60;
}

public sealed class PdiskIscsiOptions
{
    public string PortalAddress { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 3260;
    public List<string> Initiators { get; set; } = [];
    public bool StartTgtd { get; set; } = true;
}

public sealed class NetworkingOptions
{
    public int PatPortFirst { get; set; } = 15000;
    public int PatPortLast { get; set; } = 17000;
    public string PatGuestPorts { get; set; } = "22,80";
    public string PatAddress { get; set; } = "127.0.0.1";
    public int MaxRangeAddresses { get; set; } = 65536;
    public int MaxNicsPerInstance { get; set; } = 8;
    public string DnsmasqBinary { get; set; } = "";
    public string VlanUplink { get; set; } = "";
    public int ReconcileIntervalSeconds { get; set; } = 60;
    public DefaultNetworkOptions DefaultNetwork { get; set; } = new();

    /// <summary>The guest ports every VM gets forwarded, parsed from <see cref="PatGuestPorts"/> (validated at start-up).</summary>
    public IReadOnlyList<int> GuestPorts => PatGuestPorts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToList();
}

public sealed class DefaultNetworkOptions
{
    public string Driver { get; set; } = "user";
    public string Cidr { get; set; } = "10.0.2.0/24";
    public string Gateway { get; set; } = "10.0.2.2";
    public string Dns { get; set; } = "10.0.2.3";
    public string First { get; set; } = "10.0.2.15";
}
