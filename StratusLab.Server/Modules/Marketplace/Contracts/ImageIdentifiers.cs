namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>StratusLab image identifiers (the SHA-1 as 27 characters of 6 bits) for other modules.</summary>
public static class ImageIdentifiers
{
    /// <summary>The identifier of an image whose SHA-1 is <paramref name="sha1Hex"/> (40 hex digits).</summary>
    public static string FromSha1Hex(string sha1Hex) => Metadata.ImageIdentifier.FromSha1Hex(sha1Hex);

    /// <summary>True for 27 characters of A-Z a-z 0-9 - _ that can encode a SHA-1.</summary>
    public static bool IsWellFormed(string? identifier) => Metadata.ImageIdentifier.IsWellFormed(identifier);
}
