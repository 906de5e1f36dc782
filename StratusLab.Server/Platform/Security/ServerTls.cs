using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Platform.Security;

/// <summary>
/// The certificate of the https listeners: the PEM pair named by Tls:CertificateFile / Tls:KeyFile, else a self-signed one
/// made on first start in &lt;data-dir&gt;/tls (server.crt, server.key 0600) and kept across restarts. Its SHA-256
/// fingerprint is stored next to it (server.sha256) so that clients can pin it.
/// </summary>
public sealed class ServerTls(ServerOptions options, ILogger<ServerTls> logger)
{
    readonly Lazy<X509Certificate2> _certificate = new(() => Load(options, logger));

    public X509Certificate2 Certificate => _certificate.Value;

    public string Fingerprint => FingerprintOf(Certificate);

    /// <summary>The file a client can trust as its CA (the configured certificate, or the self-signed one).</summary>
    public string CertificatePath => options.Tls.CertificateFile.Length > 0 ? Path.GetFullPath(options.Tls.CertificateFile) : SelfSignedPath(options);

    public static string SelfSignedPath(ServerOptions options) => Path.Combine(options.DataDir, "tls", "server.crt");

    /// <summary>Whether any listener of <paramref name="urls"/> is https.</summary>
    public static bool Wanted(string urls) =>
        urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Any(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase));

    /// <summary>SHA-256 of the DER certificate, upper-case hex pairs separated by colons (as 'openssl x509 -fingerprint -sha256').</summary>
    public static string FingerprintOf(X509Certificate certificate) =>
        string.Join(':', SHA256.HashData(certificate.GetRawCertData()).Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    static X509Certificate2 Load(ServerOptions options, ILogger logger)
    {
        var tls = options.Tls;
        if (tls.CertificateFile.Length > 0)
        {
            try
            {
                var configured = X509Certificate2.CreateFromPemFile(tls.CertificateFile, tls.KeyFile.Length > 0 ? tls.KeyFile : null);
                logger.LogInformation("TLS: certificate {Path} ({Subject}, until {NotAfter:yyyy-MM-dd}), SHA-256 fingerprint {Fingerprint}",
                    tls.CertificateFile, configured.Subject, configured.NotAfter, FingerprintOf(configured));
                return configured;
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                throw new ConfigurationException($"Tls:CertificateFile / Tls:KeyFile: cannot load '{tls.CertificateFile}' with key '{tls.KeyFile}': {e.Message}. Give a PEM certificate and its PEM private key (unencrypted).");
            }
        }
        var dir = Path.Combine(options.DataDir, "tls");
        var certPath = Path.Combine(dir, "server.crt");
        var keyPath = Path.Combine(dir, "server.key");
        if (File.Exists(certPath) && File.Exists(keyPath))
        {
            var kept = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            logger.LogInformation("TLS: self-signed certificate {Path}, SHA-256 fingerprint {Fingerprint}", certPath, FingerprintOf(kept));
            return kept;
        }
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var made = CreateSelfSigned(HostNames(options.Urls), DateTimeOffset.UtcNow);
        using (var key = made.GetECDsaPrivateKey()!)
        {
            File.WriteAllText(keyPath, "");
            File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        }
        File.WriteAllText(certPath, made.ExportCertificatePem() + "\n");
        File.WriteAllText(Path.Combine(dir, "server.sha256"), FingerprintOf(made) + "\n");
        logger.LogWarning("TLS: made a self-signed certificate {Path} valid until {NotAfter:yyyy-MM-dd}; SHA-256 fingerprint {Fingerprint}. "
            + "Clients trust it with --ca-file {Path} or --accept-fingerprint {Fingerprint}", certPath, made.NotAfter, FingerprintOf(made), certPath, FingerprintOf(made));
        return made;
    }

    /// <summary>A self-signed ECDSA P-256 server certificate for these names and addresses (plus localhost and the loopbacks), ten years.</summary>
    public static X509Certificate2 CreateSelfSigned(IEnumerable<string> names, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={Dns.GetHostName()}, O=StratusLab Server (self-signed)", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in new[] { "localhost", "127.0.0.1", "::1", Dns.GetHostName() }.Concat(names).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (IPAddress.TryParse(name.Trim('[', ']'), out var ip)) san.AddIpAddress(ip);
            else san.AddDnsName(name);
        }
        request.CertificateExtensions.Add(san.Build());
        // Serial numbers must differ between certificates of one issuer name, or clients may confuse a remade one with the old.
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var made = request.Create(request.SubjectName, X509SignatureGenerator.CreateForECDsa(key), now.AddDays(-1), now.AddYears(10), serial);
        return made.CopyWithPrivateKey(key);
    }

    /// <summary>The host names of the https URLs that are neither wildcards nor loopback (those are always in the certificate).</summary>
    static IEnumerable<string> HostNames(string urls) =>
        urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            .Select(u => Uri.TryCreate(u.Replace("*", "0.0.0.0").Replace("+", "0.0.0.0"), UriKind.Absolute, out var uri) ? uri.Host : null)
            .OfType<string>()
            .Where(h => h is not ("0.0.0.0" or "[::]" or "localhost"));
}
