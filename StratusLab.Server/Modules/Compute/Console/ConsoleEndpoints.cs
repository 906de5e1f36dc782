using System.Globalization;
using System.Security.Claims;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute.Console;

/// <summary>
/// The serial console of an instance: its log (GET …/console, <c>?tail=N</c>), the log followed live as server-sent events
/// (<c>?follow=true</c>, or <c>Accept: text/event-stream</c>), and the interactive serial port over a WebSocket (…/console/ws).
/// </summary>
internal static class ConsoleEndpoints
{
    public const int MaxTail = 100_000;

    public static async Task<IResult> GetConsole(long id, HttpContext http, ClaimsPrincipal principal, ComputeStore store, ConsoleLogs consoles,
        string? tail, string? follow, CancellationToken ct)
    {
        int? lines = null;
        if (tail is not null)
        {
            if (!int.TryParse(tail, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > MaxTail)
                throw ApiException.BadRequest("tail", $"'tail' = '{Validate.Trim(tail)}' is not a number of lines; give a whole number from 1 to {MaxTail}, like ?tail=50.");
            lines = n;
        }
        var following = follow switch
        {
            null => http.Request.Headers.Accept.Any(a => a?.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase) == true),
            "true" or "1" or "yes" => true,
            "false" or "0" or "no" => false,
            _ => throw ApiException.BadRequest("follow", $"'follow' = '{Validate.Trim(follow)}' is not accepted; accepted values: true, false."),
        };
        await ComputeEndpoints.VisibleAsync(id, principal.ToCaller(), store, Operation.Use);
        if (!following) return TypedResults.Text(consoles.Tail(id, lines), "text/plain; charset=utf-8");
        await FollowAsync(id, http, store, consoles, lines ?? 100, ct);
        return TypedResults.Empty;
    }

    /// <summary>Server-sent events: one <c>console</c> event per line, the last <paramref name="lines"/> first; <c>end</c> once the instance has ended.</summary>
    static async Task FollowAsync(long id, HttpContext http, ComputeStore store, ConsoleLogs consoles, int lines, CancellationToken ct)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        var offset = consoles.Length(id);
        var pending = consoles.Tail(id, lines);
        var quietSince = DateTime.UtcNow;
        var keepAlive = DateTime.UtcNow;
        try
        {
            await http.Response.WriteAsync(": stratuslab console\n\n", ct);
            while (!ct.IsCancellationRequested)
            {
                var cut = pending.LastIndexOf('\n');
                if (cut >= 0)
                {
                    foreach (var line in pending[..cut].Split('\n'))
                        await http.Response.WriteAsync($"event: console\ndata: {line}\n\n", ct);
                    pending = pending[(cut + 1)..];
                    await http.Response.Body.FlushAsync(ct);
                    quietSince = DateTime.UtcNow;
                }
                else if (DateTime.UtcNow - keepAlive > TimeSpan.FromSeconds(15))
                {
                    await http.Response.WriteAsync(": keep-alive\n\n", ct);
                    await http.Response.Body.FlushAsync(ct);
                    keepAlive = DateTime.UtcNow;
                }
                // The stream ends once the instance has ended and its log has been quiet for a second.
                if (DateTime.UtcNow - quietSince > TimeSpan.FromSeconds(1) && await EndedAsync(id, store) is { } state)
                {
                    if (pending.Length > 0) await http.Response.WriteAsync($"event: console\ndata: {pending}\n\n", ct);
                    await http.Response.WriteAsync($"event: end\ndata: {state}\n\n", ct);
                    await http.Response.Body.FlushAsync(ct);
                    return;
                }
                await Task.Delay(200, ct);
                pending += consoles.ReadFrom(id, offset, out offset);
            }
        }
        catch (OperationCanceledException) { }
    }

    static async Task<string?> EndedAsync(long id, ComputeStore store)
    {
        var row = await store.GetAsync(id);
        return row is null ? "DELETED" : row.StateValue is InstanceState.Done or InstanceState.Failed ? row.State : null;
    }

    /// <summary>The serial port of a running QEMU VM (here or on an SSH node), bridged byte for byte to a WebSocket (binary frames both ways).</summary>
    public static async Task<IResult> ConnectConsole(long id, HttpContext http, ClaimsPrincipal principal, IInstances instances, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!http.WebSockets.IsWebSocketRequest)
            throw ApiException.BadRequest("", "This is a WebSocket endpoint: connect with a WebSocket client, e.g. 'stratuslab connect-instance --console ID'. The console log is at GET /api/v1/instances/{id}/console.");
        // Opened before the upgrade, so a refusal (404, 409 with the reason) is an HTTP answer, not a closed socket.
        await using var serial = await instances.OpenSerialConsoleAsync(principal.ToCaller(), id, ct);
        using var ws = await http.WebSockets.AcceptWebSocketAsync(WebSocketBridge.SubProtocol(http));
        loggers.CreateLogger("StratusLab.Console").LogInformation("Instance {Id}: interactive console opened by {User}", id, principal.Identity?.Name);
        await WebSocketBridge.PipeAsync(ws, serial, ct);
        return TypedResults.Empty;
    }
}
