using System.Globalization;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Claims;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
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

    /// <summary>The serial port of a running QEMU VM, bridged byte for byte to a WebSocket (binary frames both ways).</summary>
    public static async Task<IResult> ConnectConsole(long id, HttpContext http, ClaimsPrincipal principal, ComputeStore store, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!http.WebSockets.IsWebSocketRequest)
            throw ApiException.BadRequest("", "This is a WebSocket endpoint: connect with a WebSocket client, e.g. 'stratuslab connect-instance --console ID'. The console log is at GET /api/v1/instances/{id}/console.");
        // Typing on the console controls the machine: it takes the right to manage the instance, not only to see it.
        var row = await ComputeEndpoints.VisibleAsync(id, principal.ToCaller(), store, Operation.Manage);
        if (row.StateValue is not (InstanceState.Running or InstanceState.Suspended or InstanceState.Boot))
            throw ApiException.Conflict($"Instance {id} is {row.State}: the interactive console exists while the VM runs. Its log stays readable: GET /api/v1/instances/{id}/console.");
        var socketPath = QemuDriver.ConsoleSocketOf(new VmRef(row.Id, row.VmDir, (int?)row.Pid));
        if (row.Driver != "qemu" || socketPath is null || !File.Exists(socketPath))
            throw ApiException.Conflict($"Instance {id} runs on the {row.Driver} driver, which has no serial port to connect to; read its log at GET /api/v1/instances/{id}/console.");
        var serial = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(ct);
            connect.CancelAfter(TimeSpan.FromSeconds(5));
            await serial.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), connect.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            serial.Dispose();
            throw ApiException.Conflict($"The serial console of instance {id} cannot be reached ({e.Message}); the VM may be stopping. Try again, or read its log.");
        }
        using (serial)
        using (var ws = await http.WebSockets.AcceptWebSocketAsync())
        {
            loggers.CreateLogger("StratusLab.Console").LogInformation("Instance {Id}: interactive console opened by {User}", id, principal.Identity?.Name);
            using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var toGuest = PumpToSerialAsync(ws, serial, done.Token);
            var toClient = PumpToWebSocketAsync(serial, ws, done.Token);
            // Cancelling a pending WebSocket receive aborts the socket, so each side is ended by closing, not cancelling.
            try
            {
                if (await Task.WhenAny(toGuest, toClient) == toGuest)
                {
                    serial.Shutdown(SocketShutdown.Both);
                    if (ws.State == WebSocketState.CloseReceived)
                        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "console closed", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
                }
                else if (ws.State == WebSocketState.Open)
                {
                    await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "the VM's serial port closed", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
                    await toGuest.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
                }
            }
            catch (Exception e) when (e is WebSocketException or SocketException or TimeoutException or OperationCanceledException) { }
            await done.CancelAsync();
        }
        return TypedResults.Empty;
    }

    static async Task PumpToSerialAsync(WebSocket ws, Socket serial, CancellationToken ct)
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var received = await ws.ReceiveAsync(buffer, ct);
                if (received.MessageType == WebSocketMessageType.Close) return;
                await serial.SendAsync(buffer.AsMemory(0, received.Count), SocketFlags.None, ct);
            }
        }
        catch (Exception e) when (e is WebSocketException or SocketException or OperationCanceledException) { }
    }

    static async Task PumpToWebSocketAsync(Socket serial, WebSocket ws, CancellationToken ct)
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = await serial.ReceiveAsync(buffer, SocketFlags.None, ct);
                if (n == 0) return;
                await ws.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Binary, true, ct);
            }
        }
        catch (Exception e) when (e is WebSocketException or SocketException or OperationCanceledException) { }
    }
}
