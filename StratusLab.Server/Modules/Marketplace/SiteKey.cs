using System.Security.Cryptography.X509Certificates;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Marketplace;

/// <summary>
/// The site's signing key: a self-signed RSA certificate for Marketplace:SiteEndorserEmail, generated on first start
/// into &lt;data-dir&gt;/site-key.pem (certificate + key, mode 0600) and used for the site's own entries.
/// </summary>
internal sealed class SiteKey(ServerOptions options, MarketplaceOptions marketplace, ILogger<SiteKey> logger)
{
    const int KeyBits = 3072;
    readonly SemaphoreSlim _lock = new(1, 1);
    X509Certificate2? _certificate;

    public string Path => System.IO.Path.Combine(options.DataDir, "site-key.pem");

    public async Task<X509Certificate2> GetAsync(CancellationToken ct = default)
    {
        if (_certificate is { } ready) return ready;
        await _lock.WaitAsync(ct);
        try
        {
            return _certificate ??= await Task.Run(LoadOrCreate, ct);
        }
        finally { _lock.Release(); }
    }

    X509Certificate2 LoadOrCreate()
    {
        var email = marketplace.SiteEndorserEmail;
        if (File.Exists(Path))
        {
            var existing = X509Certificate2.CreateFromPemFile(Path);
            if (string.Equals(MetadataSignature.CertificateEmail(existing), email, StringComparison.OrdinalIgnoreCase))
                return X509CertificateLoader.LoadPkcs12(existing.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.EphemeralKeySet);
            // The configured site e-mail changed: keep the old key for forensics and make a new one.
            var keep = Path + "." + DateTime.UtcNow.ToString("yyyyMMddHHmmss") + ".old";
            File.Move(Path, keep);
            logger.LogWarning("Marketplace:SiteEndorserEmail changed to {Email}; the old site key is kept as {Old}", email, keep);
        }
        var cert = SigningKeys.CreateSelfSigned($"StratusLab site endorser ({Environment.MachineName})", email, KeyBits, TimeSpan.FromDays(365 * 20));
        var temp = Path + ".tmp";
        File.Delete(temp);
        using (var stream = new FileStream(temp, new FileStreamOptions
               {
                   Mode = FileMode.CreateNew, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        using (var writer = new StreamWriter(stream))
            writer.Write(SigningKeys.ToPem(cert));
        File.Move(temp, Path, overwrite: true);
        logger.LogInformation("Generated the site signing key for {Email} in {Path} (SHA-256 fingerprint {Fingerprint})", email, Path,
            cert.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256));
        return cert;
    }
}
