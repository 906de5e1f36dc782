using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Http;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// An instance's graphical console in the dashboard: the screen page (noVNC, vendored, loaded as ES modules from the
/// embedded assets) and the WebSocket it connects to, authorized by the session cookie and this site's origin, which
/// carries the VM's RFB stream through Compute's <see cref="IInstances.OpenGraphicalConsoleAsync"/>.
/// </summary>
internal static class ScreenPages
{
    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/instances/{id:long}/screen", ShowScreen);
        pages.MapGet("/instances/{id:long}/vnc", ConnectScreen);
    }

    static async Task<IResult> ShowScreen(long id, HttpContext http, IInstances instances, CancellationToken ct)
    {
        InstanceView i;
        try { i = await instances.GetAsync(http.User.ToCaller(), id, ct); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return Layout.Message(http, "Not found", p.Status, p.Detail); }
        var live = i.State is "RUNNING" or "BOOT" or "SUSPENDED";
        var reason = !live ? $"Instance {i.Name} is {i.State}: its screen exists while the VM runs."
            : i.Driver == "simulated" ? $"Instance {i.Name} runs on the simulated driver, which runs no VM and so has no screen."
            : null;
        var body = H($"""
            <div class="toolbar"><a href="/ui/instances/{i.Id}">Back to {i.Name}</a>
            {If(reason is null, H($"""<button type="button" id="send-cad">Send Ctrl+Alt+Del</button>"""))}</div>
            {(reason is null
                ? H($"""
                    <p class="hint" id="screen-status" aria-live="polite">Connecting…</p>
                    <div id="screen" class="screen" role="application" aria-label="Screen of {i.Name}" data-ws="/ui/instances/{i.Id}/vnc"></div>
                    <p class="hint">Keyboard and mouse go to the VM while the screen has the focus (click it). The serial console is on <a href="/ui/instances/{i.Id}">the instance's page</a>.</p>
                    """)
                : H($"""<p class="problem" id="screen-status" role="alert">{reason}</p>"""))}
            """);
        return reason is null
            ? Layout.Page(http, $"Screen of {i.Name}", body, 200, "instances", "/ui/assets/screen.css", "/ui/assets/screen.js")
            : Layout.Page(http, $"Screen of {i.Name}", body, 409, "instances");
    }

    /// <summary>The RFB stream over a WebSocket. The dashboard pages skip the session's origin check (they check forms' tokens), so this does it.</summary>
    static async Task<IResult> ConnectScreen(long id, HttpContext http, IInstances instances, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!http.WebSockets.IsWebSocketRequest)
            return Layout.Message(http, "Not a page", 400, $"This address carries the screen of instance {id} over a WebSocket; open /ui/instances/{id}/screen instead.");
        var origin = http.Request.Headers.Origin.ToString();
        if (origin.Length > 0 && !(Uri.TryCreate(origin, UriKind.Absolute, out var o) && string.Equals(o.Authority, http.Request.Host.Value, StringComparison.OrdinalIgnoreCase)))
            return Results.Problem(statusCode: 403, detail: $"The screen's WebSocket accepts only pages of this site (origin {http.Request.Host.Value}), not {origin}; open /ui/instances/{id}/screen here.");
        Stream screen;
        try { screen = await instances.OpenGraphicalConsoleAsync(http.User.ToCaller(), id, ct); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return Results.Problem(statusCode: p.Status, detail: p.Detail); }
        await using (screen)
        {
            using var ws = await http.WebSockets.AcceptWebSocketAsync(WebSocketBridge.SubProtocol(http));
            loggers.CreateLogger("StratusLab.Console").LogInformation("Instance {Id}: graphical console opened in the dashboard by {User}", id, http.User.Identity?.Name);
            await WebSocketBridge.PipeAsync(ws, screen, ct);
        }
        return Results.Empty;
    }
}
