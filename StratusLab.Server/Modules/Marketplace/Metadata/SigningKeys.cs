using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using StratusLab.Server.Modules.Marketplace.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Metadata;

/// <summary>Loads an endorser's certificate with its private key: PKCS#12, or PEM certificate + PEM key (optionally encrypted).</summary>
internal static class SigningKeys
{
    public static X509Certificate2 LoadPkcs12(string path, string? password)
    {
        try
        {
            var cert = X509CertificateLoader.LoadPkcs12FromFile(path, password, X509KeyStorageFlags.EphemeralKeySet);
            return cert.HasPrivateKey ? cert : throw MetadataException.Malformed($"{path} holds no private key; export the certificate together with its key.");
        }
        catch (CryptographicException e)
        {
            throw MetadataException.Malformed($"cannot read the PKCS#12 file {path}: {e.Message} (wrong --password?)");
        }
    }

    public static X509Certificate2 LoadPem(string certificatePath, string keyPath, string? password)
    {
        try
        {
            var cert = password is null
                ? X509Certificate2.CreateFromPemFile(certificatePath, keyPath)
                : X509Certificate2.CreateFromEncryptedPemFile(certificatePath, password, keyPath);
            // Keys from PEM are ephemeral; a PKCS#12 round trip makes them usable by every signer on every platform.
            return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException e)
        {
            throw MetadataException.Malformed($"cannot read the certificate {certificatePath} with the key {keyPath}: {e.Message}");
        }
    }

    /// <summary>A self-signed RSA certificate for <paramref name="email"/> (the e-mail goes in subjectAltName, as endorser certificates have it).</summary>
    public static X509Certificate2 CreateSelfSigned(string commonName, string email, int keyBits, TimeSpan lifetime)
    {
        using var rsa = RSA.Create(keyBits);
        var subject = new X500DistinguishedNameBuilder();
        // The builder writes RDNs in the reverse of the order added: this gives CN=...,O=StratusLab.
        subject.AddCommonName(commonName);
        subject.AddOrganizationName("StratusLab");
        var request = new CertificateRequest(subject.Build(), rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(email);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.NonRepudiation, critical: true));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.Add(lifetime));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.EphemeralKeySet);
    }

    /// <summary>Certificate and private key as one PEM text.</summary>
    public static string ToPem(X509Certificate2 cert)
    {
        using var rsa = cert.GetRSAPrivateKey() ?? throw new InvalidOperationException("the certificate has no RSA private key");
        return cert.ExportCertificatePem() + "\n" + rsa.ExportPkcs8PrivateKeyPem() + "\n";
    }
}
