using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using StratusLab.Server.Platform.Auth;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>Sign-in (name and password, checked by Identity, throttled there) and sign-out of the dashboard's cookie session.</summary>
internal static class SessionPages
{
    public static void Map(RouteGroupBuilder ui)
    {
        ui.MapGet("/signin", SignInForm).AllowAnonymous();
        ui.MapPost("/signin", SignIn).AllowAnonymous().DisableAntiforgery();
        ui.MapPost("/signout", SignOut).AllowAnonymous().DisableAntiforgery();
    }

    static IResult SignInForm(HttpContext http, string? returnUrl) => Form(http, returnUrl, null, null, 200);

    static IResult Form(HttpContext http, string? returnUrl, string? user, string? problem, int status) =>
        Layout.Page(http, "Sign in", H($"""
            <form method="post" action="/ui/signin" class="card narrow">
            {Layout.CsrfField(http)}<input type="hidden" name="returnUrl" value="{LocalPath(returnUrl)}">
            {(problem is null ? Markup.Empty : H($"<p class=\"problem\" role=\"alert\" id=\"signin-problem\">{problem}</p>"))}
            <label for="user">User name</label><input id="user" name="user" autocomplete="username" required value="{user}" autofocus>
            <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
            <button type="submit">Sign in</button>
            </form>
            <p class="hint">Scripts and the command line use API tokens instead ('Authorization: Bearer …'); an administrator sets your password.</p>
            """), status);

    static async Task<IResult> SignIn(HttpContext http, IAntiforgery antiforgery, ICredentialValidator credentials, CancellationToken ct)
    {
        if (!http.Request.HasFormContentType) return Layout.Message(http, "Sign in", 400, "Sign in with the form at /ui/signin.");
        var form = await http.Request.ReadFormAsync(ct);
        if (!await antiforgery.IsRequestValidAsync(http))
            return Layout.Message(http, "Form expired", 403, "This sign-in form expired or did not come from this site. Nothing was changed: reload /ui/signin and try again.");
        var user = form["user"].ToString().Trim();
        var password = form["password"].ToString();
        var returnUrl = form["returnUrl"].ToString();
        if (user.Length == 0 || password.Length == 0)
            return Form(http, returnUrl, user, "Give both your user name and your password.", 400);
        ClaimsPrincipal? principal;
        try { principal = await credentials.ValidatePasswordAsync(user, password, ct); }
        catch (Platform.Contracts.AccountDisabledException disabled) { return Form(http, returnUrl, user, disabled.Detail, 403); }
        if (principal is null)
            return Form(http, returnUrl, user, "The user name or the password is wrong. After five wrong passwords in a minute, each further try waits longer.", 401);
        var identity = new ClaimsIdentity(principal.Claims, WebModule.Scheme, ClaimTypes.Name, ClaimTypes.Role);
        await http.SignInAsync(WebModule.Scheme, new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = false, AllowRefresh = true });
        return Results.Redirect(LocalPath(returnUrl));
    }

    static async Task<IResult> SignOut(HttpContext http, IAntiforgery antiforgery)
    {
        var session = await http.AuthenticateAsync(WebModule.Scheme);
        if (session.Succeeded)
        {
            http.User = session.Principal!;
            if (!await antiforgery.IsRequestValidAsync(http))
                return Layout.Message(http, "Form expired", 403, "This sign-out form did not come from this dashboard; you are still signed in. Use the Sign out button.");
            await http.SignOutAsync(WebModule.Scheme);
        }
        return Results.Redirect("/ui/signin");
    }

    /// <summary>Only a path of this site (never another host: no open redirect).</summary>
    static string LocalPath(string? url) =>
        url is { Length: > 1 } && url[0] == '/' && url[1] is not ('/' or '\\') && !url.Contains("://") ? url : "/ui/instances";
}
