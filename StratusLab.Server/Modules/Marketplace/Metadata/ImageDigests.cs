using System.Security.Cryptography;
using StratusLab.Server.Modules.Marketplace.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Metadata;

/// <summary>Computes an image's <see cref="ImageDigest"/>: its bytes, SHA-1, SHA-256 and MD5 in one pass.</summary>
internal static class ImageDigests
{
    public static async Task<ImageDigest> OfFileAsync(string path, CancellationToken ct = default)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        return await OfStreamAsync(stream, ct);
    }

    public static async Task<ImageDigest> OfStreamAsync(Stream stream, CancellationToken ct = default)
    {
        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var buffer = new byte[1 << 20];
        long total = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer, ct)) > 0)
        {
            sha1.AppendData(buffer, 0, read);
            sha256.AppendData(buffer, 0, read);
            md5.AppendData(buffer, 0, read);
            total += read;
        }
        return new ImageDigest(total, Convert.ToHexStringLower(sha1.GetHashAndReset()),
            Convert.ToHexStringLower(sha256.GetHashAndReset()), Convert.ToHexStringLower(md5.GetHashAndReset()));
    }
}
