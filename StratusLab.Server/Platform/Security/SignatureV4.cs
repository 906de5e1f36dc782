using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace StratusLab.Server.Platform.Security;

/// <summary>The credential scope of a SigV4 signature: AKID/yyyyMMdd/region/service/aws4_request.</summary>
internal sealed record CredentialScope(string AccessKeyId, string Date, string Region, string Service)
{
    public string Scope => $"{Date}/{Region}/{Service}/aws4_request";

    public static CredentialScope? Parse(string credential)
    {
        var parts = credential.Split('/');
        return parts is [var key, var date, var region, var service, "aws4_request"] && key.Length > 0 && date.Length == 8
            ? new CredentialScope(key, date, region, service)
            : null;
    }
}

/// <summary>What a request presents for SigV4: from the Authorization header or from the X-Amz-* query parameters.</summary>
internal sealed record SignedRequestParts(CredentialScope Credential, IReadOnlyList<string> SignedHeaders, string Signature, string AmzDate, bool InQuery);

/// <summary>
/// AWS Signature Version 4 (pure functions): canonical request, string to sign, signing key and signature, as in
/// AWS's "Create a signed AWS API request". The server recomputes the signature from the request it received.
/// </summary>
internal static class SignatureV4
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public const string UnsignedPayload = "UNSIGNED-PAYLOAD";
    public const string DateFormat = "yyyyMMdd'T'HHmmss'Z'";

    /// <summary>Parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."; null with a reason when malformed.</summary>
    public static (SignedRequestParts? Parts, string? Problem) ParseHeader(string authorization, string? amzDate)
    {
        if (!authorization.StartsWith(Algorithm + " ", StringComparison.Ordinal))
            return (null, $"the Authorization header must start with '{Algorithm}'");
        var fields = authorization[(Algorithm.Length + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
        if (!fields.TryGetValue("Credential", out var credential) || !fields.TryGetValue("SignedHeaders", out var signed) || !fields.TryGetValue("Signature", out var signature))
            return (null, "the Authorization header needs Credential, SignedHeaders and Signature");
        if (CredentialScope.Parse(credential) is not { } scope)
            return (null, $"the credential '{credential}' is not of the form AccessKeyId/yyyyMMdd/region/ec2/aws4_request");
        if (string.IsNullOrEmpty(amzDate))
            return (null, "the request has no X-Amz-Date header");
        return (new SignedRequestParts(scope, signed.Split(';'), signature, amzDate, InQuery: false), null);
    }

    /// <summary>Parses the presigned form (X-Amz-Algorithm, X-Amz-Credential, ... in the query string).</summary>
    public static (SignedRequestParts? Parts, string? Problem) ParseQuery(IReadOnlyList<KeyValuePair<string, string>> query)
    {
        string? Get(string name) => query.FirstOrDefault(kv => kv.Key == name).Value;
        if (Get("X-Amz-Algorithm") != Algorithm) return (null, $"X-Amz-Algorithm must be '{Algorithm}'");
        if (Get("X-Amz-Credential") is not { } credential || CredentialScope.Parse(credential) is not { } scope)
            return (null, "X-Amz-Credential is missing or not of the form AccessKeyId/yyyyMMdd/region/ec2/aws4_request");
        if (Get("X-Amz-SignedHeaders") is not { } signed || Get("X-Amz-Signature") is not { } signature || Get("X-Amz-Date") is not { } date)
            return (null, "a presigned request needs X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Signature");
        return (new SignedRequestParts(scope, signed.Split(';'), signature, date, InQuery: true), null);
    }

    public static DateTimeOffset? ParseDate(string amzDate) =>
        DateTimeOffset.TryParseExact(amzDate, DateFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at) ? at : null;

    /// <summary>RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ as %XX (upper case).</summary>
    public static string UriEncode(string value, bool keepSlash = false)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            var c = (char)b;
            if (c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.' or '~' || keepSlash && c == '/') sb.Append(c);
            else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    public static string CanonicalQuery(IEnumerable<KeyValuePair<string, string>> query) =>
        string.Join('&', query
            .Where(kv => kv.Key != "X-Amz-Signature")
            .Select(kv => (Key: UriEncode(kv.Key), Value: UriEncode(kv.Value)))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).ThenBy(kv => kv.Value, StringComparer.Ordinal)
            .Select(kv => kv.Key + "=" + kv.Value));

    /// <summary>The canonical request; <paramref name="headers"/> holds every header by lower-case name (values joined by ',').</summary>
    public static string CanonicalRequest(string method, string path, IEnumerable<KeyValuePair<string, string>> query,
        IReadOnlyDictionary<string, string> headers, IReadOnlyList<string> signedHeaders, string payloadHash)
    {
        var sb = new StringBuilder();
        sb.Append(method).Append('\n');
        sb.Append(path.Length == 0 ? "/" : UriEncode(path, keepSlash: true)).Append('\n');
        sb.Append(CanonicalQuery(query)).Append('\n');
        foreach (var name in signedHeaders)
            sb.Append(name).Append(':').Append(headers.TryGetValue(name, out var v) ? CollapseSpaces(v) : "").Append('\n');
        sb.Append('\n');
        sb.Append(string.Join(';', signedHeaders)).Append('\n');
        sb.Append(payloadHash);
        return sb.ToString();
    }

    public static string StringToSign(string amzDate, CredentialScope scope, string canonicalRequest) =>
        $"{Algorithm}\n{amzDate}\n{scope.Scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";

    public static byte[] SigningKey(string secret, CredentialScope scope)
    {
        var date = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secret), Encoding.UTF8.GetBytes(scope.Date));
        var region = HMACSHA256.HashData(date, Encoding.UTF8.GetBytes(scope.Region));
        var service = HMACSHA256.HashData(region, Encoding.UTF8.GetBytes(scope.Service));
        return HMACSHA256.HashData(service, "aws4_request"u8.ToArray());
    }

    public static string Signature(byte[] signingKey, string stringToSign) =>
        Hex(HMACSHA256.HashData(signingKey, Encoding.UTF8.GetBytes(stringToSign)));

    /// <summary>
    /// The client's side: the Authorization header for a request whose <paramref name="headers"/> (lower-case names;
    /// all of them are signed) include host and x-amz-date, as the server recomputes it with <see cref="CanonicalRequest"/>.
    /// </summary>
    public static string AuthorizationHeader(string secret, CredentialScope scope, string amzDate, string method, string path,
        IEnumerable<KeyValuePair<string, string>> query, IReadOnlyDictionary<string, string> headers, string payloadHash)
    {
        var signed = headers.Keys.Order(StringComparer.Ordinal).ToList();
        var canonical = CanonicalRequest(method, path, query, headers, signed, payloadHash);
        var signature = Signature(SigningKey(secret, scope), StringToSign(amzDate, scope, canonical));
        return $"{Algorithm} Credential={scope.AccessKeyId}/{scope.Scope}, SignedHeaders={string.Join(';', signed)}, Signature={signature}";
    }

    /// <summary>Constant-time comparison of two hex signatures.</summary>
    public static bool SameSignature(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(presented.ToLowerInvariant()));

    public static string PayloadHash(ReadOnlySpan<byte> body) => Hex(SHA256.HashData(body));

    static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    static string CollapseSpaces(string value)
    {
        var sb = new StringBuilder(value.Length);
        var space = false;
        foreach (var c in value.Trim())
        {
            if (c == ' ') { if (!space) sb.Append(c); space = true; }
            else { sb.Append(c); space = false; }
        }
        return sb.ToString();
    }
}
