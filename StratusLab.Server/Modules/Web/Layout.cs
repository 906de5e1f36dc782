using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// The page shell of the dashboard: the Marketplace pages' header, stylesheet and logo (one product), the site title from
/// Marketplace:Pages, a navigation bar, the CSRF token (a hidden field in forms, a meta tag for scripts), strict CSP.
/// </summary>
internal static class Layout
{
    public static IResult Page(HttpContext http, string heading, Markup body, int status = 200, string? current = null, params string[] assets)
    {
        var branding = http.RequestServices.GetRequiredService<ISiteBranding>();
        var signedIn = http.User.Identity?.IsAuthenticated == true && http.User.FindFirst(IdentityClaims.UserId) is not null;
        var csrf = Csrf(http);
        var isAdmin = signedIn && http.User.IsInRole(IdentityClaims.AdminRole);
        Markup Nav(string href, string label, string key) =>
            current == key ? H($"<a href=\"{href}\" aria-current=\"page\">{label}</a>") : H($"<a href=\"{href}\">{label}</a>");
        var nav = signedIn
            ? H($"""
                <nav class="site" aria-label="Main">{Nav("/ui/instances", "Instances", "instances")}{Nav("/ui/volumes", "Volumes", "volumes")}{Nav("/ui/images", "Images", "images")}{Nav("/ui/networks", "Networks", "networks")}{Nav("/marketplace", "Marketplace", "marketplace")}{If(isAdmin, Nav("/ui/admin/users", "Admin", "admin"))}
                <span class="who">{http.User.Identity!.Name}{If(isAdmin, new Markup(" (admin)"))}</span>
                <form method="post" action="/ui/signout" class="inline"><input type="hidden" name="{WebModule.CsrfField}" value="{csrf}"><button type="submit" class="link">Sign out</button></form></nav>
                """)
            : H($"""<nav class="site" aria-label="Main">{Nav("/marketplace", "Marketplace", "marketplace")}</nav>""");
        // Extra assets: scripts, and stylesheets (.css) such as xterm.js's.
        var scriptTags = Each(assets.Prepend("/ui/assets/dashboard.js"), s => s.EndsWith(".css", StringComparison.Ordinal)
            ? H($"<link rel=\"stylesheet\" href=\"{s}\">") : H($"<script src=\"{s}\" defer></script>"));
        var html = H($"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{heading} - {branding.Title}</title>
            <meta name="csrf-token" content="{csrf}">
            <link rel="stylesheet" href="{branding.StylesheetPath}"><link rel="stylesheet" href="/ui/assets/dashboard.css">
            {scriptTags}</head>
            <body><a class="skip" href="#main">Skip to content</a>
            <header><img src="{branding.LogoPath}" alt=""><a href="/">{branding.Title}</a>{nav}</header>
            <main id="main"><h1>{heading}</h1>
            {body}
            </main><footer>StratusLab dashboard. API: <a href="/docs">/docs</a></footer></body></html>
            """);
        // Styles allow inline because xterm.js themes its terminal with a style element; scripts stay 'self' only.
        http.Response.Headers.ContentSecurityPolicy =
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["Referrer-Policy"] = "same-origin";
        return TypedResults.Content(html.Value, "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    /// <summary>A page that only says something (an error, a refusal).</summary>
    public static IResult Message(HttpContext http, string heading, int status, string detail) =>
        Page(http, heading, H($"<p class=\"problem\" role=\"alert\">{detail}</p><p><a href=\"/ui/instances\">Back to the dashboard</a></p>"), status);

    /// <summary>The request token of this session's CSRF pair (the cookie half is set on the response).</summary>
    public static string Csrf(HttpContext http) =>
        http.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(http).RequestToken ?? "";

    public static Markup CsrfField(HttpContext http) => H($"<input type=\"hidden\" name=\"{WebModule.CsrfField}\" value=\"{Csrf(http)}\">");
}
