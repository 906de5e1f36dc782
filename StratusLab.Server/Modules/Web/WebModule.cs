using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using System.Security.Claims;
using Microsoft.Extensions.Options;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// The web dashboard: server-rendered pages under /ui (and / itself), a cookie session signed in through Identity's
/// password check, CSRF tokens on every form and state-changing request. A thin front door: every page calls the
/// modules' application services (Compute, Pdisk, Networking, Identity, Images, Marketplace contracts) and renders.
/// </summary>
internal static class WebModule
{
    public const string Scheme = "Session";
    public const string CookieName = "stratuslab.session";
    public const string CsrfHeader = "X-CSRF-Token";
    public const string CsrfField = "__csrf";

    public static IServiceCollection AddWebModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddModuleOptions<WebOptions>(configuration, "Web");
        services.AddSingleton<WebAssets>();

        // Session cookies and CSRF tokens are sealed with keys kept in the data dir, so sessions survive a restart.
        services.AddDataProtection().SetApplicationName("stratuslab");
        services.AddOptions<KeyManagementOptions>().Configure<ServerOptions, ILoggerFactory>((o, server, loggers) =>
            o.XmlRepository = new FileSystemXmlRepository(new DirectoryInfo(Path.Combine(server.DataDir, "web-keys")), loggers));

        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "stratuslab.csrf";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.HeaderName = CsrfHeader;
            o.FormFieldName = CsrfField;
        });

        services.AddAuthentication().AddCookie(Scheme, o =>
        {
            o.Cookie.Name = CookieName;
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.SlidingExpiration = true;
            o.LoginPath = "/ui/signin";
            o.LogoutPath = "/ui/signout";
            o.ReturnUrlParameter = "returnUrl";
            o.Events = new CookieAuthenticationEvents
            {
                OnValidatePrincipal = ValidateSessionRequest,
                OnRedirectToLogin = c => c.HttpContext.Items[CredentialRefusals.DisabledItem] is string disabled
                    ? IsPage(c.Request) ? Layout.Message(c.HttpContext, "Account disabled", 403, disabled).ExecuteAsync(c.HttpContext) : Refuse(c.HttpContext, 403, disabled)
                    : IsPage(c.Request) ? Redirect(c) : Refuse(c.HttpContext, 401,
                    c.HttpContext.Items.ContainsKey(CsrfRefusal)
                        ? $"A browser session must send its CSRF token in the {CsrfHeader} header on state-changing requests (the dashboard's pages do); scripts should use 'Authorization: Bearer <token>'."
                        : "The session has ended; sign in again at /ui/signin, or send 'Authorization: Bearer <token>'."),
                OnRedirectToAccessDenied = c => IsPage(c.Request)
                    ? Layout.Message(c.HttpContext, "Administrators only", 403, "Only administrators may see this page; ask an administrator.").ExecuteAsync(c.HttpContext)
                    : Refuse(c.HttpContext, 403, "Only administrators may do this; ask an administrator."),
            };
        });
        services.AddOptions<CookieAuthenticationOptions>(Scheme).Configure<WebOptions>((o, web) => o.ExpireTimeSpan = web.IdleTimeout);
        // One default scheme for every door: a request with an Authorization header is a bearer (or Basic) request as
        // before; one without it but with the session cookie is the dashboard's (the console WebSocket, live events).
        services.PostConfigure<AuthenticationSchemeOptions>(BearerAuthenticationHandler.SchemeName, o => o.ForwardDefaultSelector = SelectScheme);
        return services;
    }

    public static void MapWebEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => Results.Redirect("/ui/instances")).ExcludeFromDescription().AllowAnonymous();
        var ui = app.MapGroup("/ui").ExcludeFromDescription();
        WebAssets.Map(ui);
        SessionPages.Map(ui);
        // The pages authenticate with the session only, so an anonymous visitor is sent to the sign-in page, not given a 401.
        var pages = ui.MapGroup("").RequireAuthorization(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder(Scheme).RequireAuthenticatedUser().Build())
            .AddEndpointFilter(RequireCsrf);
        InstancePages.Map(pages);
        ScreenPages.Map(pages);
        VolumePages.Map(pages);
        CatalogPages.Map(pages);
        // The admin pages need the admin role (the same role the API's admin policy asks for); the services they call check it again.
        var admin = ui.MapGroup("/admin").RequireAuthorization(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder(Scheme)
            .RequireAuthenticatedUser().RequireRole(IdentityClaims.AdminRole).Build()).AddEndpointFilter(RequireCsrf);
        AdminPages.Map(admin);
    }

    const string CsrfRefusal = "stratuslab.csrf-refused";

    static string? SelectScheme(HttpContext http) =>
        string.IsNullOrEmpty(http.Request.Headers.Authorization) && http.Request.Cookies.ContainsKey(CookieName)
        && !http.Request.Path.StartsWithSegments("/guest") && !http.Request.Path.StartsWithSegments("/ec2")
            ? Scheme : null;

    /// <summary>The dashboard's own pages (which check CSRF themselves and answer with pages, not problems).</summary>
    static bool IsPage(HttpRequest request) => request.Path == "/" || request.Path.StartsWithSegments("/ui");

    /// <summary>
    /// A session cookie is ambient: a cross-site page could make the browser send it. So outside the dashboard's pages
    /// (which check their forms' tokens), a session-authenticated state-changing request needs the CSRF header, and a
    /// WebSocket must come from this site's origin.
    /// </summary>
    static async Task ValidateSessionRequest(CookieValidatePrincipalContext c)
    {
        var http = c.HttpContext;
        if (!await FollowAccountAsync(c)) return;
        if (IsPage(http.Request)) return;
        var origin = http.Request.Headers.Origin.ToString();
        if (http.WebSockets.IsWebSocketRequest && origin.Length > 0
            && !(Uri.TryCreate(origin, UriKind.Absolute, out var o) && string.Equals(o.Authority, http.Request.Host.Value, StringComparison.OrdinalIgnoreCase)))
        {
            c.RejectPrincipal();
            return;
        }
        if (HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method) || HttpMethods.IsOptions(http.Request.Method)) return;
        var antiforgery = http.RequestServices.GetRequiredService<IAntiforgery>();
        var user = http.User;
        http.User = c.Principal!;
        try
        {
            if (!await antiforgery.IsRequestValidAsync(http))
            {
                http.Items[CsrfRefusal] = true;
                c.RejectPrincipal();
            }
        }
        finally { http.User = user; }
    }

    /// <summary>
    /// The session's role is Identity's word at each request, not what it was at sign-in: a demoted administrator loses
    /// the admin pages at once, a deleted user's session ends, and so does a disabled user's, with Identity's message
    /// (false: the principal was rejected).
    /// </summary>
    static async Task<bool> FollowAccountAsync(CookieValidatePrincipalContext c)
    {
        var principal = c.Principal!;
        ClaimsPrincipal? current = null;
        if (long.TryParse(principal.FindFirst(IdentityClaims.UserId)?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var userId))
        {
            try { current = await c.HttpContext.RequestServices.GetRequiredService<ICredentialValidator>().CurrentPrincipalAsync(userId, c.HttpContext.RequestAborted); }
            catch (Platform.Contracts.AccountDisabledException disabled) { c.HttpContext.Items[CredentialRefusals.DisabledItem] = disabled.Detail; }
        }
        if (current is null || !string.Equals(current.Identity?.Name, principal.Identity?.Name, StringComparison.Ordinal))
        {
            c.RejectPrincipal();
            await c.HttpContext.SignOutAsync(Scheme);
            return false;
        }
        var role = current.FindFirst(IdentityClaims.Role)?.Value ?? IdentityClaims.UserRole;
        var roles = principal.FindAll(IdentityClaims.Role).Select(r => r.Value).ToList();
        if (roles.Count == 1 && roles[0] == role) return true;
        var identity = new ClaimsIdentity(principal.Claims.Where(x => x.Type != IdentityClaims.Role), Scheme, ClaimTypes.Name, ClaimTypes.Role);
        identity.AddClaim(new Claim(IdentityClaims.Role, role));
        c.ReplacePrincipal(new ClaimsPrincipal(identity));
        c.ShouldRenew = true;
        return true;
    }

    static Task Redirect(RedirectContext<CookieAuthenticationOptions> c)
    {
        c.Response.Redirect(c.RedirectUri);
        return Task.CompletedTask;
    }

    static Task Refuse(HttpContext http, int status, string detail)
    {
        http.Response.StatusCode = status;
        return Results.Problem(statusCode: status, detail: detail).ExecuteAsync(http);
    }

    /// <summary>Every form post of the dashboard carries the CSRF token of the session; a forged one changes nothing (403).</summary>
    static async ValueTask<object?> RequireCsrf(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method))
        {
            var antiforgery = http.RequestServices.GetRequiredService<IAntiforgery>();
            if (!await antiforgery.IsRequestValidAsync(http))
                return Layout.Message(http, "Form expired", 403,
                    "This form did not come from this dashboard, or it has expired (for example after signing in again). Nothing was changed: go back, reload the page and try again.");
        }
        return await next(context);
    }
}
