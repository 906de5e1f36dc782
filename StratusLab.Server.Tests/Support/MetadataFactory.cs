using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Xml;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;

namespace StratusLab.Server.Tests.Support;

/// <summary>Endorser certificates and signed StratusLab entries for tests.</summary>
public static class MetadataFactory
{
    static readonly Dictionary<string, X509Certificate2> Keys = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A self-signed RSA-2048 certificate for <paramref name="email"/>, made once per test run.</summary>
    public static X509Certificate2 Key(string email)
    {
        lock (Keys)
        {
            if (!Keys.TryGetValue(email, out var cert))
                Keys[email] = cert = SigningKeys.CreateSelfSigned("Test endorser " + email, email, 2048, TimeSpan.FromDays(30));
            return cert;
        }
    }

    public static string Thumbprint(X509Certificate2 cert) => cert.GetCertHashString(HashAlgorithmName.SHA256);

    /// <summary>A draft for random image content (a fresh identifier each call).</summary>
    public static MetadataDraft Draft(string? title = null, string? os = "ttylinux", string? arch = "x86_64", string[]? tags = null,
        DateTimeOffset? valid = null, string? description = null, string? deprecated = null)
    {
        var content = RandomNumberGenerator.GetBytes(64);
        var sha1 = Convert.ToHexStringLower(SHA1.HashData(content));
        return new MetadataDraft
        {
            Identifier = ImageIdentifier.FromSha1Hex(sha1),
            Bytes = content.Length,
            Checksums = [new ImageChecksum("SHA-1", sha1), new ImageChecksum("SHA-256", Convert.ToHexStringLower(SHA256.HashData(content)))],
            Title = title ?? "test image " + sha1[..6],
            Description = description ?? "A small image for tests",
            Os = os,
            OsVersion = "9.7",
            OsArch = arch,
            Format = "qcow2",
            Tags = tags ?? [],
            Locations = ["http://example.org/images/" + sha1 + ".qcow2"],
            Valid = valid ?? DateTimeOffset.UtcNow.AddDays(30),
            Deprecated = deprecated,
        };
    }

    public static XmlDocument SignedDocument(MetadataDraft draft, X509Certificate2 key, DateTimeOffset? created = null,
        SignatureAlgorithm algorithm = SignatureAlgorithm.RsaSha256)
    {
        var doc = MetadataXml.Build(draft);
        MetadataSignature.Sign(doc, key, null, created ?? Second(DateTimeOffset.UtcNow), algorithm);
        return doc;
    }

    public static byte[] Signed(MetadataDraft draft, X509Certificate2 key, DateTimeOffset? created = null,
        SignatureAlgorithm algorithm = SignatureAlgorithm.RsaSha256) =>
        MetadataXml.ToBytes(SignedDocument(draft, key, created, algorithm));

    public static DateTimeOffset Second(DateTimeOffset t) => new(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    public static ByteArrayContent Xml(byte[] xml, string contentType = "application/xml")
    {
        var content = new ByteArrayContent(xml);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    }

    public static ByteArrayContent Xml(string xml) => Xml(System.Text.Encoding.UTF8.GetBytes(xml));
}
