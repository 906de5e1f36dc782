using System.Diagnostics;
using System.Net.Http.Headers;
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

    NamespacedServer(Process process, HttpClient http)
    {
        Process = process;
        Http = http;
    }

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
        var http = new HttpClient(handler) { BaseAddress = new Uri("http://localhost"), Timeout = TimeSpan.FromSeconds(230) };
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
        var server = new NamespacedServer(process, http);
        lock (buffer) server._log.Append(buffer);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.AppendLine(e.Data); };
        return server;
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
