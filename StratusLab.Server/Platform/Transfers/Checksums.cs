using System.Security.Cryptography;

namespace StratusLab.Server.Platform.Transfers;

/// <summary>
/// The checksums images are published with (MD5, SHA-1, SHA-256, SHA-512, as lower-case hex), computed in one pass
/// over a file or a stream, and compared with the values a Marketplace entry or a request gives.
/// </summary>
public static class Checksums
{
    public const string Md5 = "MD5";
    public const string Sha1 = "SHA-1";
    public const string Sha256 = "SHA-256";
    public const string Sha512 = "SHA-512";

    /// <summary>Every algorithm, in the order StratusLab lists them.</summary>
    public static readonly IReadOnlyList<string> All = [Md5, Sha1, Sha256, Sha512];

    /// <summary>Normalizes algorithm names as StratusLab writes them (SHA-1, SHA1, sha256...) to MD5/SHA-1/SHA-256/SHA-512; null when unknown.</summary>
    public static string? Normalize(string name) => name.ToUpperInvariant().Replace("_", "-") switch
    {
        "MD5" => Md5,
        "SHA1" or "SHA-1" => Sha1,
        "SHA256" or "SHA-256" => Sha256,
        "SHA512" or "SHA-512" => Sha512,
        _ => null,
    };

    internal static HashAlgorithmName HashNameOf(string algorithm) => algorithm switch
    {
        Md5 => HashAlgorithmName.MD5,
        Sha1 => HashAlgorithmName.SHA1,
        Sha256 => HashAlgorithmName.SHA256,
        Sha512 => HashAlgorithmName.SHA512,
        _ => throw new ArgumentException($"unknown checksum algorithm '{algorithm}'", nameof(algorithm)),
    };

    /// <summary>The checksums of a file (all four unless <paramref name="algorithms"/> says which).</summary>
    public static async Task<IReadOnlyDictionary<string, string>> OfFileAsync(string path, CancellationToken ct, params IReadOnlyList<string> algorithms)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await OfStreamAsync(stream, ct, algorithms);
    }

    /// <summary>The checksums of everything left in a stream (all four unless <paramref name="algorithms"/> says which).</summary>
    public static async Task<IReadOnlyDictionary<string, string>> OfStreamAsync(Stream stream, CancellationToken ct, params IReadOnlyList<string> algorithms)
    {
        using var hashes = new ChecksumAccumulator(algorithms.Count == 0 ? All : algorithms);
        var buffer = new byte[1 << 20];
        int read;
        while ((read = await stream.ReadAsync(buffer, ct)) > 0) hashes.Append(buffer.AsSpan(0, read));
        return hashes.Finish();
    }

    /// <summary>The first expected checksum (of an algorithm that was computed) that <paramref name="computed"/> does not match; null when all match.</summary>
    public static (string Algorithm, string Expected, string Actual)? FirstMismatch(IReadOnlyDictionary<string, string> computed, IReadOnlyDictionary<string, string> expected)
    {
        foreach (var (algorithm, value) in expected)
        {
            if (Normalize(algorithm) is not { } name || !computed.TryGetValue(name, out var actual)) continue;
            if (!string.Equals(actual, value, StringComparison.OrdinalIgnoreCase)) return (name, value.ToLowerInvariant(), actual);
        }
        return null;
    }
}

/// <summary>Several hashes fed from the same bytes as they pass (a download, an upload), read at the end as lower-case hex.</summary>
public sealed class ChecksumAccumulator(IReadOnlyList<string> algorithms) : IDisposable
{
    readonly (string Name, IncrementalHash Hash)[] _hashes = algorithms.Select(a => (a, IncrementalHash.CreateHash(Checksums.HashNameOf(a)))).ToArray();

    public void Append(ReadOnlySpan<byte> data)
    {
        foreach (var (_, hash) in _hashes) hash.AppendData(data);
    }

    /// <summary>The checksums of everything appended so far, by algorithm name; the accumulator starts again from empty.</summary>
    public IReadOnlyDictionary<string, string> Finish() =>
        _hashes.ToDictionary(h => h.Name, h => Convert.ToHexStringLower(h.Hash.GetHashAndReset()));

    public void Dispose()
    {
        foreach (var (_, hash) in _hashes) hash.Dispose();
    }
}
