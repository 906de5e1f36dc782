using System.Security.Cryptography;
using System.Text;

namespace StratusLab.Server.Platform.Security;

/// <summary>
/// The one way secrets that carry their own entropy (API tokens, guest tokens, endorser confirmation tokens) are
/// stored: lower-case hex SHA-256 of the UTF-8 text. Stores already hold these hashes, so the output must never change.
/// </summary>
public static class TokenHash
{
    /// <summary>The stored form of <paramref name="token"/>: 64 lower-case hex digits.</summary>
    // Tokens carry 256 random bits, so a plain SHA-256 is enough; no salt or stretching needed.
    public static string Of(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
