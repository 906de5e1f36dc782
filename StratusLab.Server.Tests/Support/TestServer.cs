using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Platform;

namespace StratusLab.Server.Tests.Support;

/// <summary>The real server in-process on a real Kestrel at 127.0.0.1:&lt;free port&gt;, with a temp data dir.</summary>
public sealed class TestServer : IAsyncDisposable
{
    public WebApplication App { get; }
    public string DataDir { get; }
    public Uri BaseAddress { get; }
    public string AdminToken { get; }
    readonly bool _ownsDataDir;

    TestServer(WebApplication app, string dataDir, bool ownsDataDir)
    {
        App = app;
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
        BaseAddress = new Uri(app.Urls.First());
        AdminToken = File.ReadAllText(Path.Combine(dataDir, "admin.token")).Trim();
    }

    /// <summary>Starts a server. Extra settings are configuration keys ("Compute:Driver" = "simulated").</summary>
    public static async Task<TestServer> StartAsync(IDictionary<string, string?>? settings = null, string? dataDir = null,
        Action<WebApplicationBuilder>? configure = null)
    {
        var owns = dataDir is null;
        dataDir ??= TempDir.Create("server");
        var values = new Dictionary<string, string?>
        {
            ["Compute:Driver"] = "simulated",
            ["Compute:SimulatedDelayMs"] = "0",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) values[k] = v;
        var app = await Program.BuildServerAsync(["--data-dir", dataDir, "--urls", "http://127.0.0.1:0"], b =>
        {
            b.Configuration.AddInMemoryCollection(values);
            b.Logging.ClearProviders();
            b.Logging.AddProvider(new TestLoggerProvider());
            if (TestLoggerProvider.DebugFile is not null) b.Logging.AddFilter<TestLoggerProvider>(null, LogLevel.Debug);
            configure?.Invoke(b);
        });
        await app.StartAsync();
        return new TestServer(app, dataDir, owns);
    }

    /// <summary>An HTTP client with the given token (the admin's by default; null for none).</summary>
    public HttpClient Client(string? token = "admin")
    {
        var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var t = token == "admin" ? AdminToken : token;
        if (t is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", t);
        return http;
    }

    /// <summary>Creates a user and returns a token for it.</summary>
    public async Task<string> CreateUserAsync(string name, string role = "user")
    {
        using var admin = Client();
        var created = await admin.PostAsJsonAsync("/api/v1/users", new { name, password = "password-" + name, role });
        Assert.That((int)created.StatusCode, Is.EqualTo(201), await created.Content.ReadAsStringAsync());
        var token = await admin.PostAsJsonAsync("/api/v1/tokens", new { user = name });
        Assert.That((int)token.StatusCode, Is.EqualTo(201), await token.Content.ReadAsStringAsync());
        return (await token.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        if (_ownsDataDir) TempDir.Delete(DataDir);
    }
}

/// <summary>Response helpers for API tests.</summary>
public static class Http
{
    public static async Task<JsonNode> Json(this HttpResponseMessage response, int expectedStatus)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(expectedStatus), $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: {text}");
        return text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!;
    }

    /// <summary>Asserts an RFC 9457 problem with the status, and returns it.</summary>
    public static async Task<JsonNode> Problem(this HttpResponseMessage response, int expectedStatus)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(expectedStatus), text);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"), text);
        var node = JsonNode.Parse(text)!;
        Assert.That(node["detail"]?.GetValue<string>(), Is.Not.Null.And.Not.Empty, "a problem must say what was wrong");
        return node;
    }

    public static StringContent RawJson(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}

/// <summary>Temp directories that tests remove after themselves.</summary>
public static class TempDir
{
    public static string Create(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), "stratuslab-tests", $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)]);
        Directory.CreateDirectory(path);
        return path;
    }

    public static void Delete(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
    }
}
