using System.Security.Claims;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Ec2.Auth;

/// <summary>Who signed a request, with which access key, and for which service of the credential scope (ec2 or sts).</summary>
internal sealed record Ec2Signer(ClaimsPrincipal Principal, string AccessKeyId, string Service);

/// <summary>Checks a request's Signature V4 (header or presigned query) against the access key's secret.</summary>
internal sealed class Ec2Authenticator(IAccessKeys keys, Ec2Options options, TimeProvider clock)
{
    /// <summary>The services a credential scope may name: EC2, and STS for GetCallerIdentity (Terraform's AWS provider asks it first).</summary>
    public static readonly IReadOnlyList<string> Services = ["ec2", "sts"];

    public async Task<Ec2Signer> AuthenticateAsync(HttpRequest request, IReadOnlyList<KeyValuePair<string, string>> query, byte[] body, CancellationToken ct)
    {
        string? authorization = request.Headers.Authorization;
        var (parts, problem) = !string.IsNullOrEmpty(authorization)
            ? SignatureV4.ParseHeader(authorization, request.Headers["X-Amz-Date"].FirstOrDefault() ?? request.Headers.Date.FirstOrDefault())
            : query.Any(kv => kv.Key == "X-Amz-Signature")
                ? SignatureV4.ParseQuery(query)
                : (null, "the request is not signed: sign it with AWS Signature Version 4 using an access key ('stratuslab access-key-create')");
        if (parts is null)
            throw new Ec2Exception(authorization is null && !query.Any(kv => kv.Key == "X-Amz-Signature") ? "MissingAuthenticationToken" : "IncompleteSignature", problem!, 401);

        if (SignatureV4.ParseDate(parts.AmzDate) is not { } at)
            throw new Ec2Exception("IncompleteSignature", $"X-Amz-Date '{parts.AmzDate}' is not of the form yyyyMMddTHHmmssZ.", 400);
        var now = clock.GetUtcNow();
        if (parts.InQuery && query.FirstOrDefault(kv => kv.Key == "X-Amz-Expires").Value is { } expiresText)
        {
            // A presigned URL is valid from its date for X-Amz-Expires seconds (at most 7 days, as AWS allows).
            if (!int.TryParse(expiresText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var expires) || expires is < 1 or > 604_800)
                throw new Ec2Exception("AuthorizationQueryParametersError", $"X-Amz-Expires = '{expiresText}' is not accepted: give 1 to 604800 seconds.", 400);
            if (now > at.AddSeconds(expires))
                throw new Ec2Exception("RequestExpired", $"Request has expired: the presigned URL was valid until {at.AddSeconds(expires):yyyy-MM-ddTHH:mm:ssZ}.", 400);
            if (at - now > TimeSpan.FromMinutes(options.MaxClockSkewMinutes))
                throw new Ec2Exception("RequestExpired", $"The presigned URL's date {at:yyyy-MM-ddTHH:mm:ssZ} is in the future; fix the client's clock.", 400);
        }
        else if ((now - at).Duration() is var skew && skew > TimeSpan.FromMinutes(options.MaxClockSkewMinutes))
            throw new Ec2Exception("RequestExpired",
                $"Request has expired: its timestamp {at:yyyy-MM-ddTHH:mm:ssZ} is {skew.TotalMinutes:0} minutes from the server's clock ({now:yyyy-MM-ddTHH:mm:ssZ}); " +
                $"at most {options.MaxClockSkewMinutes} are accepted. Fix the client's clock.", 400);
        if (parts.Credential.Date != parts.AmzDate[..8])
            throw new Ec2Exception("SignatureDoesNotMatch", $"The credential date {parts.Credential.Date} does not match the request date {parts.AmzDate[..8]}.", 403);
        if (!Services.Contains(parts.Credential.Service))
            throw new Ec2Exception("SignatureDoesNotMatch", $"Credential should be scoped to the service 'ec2' (or 'sts' for GetCallerIdentity), not '{parts.Credential.Service}'.", 403);
        if (parts.Credential.Region != options.Region)
            throw new Ec2Exception("SignatureDoesNotMatch", $"Credential should be scoped to a valid region: this server's region is '{options.Region}', not '{parts.Credential.Region}'.", 403);

        AccessKeySecret? found;
        try { found = await keys.FindAsync(parts.Credential.AccessKeyId, ct); }
        catch (Platform.Contracts.AccountDisabledException disabled)
        {
            throw new Ec2Exception("AuthFailure", $"AWS was not able to validate the provided access credentials: {disabled.Detail}", 401);
        }
        var key = found
            ?? throw new Ec2Exception("AuthFailure", $"AWS was not able to validate the provided access credentials: the access key '{parts.Credential.AccessKeyId}' does not exist on this server.", 401);

        var headers = request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => string.Join(',', h.Value.Select(v => v ?? "")), StringComparer.Ordinal);
        var signingKey = SignatureV4.SigningKey(key.SecretAccessKey, parts.Credential);
        var bodyHash = SignatureV4.PayloadHash(body);
        string[] payloadHashes = headers.TryGetValue("x-amz-content-sha256", out var declared)
            ? [declared]
            : parts.InQuery ? [bodyHash, SignatureV4.UnsignedPayload] : [bodyHash];
        if (declared is not null && declared != SignatureV4.UnsignedPayload && declared != bodyHash)
            throw new Ec2Exception("SignatureDoesNotMatch", "The x-amz-content-sha256 header does not match the body.", 403);
        foreach (var payloadHash in payloadHashes)
        {
            var canonical = SignatureV4.CanonicalRequest(request.Method, request.PathBase + request.Path, query, headers, parts.SignedHeaders, payloadHash);
            var expected = SignatureV4.Signature(signingKey, SignatureV4.StringToSign(parts.AmzDate, parts.Credential, canonical));
            if (SignatureV4.SameSignature(expected, parts.Signature)) return new Ec2Signer(key.Principal, parts.Credential.AccessKeyId, parts.Credential.Service);
        }
        throw new Ec2Exception("SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your secret access key and signing method.", 403);
    }
}
