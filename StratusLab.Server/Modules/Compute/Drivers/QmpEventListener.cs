using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>Instance ids whose guest kernel panicked (QMP GUEST_PANICKED), for the lifecycle to fail them.</summary>
internal sealed class GuestPanics
{
    readonly Channel<long> _channel = Channel.CreateUnbounded<long>();

    public void Report(long instanceId) => _channel.Writer.TryWrite(instanceId);

    public ChannelReader<long> Reader => _channel.Reader;
}

/// <summary>
/// Listens on a VM's second QMP monitor (events only, never commands) until QEMU closes it, and reports GUEST_PANICKED.
/// It runs beside the command connection so that a slow command never delays an event, nor an event a command.
/// </summary>
internal static class QmpEventListener
{
    public static async Task ListenAsync(long instanceId, string socketPath, GuestPanics panics, ILogger logger, CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            connect.CancelAfter(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), connect.Token);
        }
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        // Events flow once capabilities are negotiated; the greeting and the empty return are skipped below.
        await stream.WriteAsync(Encoding.UTF8.GetBytes("{\"execute\":\"qmp_capabilities\"}\n"), ct);
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            JsonNode? message;
            try { message = JsonNode.Parse(line); }
            catch (JsonException) { continue; }
            var name = message?["event"]?.GetValue<string>();
            if (name is null) continue;
            logger.LogDebug("Instance {Id}: QMP event {Event}", instanceId, name);
            if (name == "GUEST_PANICKED") panics.Report(instanceId);
        }
    }
}
