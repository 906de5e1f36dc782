using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Platform.Http;

/// <summary>How to reach a peer cloud: its base URL and the bearer token of the account there (kind stratuslab).</summary>
public sealed record PeerEndpoint(Uri Url, string Token);

/// <summary>The peer cloud did not answer (connection refused, timeout, 5xx): whether it still runs anything is unknown.</summary>
public sealed class PeerUnreachableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The peer answered with a refusal; <see cref="Detail"/> is its problem+json detail (or body) as it said it.</summary>
public sealed class PeerRefusedException(int status, string detail, string? code = null) : Exception($"the peer answered {status}: {detail}")
{
    public int Status { get; } = status;
    public string Detail { get; } = detail;
    /// <summary>An EC2 peer's error code (InvalidInstanceID.NotFound, AuthFailure, ...); null from a StratusLab peer.</summary>
    public string? Code { get; } = code;
}

/// <summary>
/// Talks to another StratusLab server's REST API (a peer cloud) through one named HttpClient (IHttpClientFactory);
/// every request has its own timeout, and the peer's answers are plain JSON.
/// </summary>
public sealed class PeerClient(IHttpClientFactory factory)
{
    public const string ClientName = "peer-cloud";
    static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Registers the client and its named HttpClient once (Scheduling probes peers, Compute's cloud driver drives them).</summary>
    public static void Register(IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(PeerClient))) return;
        services.AddHttpClient(ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                ConnectTimeout = TimeSpan.FromSeconds(10),
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            });
        services.AddSingleton<PeerClient>();
        services.AddSingleton<Ec2PeerClient>();
    }

    /// <summary>GET, POST or DELETE <paramref name="path"/> (relative to the peer's URL); null on 204. Refusals and silence are typed exceptions.</summary>
    public async Task<JsonNode?> SendAsync(PeerEndpoint peer, HttpMethod method, string path, object? body, CancellationToken ct, TimeSpan? timeout = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(peer.Url, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", peer.Token);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (body is not null) request.Content = JsonContent.Create(body, body.GetType(), options: JsonOptions);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout ?? DefaultTimeout);
        HttpResponseMessage response;
        try
        {
            response = await factory.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseContentRead, limit.Token);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new PeerUnreachableException($"{peer.Url} did not answer {method} {path} within {(timeout ?? DefaultTimeout).TotalSeconds:0} s", e);
        }
        catch (HttpRequestException e)
        {
            throw new PeerUnreachableException($"{peer.Url} cannot be reached: {e.Message}", e);
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
            var status = (int)response.StatusCode;
            if (status >= 500 || response.StatusCode == HttpStatusCode.RequestTimeout)
                throw new PeerUnreachableException($"{peer.Url} answered {status} to {method} {path}: {DetailOf(text)}");
            if (!response.IsSuccessStatusCode) throw new PeerRefusedException(status, DetailOf(text));
            if (text.Length == 0) return null;
            try { return JsonNode.Parse(text); }
            catch (JsonException e) { throw new PeerUnreachableException($"{peer.Url} answered {method} {path} with something that is not JSON ({e.Message}); is it a StratusLab server?", e); }
        }
    }

    public Task<JsonNode?> GetAsync(PeerEndpoint peer, string path, CancellationToken ct, TimeSpan? timeout = null) =>
        SendAsync(peer, HttpMethod.Get, path, null, ct, timeout);

    static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The problem's detail when the body is problem+json, else the body's start.</summary>
    static string DetailOf(string text)
    {
        try
        {
            if (JsonNode.Parse(text) is JsonObject o && (o["detail"] ?? o["title"]) is { } d) return d.ToString();
        }
        catch (JsonException) { }
        text = text.Trim();
        return text.Length == 0 ? "(no body)" : text.Length > 300 ? text[..300] + "..." : text;
    }
}
