using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>A QEMU Machine Protocol session over a unix socket: greeting, qmp_capabilities, then commands.</summary>
internal sealed class QmpClient : IAsyncDisposable
{
    readonly Socket _socket;
    readonly StreamReader _reader;
    readonly Stream _stream;

    QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    public static async Task<QmpClient> ConnectAsync(string socketPath, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
            var client = new QmpClient(socket);
            var greeting = await client.ReadMessageAsync(ct);
            if (greeting["QMP"] is null) throw new HypervisorException($"unexpected QMP greeting: {greeting.ToJsonString()}");
            await client.ExecuteAsync("qmp_capabilities", null, ct);
            return client;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Runs one command and returns its "return" value; a QMP error becomes a <see cref="HypervisorException"/>.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments, CancellationToken ct)
    {
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null) request["arguments"] = arguments;
        var bytes = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        await _stream.WriteAsync(bytes, ct);
        while (true)
        {
            var message = await ReadMessageAsync(ct);
            if (message["event"] is not null) continue;
            if (message["error"] is { } error)
                throw new QmpCommandException(command, error["class"]?.GetValue<string>() ?? "",
                    $"QMP {command} failed: {error["desc"]?.GetValue<string>() ?? error.ToJsonString()}");
            if (message.ContainsKey("return")) return message["return"];
        }
    }

    async Task<JsonObject> ReadMessageAsync(CancellationToken ct)
    {
        var line = await _reader.ReadLineAsync(ct) ?? throw new HypervisorException("QMP connection closed by QEMU");
        try { return JsonNode.Parse(line)!.AsObject(); }
        catch (JsonException e) { throw new HypervisorException($"unreadable QMP message: {line}", e); }
    }

    public async ValueTask DisposeAsync()
    {
        _reader.Dispose();
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}

/// <summary>QEMU answered a command with an error; <see cref="ErrorClass"/> is QMP's machine-readable class (e.g. DeviceNotFound).</summary>
internal sealed class QmpCommandException(string command, string errorClass, string message) : HypervisorException(message)
{
    public string Command { get; } = command;
    public string ErrorClass { get; } = errorClass;
}
