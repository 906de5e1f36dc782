using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Cli;

/// <summary>Where the client talks to and with which token; for https, what it trusts (see <see cref="ServerTrust"/>).</summary>
public sealed record ClientSettings(string Endpoint, string? Token, string TokenSource)
{
    /// <summary>A PEM file of CA certificates the server's certificate must chain to (--ca-file, STRATUSLAB_CA_FILE, "caFile").</summary>
    public string? CaFile { get; init; }

    /// <summary>The SHA-256 fingerprint to pin on first use (--accept-fingerprint, STRATUSLAB_ACCEPT_FINGERPRINT).</summary>
    public string? AcceptFingerprint { get; init; }

    /// <summary>User and password for HTTP Basic instead of the token ('stratuslab login').</summary>
    public (string User, string Password)? Basic { get; init; }

    /// <summary>~/.config/stratuslab/client.json (or under $XDG_CONFIG_HOME).</summary>
    public static string ConfigPath()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } x ? x : Path.Combine(home, ".config"), "stratuslab", "client.json");
    }

    /// <summary>Writes the endpoint and token to the client config (mode 600: it holds a secret); returns its path.</summary>
    public static string SaveConfig(string endpoint, string token)
    {
        var path = ConfigPath();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var node = File.Exists(path) ? (JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? []) : [];
        node["endpoint"] = endpoint;
        node["token"] = token;
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    /// <summary>Flags, then STRATUSLAB_ENDPOINT/STRATUSLAB_TOKEN, then ~/.config/stratuslab/client.json, then the local admin.token.</summary>
    public static ClientSettings Resolve(CliArgs args)
    {
        string? fileEndpoint = null, fileToken = null, fileCaFile = null;
        var configPath = ConfigPath();
        if (File.Exists(configPath))
        {
            try
            {
                var node = JsonNode.Parse(File.ReadAllText(configPath));
                fileEndpoint = node?["endpoint"]?.GetValue<string>();
                fileToken = node?["token"]?.GetValue<string>();
                fileCaFile = node?["caFile"]?.GetValue<string>();
            }
            catch (JsonException e)
            {
                throw new CliException($"{configPath} is not valid JSON ({e.Message}); fix it or remove it.");
            }
        }
        var endpoint = args.Option("--endpoint") ?? Env("STRATUSLAB_ENDPOINT") ?? fileEndpoint ?? "http://127.0.0.1:8440";
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new UsageException($"endpoint '{endpoint}' is not an http(s) URL.");
        var caFile = args.Option("--ca-file") ?? Env("STRATUSLAB_CA_FILE") ?? fileCaFile;
        if (caFile is not null && !File.Exists(caFile)) throw new UsageException($"--ca-file: the file '{caFile}' does not exist; give a PEM file of CA certificates.");
        return ResolveToken(args, endpoint, uri, fileToken, configPath) with { CaFile = caFile, AcceptFingerprint = args.Option("--accept-fingerprint") ?? Env("STRATUSLAB_ACCEPT_FINGERPRINT") };
    }

    static ClientSettings ResolveToken(CliArgs args, string endpoint, Uri uri, string? fileToken, string configPath)
    {
        if (args.Option("--token") is { } flag) return new ClientSettings(endpoint, flag, "--token");
        if (Env("STRATUSLAB_TOKEN") is { } env) return new ClientSettings(endpoint, env, "STRATUSLAB_TOKEN");
        if (fileToken is not null) return new ClientSettings(endpoint, fileToken, configPath);
        // A tutorial user on the server's own machine needs no setup: use the local admin token when it is readable.
        var adminToken = Path.Combine(ServerConfiguration.ResolveDataDir(""), "admin.token");
        if (uri.IsLoopback && File.Exists(adminToken))
        {
            try { return new ClientSettings(endpoint, File.ReadAllText(adminToken).Trim(), adminToken); }
            catch (UnauthorizedAccessException) { }
        }
        return new ClientSettings(endpoint, null, "none");
    }

    static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
}

