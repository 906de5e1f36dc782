namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>
/// What build-metadata and site registration know about an image before it is signed; each field means what the
/// same-named field of <see cref="MetadataEntry"/> means. The endorsement is added when the entry is signed.
/// </summary>
public sealed record MetadataDraft : ImageDescription
{
    public required string Identifier { get; init; }
    public required long Bytes { get; init; }
    public required IReadOnlyList<ImageChecksum> Checksums { get; init; }
    public string Type { get; init; } = "machine";
    public DateTimeOffset? Valid { get; init; }
    public string? Deprecated { get; init; }

    /// <summary>A draft holding what the image's bytes say: identifier, size and checksums (SHA-1, SHA-256, MD5).</summary>
    public static MetadataDraft From(ImageDigest digest) => new()
    {
        Identifier = digest.Identifier,
        Bytes = digest.Bytes,
        Checksums = [new("SHA-1", digest.Sha1), new("SHA-256", digest.Sha256), new("MD5", digest.Md5)],
    };
}

/// <summary>Bytes and checksums of an image file, computed in one pass (what build-metadata and site registration put in an entry).</summary>
public sealed record ImageDigest(long Bytes, string Sha1, string Sha256, string Md5)
{
    /// <summary>The StratusLab image identifier of these bytes (their SHA-1 in 27 characters).</summary>
    public string Identifier => ImageIdentifiers.FromSha1Hex(Sha1);
}

/// <summary>RSA with SHA-256 (the default) or with SHA-1, as the old StratusLab client signed.</summary>
public enum SignatureAlgorithm { RsaSha256, RsaSha1 }
