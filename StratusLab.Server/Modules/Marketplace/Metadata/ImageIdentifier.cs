using System.Numerics;
using System.Security.Cryptography;

namespace StratusLab.Server.Modules.Marketplace.Metadata;

/// <summary>
/// StratusLab image identifiers: the SHA-1 of the image as 27 characters of 6 bits each, most significant first,
/// alphabet A-Z a-z 0-9 - _ (so the first character is A..P: 162 bits carry 160).
/// </summary>
internal static class ImageIdentifier
{
    public const int Length = 27;
    const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// <summary>The identifier of a 20-byte SHA-1 digest.</summary>
    public static string FromSha1(ReadOnlySpan<byte> sha1)
    {
        if (sha1.Length != 20) throw new ArgumentException($"a SHA-1 digest has 20 bytes, not {sha1.Length}", nameof(sha1));
        var value = new BigInteger(sha1, isUnsigned: true, isBigEndian: true);
        Span<char> chars = stackalloc char[Length];
        for (var i = Length - 1; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value & 63)];
            value >>= 6;
        }
        return new string(chars);
    }

    /// <summary>The identifier of a SHA-1 given in hex (leading zeros optional, as StratusLab compares numbers).</summary>
    public static string FromSha1Hex(string hex) => FromSha1(Convert.FromHexString(NormalizeSha1Hex(hex)));

    /// <summary>The 40-digit lower-case hex SHA-1 an identifier encodes; throws <see cref="FormatException"/> if it is not one.</summary>
    public static string ToSha1Hex(string identifier)
    {
        if (!IsWellFormed(identifier))
            throw new FormatException($"'{identifier}' is not an image identifier: it must be {Length} characters of A-Z, a-z, 0-9, '-' or '_', starting with A..P.");
        BigInteger value = 0;
        foreach (var c in identifier) value = (value << 6) | Alphabet.IndexOf(c);
        var bytes = value.ToByteArray(isUnsigned: true, isBigEndian: true);
        var padded = new byte[20];
        bytes.CopyTo(padded, 20 - bytes.Length);
        return Convert.ToHexStringLower(padded);
    }

    public static bool IsWellFormed(string? identifier)
    {
        if (identifier is not { Length: Length }) return false;
        foreach (var c in identifier)
            if (Alphabet.IndexOf(c) < 0) return false;
        // 27 x 6 = 162 bits: the two top bits must be zero.
        return Alphabet.IndexOf(identifier[0]) < 16;
    }

    /// <summary>A hex SHA-1 as 40 lower-case digits: leading zeros added or (if surplus) removed; throws <see cref="FormatException"/>.</summary>
    public static string NormalizeSha1Hex(string hex)
    {
        var trimmed = hex.Trim();
        if (trimmed.Length == 0 || !trimmed.All(Uri.IsHexDigit))
            throw new FormatException($"'{Platform.Http.Validate.Trim(hex)}' is not a hexadecimal SHA-1 checksum.");
        trimmed = trimmed.TrimStart('0');
        if (trimmed.Length > 40) throw new FormatException($"'{Platform.Http.Validate.Trim(hex)}' is longer than a SHA-1 checksum (40 hex digits).");
        return trimmed.PadLeft(40, '0').ToLowerInvariant();
    }

    /// <summary>The identifier of a stream's content (reads it to the end).</summary>
    public static string Of(Stream stream) => FromSha1(SHA1.HashData(stream));
}
