using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace StratusLab.Server.Platform.Auth;

/// <summary>Checks presented credentials; implemented by the Identity module.</summary>
public interface ICredentialValidator
{
    /// <summary>The principal for a valid, unexpired, unrevoked API token, else null.</summary>
    Task<ClaimsPrincipal?> ValidateTokenAsync(string token, CancellationToken ct);

    /// <summary>The principal for a valid user name and password, else null.</summary>
    Task<ClaimsPrincipal?> ValidatePasswordAsync(string user, string password, CancellationToken ct);

    /// <summary>
    /// The principal of a user as Identity sees it now (role, groups), for a session that outlives its sign-in; null when
    /// the user no longer exists.
    /// </summary>
    Task<ClaimsPrincipal?> CurrentPrincipalAsync(long userId, CancellationToken ct);
}

/// <summary>Every method of <see cref="ICredentialValidator"/> throws <see cref="Contracts.AccountDisabledException"/> for right credentials of a disabled account.</summary>
public static class CredentialRefusals
{
    /// <summary>Where the bearer handler leaves a disabled account's refusal for its challenge (and other doors may read it).</summary>
    public const string DisabledItem = "stratuslab.account-disabled";
}

/// <summary>Authorization policy names.</summary>
public static class Policies
{
    public const string Admin = "admin";
}

/// <summary>"Authorization: Bearer &lt;token&gt;" (and Basic user:password, to obtain a first token).</summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ICredentialValidator validator)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        // The guest API checks its own per-VM tokens and the EC2 door its own signatures; they are not bearer credentials.
        if (string.IsNullOrEmpty(header) || Request.Path.StartsWithSegments("/guest") || Request.Path.StartsWithSegments("/ec2"))
            return AuthenticateResult.NoResult();
        if (!AuthenticationHeaderValue.TryParse(header, out var value) || string.IsNullOrEmpty(value.Parameter))
            return AuthenticateResult.Fail("malformed Authorization header");

        ClaimsPrincipal? principal = null;
        try
        {
            if (value.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
            {
                principal = await validator.ValidateTokenAsync(value.Parameter, Context.RequestAborted);
            }
            else if (value.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
            {
                string decoded;
                try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(value.Parameter)); }
                catch (FormatException) { return AuthenticateResult.Fail("malformed Basic credentials"); }
                var colon = decoded.IndexOf(':');
                if (colon > 0)
                    principal = await validator.ValidatePasswordAsync(decoded[..colon], decoded[(colon + 1)..], Context.RequestAborted);
            }
        }
        catch (Contracts.AccountDisabledException disabled)
        {
            Context.Items[CredentialRefusals.DisabledItem] = disabled.Detail;
            return AuthenticateResult.Fail(disabled.Detail);
        }
        return principal is null
            ? AuthenticateResult.Fail("invalid credentials")
            : AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (Context.Items[CredentialRefusals.DisabledItem] is string refusal)
        {
            Response.StatusCode = 403;
            await Results.Problem(statusCode: 403, title: "Account disabled", detail: refusal).ExecuteAsync(Context);
            return;
        }
        Response.StatusCode = 401;
        Response.Headers.WWWAuthenticate = "Bearer realm=\"stratuslab\"";
        var hadCredentials = !string.IsNullOrEmpty(Request.Headers.Authorization);
        await Results.Problem(
            statusCode: 401, title: "Unauthorized",
            detail: hadCredentials && Request.Headers.Authorization.ToString().StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)
                ? "The user name or password is wrong (for directory users, the LDAP server may also be unreachable: the server log says which). Check them, or ask an administrator."
                : hadCredentials
                ? "The token is not valid: it is unknown, revoked or expired. Create a new one with 'stratuslab token-create' or use <data-dir>/admin.token."
                : "This endpoint needs a token: send 'Authorization: Bearer <token>' (the admin's is in <data-dir>/admin.token).")
            .ExecuteAsync(Context);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        await Results.Problem(statusCode: 403, title: "Forbidden",
                detail: "Only administrators may do this; ask an administrator, or use an admin token.")
            .ExecuteAsync(Context);
    }
}
