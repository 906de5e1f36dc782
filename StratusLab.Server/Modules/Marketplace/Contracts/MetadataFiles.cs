using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using StratusLab.Server.Modules.Marketplace.Metadata;

namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>An entry just signed: the bytes to write out and what they say.</summary>
public sealed record SignedMetadata(byte[] Xml, MetadataEntry Entry);

/// <summary>
/// An entry whose signature and endorser were checked: what it says, the XML-DSig signature method URI, and the
/// SHA-256 fingerprint (lower-case hex) of the signing certificate.
/// </summary>
public sealed record VerifiedMetadata(MetadataEntry Entry, string SignatureMethod, string CertificateSha256);

/// <summary>
/// Offline work on metadata entry files, as the client commands do it (build-metadata, sign-metadata,
/// validate-metadata, deprecate-metadata): no server, no store. Every refusal is a <see cref="MetadataException"/>
/// whose detail says what to fix.
/// </summary>
public static class MetadataFiles
{
    /// <summary>Bytes and checksums of the image file at <paramref name="imagePath"/>, read once.</summary>
    public static Task<ImageDigest> DigestAsync(string imagePath, CancellationToken ct = default) => ImageDigests.OfFileAsync(imagePath, ct);

    /// <summary>The unsigned entry for <paramref name="draft"/> as UTF-8 XML, in the layout the old client wrote.</summary>
    public static byte[] Build(MetadataDraft draft) => MetadataXml.ToBytes(MetadataXml.Build(draft));

    /// <summary>
    /// Signs the entry <paramref name="xml"/> with <paramref name="certificate"/> (which holds the private key) at
    /// <paramref name="at"/>, replacing any earlier signature. The endorser's e-mail is the certificate's, or
    /// <paramref name="email"/> when the certificate has none.
    /// </summary>
    public static SignedMetadata Sign(byte[] xml, X509Certificate2 certificate, string? email, DateTimeOffset at,
        SignatureAlgorithm algorithm = SignatureAlgorithm.RsaSha256, IReadOnlyDictionary<string, string>? terms = null)
    {
        var doc = MetadataXml.Load(xml);
        // slterms fields set at signing (min-memory, default-user...), checked like any field when the entry is parsed below.
        foreach (var (name, value) in terms ?? new Dictionary<string, string>()) MetadataXml.SetTerm(doc, name, value);
        MetadataSignature.Sign(doc, certificate, email, at, algorithm);
        var entry = MetadataXml.Parse(doc);
        return new SignedMetadata(MetadataXml.ToBytes(doc), entry);
    }

    /// <summary>Checks the entry's one enveloped signature, its constraints, and that the endorser is the certificate's owner.</summary>
    public static VerifiedMetadata Verify(byte[] xml)
    {
        var doc = MetadataXml.Load(xml);
        var signature = MetadataSignature.Verify(doc);
        var entry = MetadataXml.Parse(doc);
        MetadataSignature.CheckEndorser(entry.Endorser, signature.Certificate);
        return new VerifiedMetadata(entry, signature.SignatureMethod, signature.Thumbprint);
    }

    /// <summary>
    /// The entry <paramref name="xml"/> marked deprecated for <paramref name="reason"/> and re-signed by
    /// <paramref name="certificate"/> as <paramref name="email"/>, at <paramref name="now"/> or, when the entry is not
    /// older than that, one second after its creation: the new entry must be strictly newer than the one it replaces.
    /// </summary>
    public static byte[] Deprecate(byte[] xml, string reason, X509Certificate2 certificate, string email, DateTimeOffset now)
    {
        var doc = MetadataXml.Load(xml);
        var signedAt = now;
        foreach (System.Xml.XmlNode created in doc.GetElementsByTagName("created", MetadataNames.DcTerms))
            if (DateTimeOffset.TryParse(created.InnerText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var previous)
                && signedAt < previous.AddSeconds(1))
                signedAt = previous.AddSeconds(1);
        MetadataXml.SetDeprecated(doc, reason);
        MetadataSignature.Sign(doc, certificate, email, signedAt);
        return MetadataXml.ToBytes(doc);
    }

    /// <summary>An endorser's certificate with its private key from a PKCS#12 file.</summary>
    public static X509Certificate2 LoadPkcs12(string path, string? password) => SigningKeys.LoadPkcs12(path, password);

    /// <summary>An endorser's certificate with its private key from a PEM certificate and a PEM key (optionally encrypted).</summary>
    public static X509Certificate2 LoadPem(string certificatePath, string keyPath, string? password) => SigningKeys.LoadPem(certificatePath, keyPath, password);

    /// <summary>The e-mail address in the certificate's subject, or null when it has none.</summary>
    public static string? CertificateEmail(X509Certificate2 certificate) => MetadataSignature.CertificateEmail(certificate);

    /// <summary>A time as entries write it: ISO-8601 UTC to the second with a 'Z'.</summary>
    public static string FormatTime(DateTimeOffset value) => MetadataXml.Format(value);
}
