using System.Net;
using System.Net.Sockets;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// A TCP relay on 127.0.0.1 to another local port, that can be cut (listener and open connections closed) and restored
/// on the same port: a peer that stops answering and comes back, without stopping the peer itself.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    readonly int _target;
    TcpListener? _listener;
    CancellationTokenSource _cut = new();
    readonly List<TcpClient> _open = [];

    public int Port { get; private set; }

    /// <summary>
    /// When set: a connection whose request contains this text reaches the target, but the target's answer is swallowed
    /// and the relay is cut as it arrives (a peer that acted on a request and went silent before its answer got back).
    /// </summary>
    public string? LoseAnswerTo { get; set; }

    /// <summary>How many answers were swallowed so.</summary>
    public int AnswersLost => _lost;

    int _lost;

    public TcpRelay(int target)
    {
        _target = target;
        Restore();
    }

    /// <summary>Listens again (on the same port after a cut).</summary>
    public void Restore()
    {
        _cut = new CancellationTokenSource();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync(_listener, _cut.Token);
    }

    /// <summary>Stops listening and drops every open connection: the target no longer answers through the relay.</summary>
    public void Cut()
    {
        _cut.Cancel();
        _listener?.Stop();
        lock (_open)
        {
            foreach (var c in _open) c.Dispose();
            _open.Clear();
        }
    }

    async Task AcceptAsync(TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient inbound;
            try { inbound = await listener.AcceptTcpClientAsync(ct); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            var outbound = new TcpClient();
            try { await outbound.ConnectAsync(IPAddress.Loopback, _target, ct); }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                inbound.Dispose();
                outbound.Dispose();
                continue;
            }
            lock (_open) { _open.Add(inbound); _open.Add(outbound); }
            _ = PumpAsync(inbound, outbound, ct);
        }
    }

    async Task PumpAsync(TcpClient a, TcpClient b, CancellationToken ct)
    {
        try
        {
            var sa = a.GetStream();
            var sb = b.GetStream();
            var seen = new List<byte>();
            var lose = false;
            async Task RequestsAsync()
            {
                var buffer = new byte[16384];
                int n;
                while ((n = await sa.ReadAsync(buffer, ct)) > 0)
                {
                    // Read at each request (a kept-alive connection may predate the setting); only a marker's length is kept.
                    if (LoseAnswerTo is { } text && !lose)
                    {
                        var marker = System.Text.Encoding.ASCII.GetBytes(text);
                        seen.AddRange(buffer.AsSpan(0, n));
                        if (System.MemoryExtensions.IndexOf(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(seen), marker) >= 0) lose = true;
                        if (seen.Count > marker.Length) seen.RemoveRange(0, seen.Count - marker.Length);
                    }
                    await sb.WriteAsync(buffer.AsMemory(0, n), ct);
                }
            }
            async Task AnswersAsync()
            {
                var buffer = new byte[16384];
                int n;
                while ((n = await sb.ReadAsync(buffer, ct)) > 0)
                {
                    if (lose)
                    {
                        Interlocked.Increment(ref _lost);
                        Cut();
                        return;
                    }
                    await sa.WriteAsync(buffer.AsMemory(0, n), ct);
                }
            }
            await Task.WhenAny(RequestsAsync(), AnswersAsync());
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException) { }
        finally
        {
            a.Dispose();
            b.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        Cut();
        return ValueTask.CompletedTask;
    }
}
