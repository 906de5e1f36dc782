using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using StratusLab.Server.Tests.Platform;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// The real binary serving inside a network namespace (so its QEMU, bridges, dnsmasq and nft rules live there), on
/// 127.0.0.1:8440 of that namespace for its guests and on a Unix socket that the test reaches without any network.
/// It dies with the namespace.
/// </summary>
public sealed class NamespacedServer : IDisposable
{
    readonly StringBuilder _log = new();

    NamespacedServer(Process process, HttpClient http, string socket)
    {
        Process = process;
        Http = http;
        _socket = socket;
    }

    readonly string _socket;

    public Process Process { get; }

    /// <summary>An admin client over the Unix socket.</summary>
    public HttpClient Http { get; }

    /// <summary>Everything the server printed so far.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    public static async Task<NamespacedServer> StartAsync(NetworkNamespace ns, string dataDir, IReadOnlyDictionary<string, string> settings)
    {
        var socket = Path.Combine(dataDir, "api.sock");
        var buffer = new StringBuilder();
        var process = ns.Start("dotnet", [ServerProcessTests.BinaryPath(), "serve", "--data-dir", dataDir, "--urls", $"http://127.0.0.1:8440;http://unix:{socket}"],
            settings.ToDictionary(kv => "STRATUSLAB__" + kv.Key.Replace(":", "__"), kv => kv.Value),
            line =>
            {
                lock (buffer) buffer.AppendLine(line);
                TestContext.Progress.WriteLine("[server] " + line);
            });
        var http = SocketClient(socket);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            Assert.That(process.HasExited, Is.False, "the server exited during start-up:\n" + buffer);
            try
            {
                if ((await http.GetAsync("/health")).IsSuccessStatusCode) break;
            }
            catch (HttpRequestException) { }
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the server did not answer on its socket:\n" + buffer);
            await Task.Delay(200);
        }
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(dataDir, "admin.token")).Trim());
        var server = new NamespacedServer(process, http, socket);
        lock (buffer) server._log.Append(buffer);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        return server;
    }

    static HttpClient SocketClient(string socket)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try { await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct); }
                catch { s.Dispose(); throw; }
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri("http://localhost"), Timeout = TimeSpan.FromSeconds(230) };
    }

    /// <summary>A new user (role user) and a client over the Unix socket with that user's token.</summary>
    public async Task<HttpClient> UserClientAsync(string name)
    {
        var created = await Http.PostAsJsonAsync("/api/v1/users", new { name, password = "password-" + name, role = "user" });
        Assert.That((int)created.StatusCode, Is.EqualTo(201), await created.Content.ReadAsStringAsync());
        var token = await Http.PostAsJsonAsync("/api/v1/tokens", new { user = name });
        Assert.That((int)token.StatusCode, Is.EqualTo(201), await token.Content.ReadAsStringAsync());
        var client = SocketClient(_socket);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await token.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonObject>())!["token"]!.GetValue<string>());
        return client;
    }

    /// <summary>Stops the server as an operator would (SIGTERM; SIGKILL after 30 s); its VMs, bridges and rules stay.</summary>
    public async Task StopAsync()
    {
        if (!Process.HasExited) await HostTools.RunAsync("kill", ["-TERM", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await Process.WaitForExitAsync(wait.Token); }
        catch (OperationCanceledException) { Process.Kill(); Process.WaitForExit(10_000); }
        if (File.Exists(_socket)) File.Delete(_socket);
    }

    public void Dispose()
    {
        Http.Dispose();
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.WaitForExit(10_000);
        Process.Dispose();
    }
}

/// <summary>Two namespaces: the server's, and "the outside" behind a veth pair (the server's upstream is 198.51.100.1, the outside 198.51.100.2).</summary>
public static class NamespacedUpstream
{
    public const string Upstream = "198.51.100.1", Outside = "198.51.100.2";

    public static async Task ConnectAsync(NetworkNamespace server, NetworkNamespace outside)
    {
        var (exit, _, error) = await HostTools.RunAsync("ip", ["link", "add", "slup0", "netns", server.Name, "type", "veth", "peer", "name", "slup1", "netns", outside.Name], TimeSpan.FromSeconds(30));
        Assert.That(exit, Is.Zero, error);
        await server.RunAsync("ip", ["addr", "add", Upstream + "/24", "dev", "slup0"]);
        await server.RunAsync("ip", ["link", "set", "slup0", "up"]);
        await outside.RunAsync("ip", ["addr", "add", Outside + "/24", "dev", "slup1"]);
        await outside.RunAsync("ip", ["link", "set", "slup1", "up"]);
    }
}
