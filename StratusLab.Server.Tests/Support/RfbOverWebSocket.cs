using System.Buffers.Binary;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace StratusLab.Server.Tests.Support;

/// <summary>What an RFB server says about its screen in ServerInit.</summary>
public sealed record RfbServerInit(string Banner, IReadOnlyList<byte> SecurityTypes, int Width, int Height, int BitsPerPixel, string Name);

/// <summary>
/// The client side of an RFB 3.8 handshake (RFC 6143: version, security type None, ClientInit, ServerInit) over a
/// WebSocket that carries the byte stream in binary frames cut anywhere, as noVNC speaks it.
/// </summary>
public sealed class RfbOverWebSocket(WebSocket ws)
{
    readonly List<byte> _pending = [];

    public static async Task<RfbServerInit> HandshakeAsync(WebSocket ws, CancellationToken ct) => await new RfbOverWebSocket(ws).RunAsync(ct);

    async Task<RfbServerInit> RunAsync(CancellationToken ct)
    {
        var banner = Encoding.ASCII.GetString(await ReadAsync(12, ct));
        await SendAsync(Encoding.ASCII.GetBytes("RFB 003.008\n"), ct);
        var count = (await ReadAsync(1, ct))[0];
        if (count == 0)
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(await ReadAsync(4, ct));
            throw new AssertionException("the RFB server refused the connection: " + Encoding.UTF8.GetString(await ReadAsync((int)length, ct)));
        }
        var types = await ReadAsync(count, ct);
        if (!types.Contains((byte)1)) throw new AssertionException($"the RFB server offers no security type None (1), only {string.Join(", ", types)}");
        await SendAsync([1], ct);
        var result = BinaryPrimitives.ReadUInt32BigEndian(await ReadAsync(4, ct));
        if (result != 0) throw new AssertionException($"the RFB security handshake failed with result {result}");
        await SendAsync([1], ct); // ClientInit: shared
        var init = await ReadAsync(24, ct);
        var nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(init.AsSpan(20));
        var name = Encoding.UTF8.GetString(await ReadAsync(nameLength, ct));
        return new RfbServerInit(banner, types, BinaryPrimitives.ReadUInt16BigEndian(init), BinaryPrimitives.ReadUInt16BigEndian(init.AsSpan(2)), init[4], name);
    }

    Task SendAsync(byte[] bytes, CancellationToken ct) => ws.SendAsync(bytes, WebSocketMessageType.Binary, true, ct);

    async Task<byte[]> ReadAsync(int count, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        while (_pending.Count < count)
        {
            var received = await ws.ReceiveAsync(buffer, ct);
            if (received.MessageType == WebSocketMessageType.Close)
                throw new AssertionException($"the WebSocket closed after {_pending.Count} of {count} expected bytes: {received.CloseStatus} {received.CloseStatusDescription}");
            if (received.MessageType != WebSocketMessageType.Binary) throw new AssertionException("RFB bytes must come in binary frames, got " + received.MessageType);
            _pending.AddRange(buffer.AsSpan(0, received.Count));
        }
        var bytes = _pending.GetRange(0, count).ToArray();
        _pending.RemoveRange(0, count);
        return bytes;
    }
}

/// <summary>A WebSocket upgrade request sent by hand, to read a refusal's status and problem+json body (ClientWebSocket gives neither body).</summary>
public static class WebSocketUpgrade
{
    public static async Task<(int Status, string Body)> RefusalAsync(Uri baseAddress, string path, IDictionary<string, string>? headers = null, int timeoutSeconds = 30)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(baseAddress.Host, baseAddress.Port, cancel.Token);
        var request = new StringBuilder()
            .Append($"GET {path} HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
            .Append("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ").Append(Convert.ToBase64String(Guid.NewGuid().ToByteArray())).Append("\r\n");
        foreach (var (name, value) in headers ?? new Dictionary<string, string>()) request.Append($"{name}: {value}\r\n");
        request.Append("\r\n");
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()), cancel.Token);
        // Read the head, then the body by its Content-Length (the server keeps the connection open).
        var received = new List<byte>();
        var buffer = new byte[8192];
        int headEnd;
        while ((headEnd = IndexOf(received, "\r\n\r\n"u8.ToArray())) < 0)
        {
            var n = await stream.ReadAsync(buffer, cancel.Token);
            if (n == 0) break;
            received.AddRange(buffer.AsSpan(0, n));
        }
        if (headEnd < 0) throw new AssertionException("no HTTP answer to the upgrade request: " + Encoding.UTF8.GetString(received.ToArray()));
        var head = Encoding.ASCII.GetString(received.GetRange(0, headEnd).ToArray());
        var status = int.Parse(head.Split(' ')[1]);
        var lengthLine = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        var length = lengthLine is null ? 0 : int.Parse(lengthLine["Content-Length:".Length..].Trim());
        var chunked = head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase);
        while (received.Count < headEnd + 4 + length || chunked && IndexOf(received, "\r\n0\r\n\r\n"u8.ToArray()) < 0)
        {
            var n = await stream.ReadAsync(buffer, cancel.Token);
            if (n == 0) break;
            received.AddRange(buffer.AsSpan(0, n));
        }
        var body = Encoding.UTF8.GetString(received.GetRange(headEnd + 4, received.Count - headEnd - 4).ToArray());
        return (status, chunked ? Dechunk(body) : body);
    }

    /// <summary>A chunked body's data (sizes in hex, each chunk followed by CRLF, a zero-size chunk last).</summary>
    static string Dechunk(string body)
    {
        var data = new StringBuilder();
        var at = 0;
        while (at < body.Length)
        {
            var eol = body.IndexOf("\r\n", at, StringComparison.Ordinal);
            if (eol < 0) break;
            var size = Convert.ToInt32(body[at..eol].Split(';')[0].Trim(), 16);
            if (size == 0) break;
            // Sizes count bytes; problem+json here is ASCII, so bytes and characters agree.
            data.Append(body, eol + 2, size);
            at = eol + 2 + size + 2;
        }
        return data.ToString();
    }

    static int IndexOf(List<byte> haystack, byte[] needle)
    {
        for (var i = 0; i + needle.Length <= haystack.Count; i++)
        {
            var match = true;
            for (var j = 0; j < needle.Length && match; j++) match = haystack[i + j] == needle[j];
            if (match) return i;
        }
        return -1;
    }
}