/// <summary>The REST API as the CLI uses it: JSON in and out, problem+json turned into one-line errors.</summary>
public sealed class ApiClient(ClientSettings settings, string? knownServersPath = null) : IDisposable
{
    readonly ServerTrust _trust = new(new Uri(settings.Endpoint), settings.CaFile, settings.AcceptFingerprint, knownServersPath);
    HttpClient? _client;

    HttpClient Http => _client ??= CreateHttp(settings, _trust);

    /// <summary>
    /// An HttpClient for calls the JSON client does not make (streamed transfers, XML): the same endpoint, token and
    /// certificate trust (CA file, pinned fingerprint) as every other call.
    /// </summary>
    public static HttpClient CreateRaw(ClientSettings settings, TimeSpan timeout, string? knownServersPath = null)
    {
        var http = CreateHttp(settings, new ServerTrust(new Uri(settings.Endpoint), settings.CaFile, settings.AcceptFingerprint, knownServersPath));
        http.Timeout = timeout;
        return http;
    }

    static HttpClient CreateHttp(ClientSettings settings, ServerTrust trust)
    {
        var http = new HttpClient(trust.CreateHandler()) { BaseAddress = new Uri(settings.Endpoint.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(10) };
        if (settings.Basic is var (user, password))
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}")));
        else if (settings.Token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", settings.Token);
        return http;
    }

    public Task<JsonNode?> GetAsync(string path, CancellationToken ct = default) => SendAsync(HttpMethod.Get, path, null, ct);
    public Task<JsonNode?> PostAsync(string path, object? body, CancellationToken ct = default) => SendAsync(HttpMethod.Post, path, body, ct);
    public Task<JsonNode?> PutAsync(string path, object? body, CancellationToken ct = default) => SendAsync(HttpMethod.Put, path, body, ct);
    public Task<JsonNode?> DeleteAsync(string path, CancellationToken ct = default) => SendAsync(HttpMethod.Delete, path, null, ct);

    /// <summary>A GET read as the server's own response record (a Contracts type).</summary>
    public async Task<T> GetAsync<T>(string path, CancellationToken ct = default) =>
        (await SendAsync(HttpMethod.Get, path, null, ct)).Deserialize<T>(Json) ?? throw new CliException($"the server sent no body for {path}");

    /// <summary>A POST of a request record, its answer read as the server's response record.</summary>
    public async Task<T> PostAsync<T>(string path, object? body, CancellationToken ct = default) =>
        (await SendAsync(HttpMethod.Post, path, body, ct)).Deserialize<T>(Json) ?? throw new CliException($"the server sent no body for {path}");

    /// <summary>A PUT of a request record, its answer read as the server's response record.</summary>
    public async Task<T> PutAsync<T>(string path, object? body, CancellationToken ct = default) =>
        (await SendAsync(HttpMethod.Put, path, body, ct)).Deserialize<T>(Json) ?? throw new CliException($"the server sent no body for {path}");

    /// <summary>A DELETE whose answer is read as the server's response record.</summary>
    public async Task<T> DeleteAsync<T>(string path, CancellationToken ct = default) =>
        (await SendAsync(HttpMethod.Delete, path, null, ct)).Deserialize<T>(Json) ?? throw new CliException($"the server sent no body for {path}");

    public async Task<JsonNode?> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        // A body that is already content (a YAML template) goes as it is; anything else as JSON.
        if (body is not null) request.Content = body as HttpContent ?? JsonContent.Create(body, options: Json);
        HttpResponseMessage response;
        try
        {
            response = await Http.SendAsync(request, ct);
        }
        catch (HttpRequestException) when (_trust.Failure is { } refused)
        {
            throw new CliException(refused);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException || e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            throw new CliException($"cannot reach the StratusLab server at {settings.Endpoint}: is 'stratuslab serve' running? (set --endpoint or STRATUSLAB_ENDPOINT)");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            if (response.IsSuccessStatusCode)
                return text.Length == 0 ? null : JsonNode.Parse(text);
            throw Failure(response.StatusCode, text);
        }
    }

