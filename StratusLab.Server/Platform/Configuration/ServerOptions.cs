namespace StratusLab.Server.Platform.Configuration;

/// <summary>
/// Platform's keys of the validated server configuration (config/stratuslab.json and its overrides); each module binds
/// and validates its own section with <see cref="ModuleOptions.AddModuleOptions{T}"/>.
/// </summary>
public sealed class ServerOptions
{
    public string DataDir { get; set; } = "";
    public string Urls { get; set; } = "http://127.0.0.1:8440";
    public string PublicUrl { get; set; } = "";
    public StoreOptions Store { get; set; } = new();
    public HttpOptions Http { get; set; } = new();
    public TelemetryOptions Telemetry { get; set; } = new();
    public DiskOptions Disk { get; set; } = new();

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

public sealed class DiskOptions
{
    /// <summary>Below this much free space on the data dir's filesystem, new work is refused (507) and /health is degraded.</summary>
    public long MinFreeMiB { get; set; } = 256;
}

public sealed class TelemetryOptions
{
    public string OtlpEndpoint { get; set; } = "";
}
