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
    public TlsOptions Tls { get; set; } = new();

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

/// <summary>The https listeners' certificate, and the plain-HTTP listener that keeps the guest API reachable by guests.</summary>
public sealed class TlsOptions
{
    /// <summary>PEM certificate (chain) for https listeners; empty: a self-signed one made on first start in &lt;data-dir&gt;/tls.</summary>
    public string CertificateFile { get; set; } = "";

    /// <summary>PEM private key of <see cref="CertificateFile"/> (unencrypted); empty when the certificate file holds the key too.</summary>
    public string KeyFile { get; set; } = "";

    /// <summary>
    /// When every listener is https, guests (whose agents speak plain HTTP and cannot check a self-signed certificate) reach
    /// the guest API on a plain-HTTP listener on 127.0.0.1 that serves /guest/v1 only: this port; 0 = the first https port + 1;
    /// -1 = none (then set PublicUrl to where guests reach the guest API).
    /// </summary>
    public int GuestHttpPort { get; set; }
}