    /// <summary>A GET whose body is read as a stream (text logs, server-sent events); a failure status becomes a <see cref="CliException"/>.</summary>
    public async Task<HttpResponseMessage> GetStreamAsync(string path, string accept, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path.TrimStart('/'));
        request.Headers.Accept.ParseAdd(accept);
        HttpResponseMessage response;
        try
        {
            response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException) when (_trust.Failure is { } refused)
        {
            throw new CliException(refused);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException || e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            throw new CliException($"cannot reach the StratusLab server at {settings.Endpoint}: is 'stratuslab serve' running? (set --endpoint or STRATUSLAB_ENDPOINT)");
        }
        if (response.IsSuccessStatusCode) return response;
        using (response) throw Failure(response.StatusCode, await response.Content.ReadAsStringAsync(ct));
    }

    /// <summary>Opens a WebSocket to an API path, authenticated like every other call.</summary>
    public async Task<System.Net.WebSockets.ClientWebSocket> ConnectWebSocketAsync(string path, CancellationToken ct = default)
    {
        var uri = new UriBuilder(new Uri(Http.BaseAddress!, path.TrimStart('/'))) ;
        uri.Scheme = uri.Scheme == "https" ? "wss" : "ws";
        var ws = new System.Net.WebSockets.ClientWebSocket();
        ws.Options.RemoteCertificateValidationCallback = _trust.Validate;
        if (settings.Token is not null) ws.Options.SetRequestHeader("Authorization", "Bearer " + settings.Token);
        ws.Options.CollectHttpResponseDetails = true;
        try
        {
            await ws.ConnectAsync(uri.Uri, ct);
            return ws;
        }
        catch (System.Net.WebSockets.WebSocketException e)
        {
            var status = ws.HttpStatusCode;
            ws.Dispose();
            if (status == 0 && _trust.Failure is { } refused) throw new CliException(refused);
            if (status == 0) throw new CliException($"cannot reach the StratusLab server at {settings.Endpoint}: {e.Message}");
            throw new CliException("the console could not be opened: " + status switch
            {
                HttpStatusCode.NotFound => "no such instance (or it is not yours).",
                HttpStatusCode.Conflict => "the instance has no running serial port now (is it RUNNING on the qemu or ssh driver?); its log: stratuslab console-log ID.",
                HttpStatusCode.Forbidden => "you may see this instance but not manage it.",
                HttpStatusCode.Unauthorized => "no valid token.",
                _ => e.Message,
            });
        }
    }

    /// <summary>A refusal as one line: the problem's detail (the CLI names flags for its field); the status shows with --verbose.</summary>
    CliException Failure(HttpStatusCode status, string text)
    {
        string? detail = null, field = null;
        try
        {
            var problem = JsonNode.Parse(text);
            detail = problem?["detail"]?.GetValue<string>() ?? problem?["title"]?.GetValue<string>();
            field = problem?["field"]?.GetValue<string>();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { }
        if (status == HttpStatusCode.Unauthorized && settings.Token is null && settings.Basic is null)
            detail = "no token: run 'stratuslab login', pass --token, set STRATUSLAB_TOKEN, or put {\"token\": \"...\"} in " + ClientSettings.ConfigPath()
                + $". On the server's machine the admin token is in <data dir>/admin.token ({Path.Combine(ServerConfiguration.ResolveDataDir(""), "admin.token")} here):"
                + " set STRATUSLAB_DATA to the server's --data-dir to use it.";
        else if (status == HttpStatusCode.Unauthorized && settings.Basic is not null)
            detail = "wrong user name or password.";
        else if (status == HttpStatusCode.Unauthorized)
            detail = $"the token from {settings.TokenSource} is not valid (revoked or expired): run 'stratuslab login' or pass another --token.";
        return new CliException(detail ?? (text.Trim() is { Length: > 0 } t ? t : status.ToString())) { Status = (int)status, Field = field };
    }

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    public static readonly JsonSerializerOptions JsonIndented = new(Json) { WriteIndented = true };

    public void Dispose() => _client?.Dispose();
}
