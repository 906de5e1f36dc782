using System.Net.Sockets;
using System.Net.WebSockets;

namespace StratusLab.Server.Platform.Http;

/// <summary>
/// Pipes an accepted WebSocket and a byte stream (a VM's screen or serial port) both ways, binary frames on the WebSocket
/// side, until either side closes; then closes the other and disposes nothing it was not given.
/// </summary>
internal static class WebSocketBridge
{
    static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The subprotocol to answer with: "binary" when the client offers it (noVNC before 1.3 asks for it), else none.</summary>
    public static string? SubProtocol(HttpContext http) =>
        http.WebSockets.WebSocketRequestedProtocols.Contains("binary") ? "binary" : null;

    public static async Task PipeAsync(WebSocket ws, Stream stream, CancellationToken ct)
    {
        using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var toStream = ToStreamAsync(ws, stream, done.Token);
        var toClient = ToWebSocketAsync(stream, ws, done.Token);
        try
        {
            if (await Task.WhenAny(toStream, toClient) == toStream)
            {
                // The browser left (or sent garbage): the stream is closed by its owner's dispose; answer the close.
                if (ws.State == WebSocketState.CloseReceived)
                    await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "closed", CancellationToken.None).WaitAsync(CloseTimeout, CancellationToken.None);
            }
            else if (ws.State == WebSocketState.Open)
            {
                await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "the VM's side closed", CancellationToken.None).WaitAsync(CloseTimeout, CancellationToken.None);
                await toStream.WaitAsync(CloseTimeout, CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or SocketException or IOException or TimeoutException or OperationCanceledException) { }
        finally
        {
            await done.CancelAsync();
            // Cancelling a pending WebSocket receive aborts the socket: both pumps end here, before the caller disposes the stream.
            if (ws.State is not (WebSocketState.Closed or WebSocketState.Aborted)) ws.Abort();
            try { await Task.WhenAll(toStream, toClient).WaitAsync(CloseTimeout, CancellationToken.None); }
            catch (TimeoutException) { }
        }
    }

    static async Task ToStreamAsync(WebSocket ws, Stream stream, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var received = await ws.ReceiveAsync(buffer, ct);
                if (received.MessageType == WebSocketMessageType.Close) return;
                await stream.WriteAsync(buffer.AsMemory(0, received.Count), ct);
            }
        }
        catch (Exception e) when (e is WebSocketException or SocketException or IOException or ObjectDisposedException or OperationCanceledException) { }
    }

    static async Task ToWebSocketAsync(Stream stream, WebSocket ws, CancellationToken ct)
    {
        // A screen update can be megabytes; frames of up to 64 KiB keep the copy cheap.
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer, ct);
                if (n == 0) return;
                await ws.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Binary, true, ct);
            }
        }
        catch (Exception e) when (e is WebSocketException or SocketException or IOException or ObjectDisposedException or OperationCanceledException) { }
    }
}
