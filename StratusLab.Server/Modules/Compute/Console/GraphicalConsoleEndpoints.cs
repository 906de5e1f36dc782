using System.Security.Claims;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute.Console;

/// <summary>The graphical console of an instance: its screen's RFB (VNC) stream over a WebSocket (…/vnc), binary frames both ways, for noVNC or any RFB client.</summary>
internal static class GraphicalConsoleEndpoints
{
    public static async Task<IResult> ConnectGraphicalConsole(long id, HttpContext http, ClaimsPrincipal principal, IInstances instances, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!http.WebSockets.IsWebSocketRequest)
            throw ApiException.BadRequest("", $"This is a WebSocket endpoint carrying the instance's screen as RFB (VNC): connect with a WebSocket client such as noVNC, or open the dashboard's page /ui/instances/{id}/screen.");
        // Opened before the upgrade, so a refusal (404, 409 with the reason) is an HTTP answer, not a closed socket.
        await using var screen = await instances.OpenGraphicalConsoleAsync(principal.ToCaller(), id, ct);
        using var ws = await http.WebSockets.AcceptWebSocketAsync(WebSocketBridge.SubProtocol(http));
        loggers.CreateLogger("StratusLab.Console").LogInformation("Instance {Id}: graphical console opened by {User}", id, principal.Identity?.Name);
        await WebSocketBridge.PipeAsync(ws, screen, ct);
        return TypedResults.Empty;
    }
}
