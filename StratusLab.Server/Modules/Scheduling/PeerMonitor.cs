using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>
/// Probes peer clouds (driver cloud), on add and every Scheduling:PeerProbeIntervalSeconds: the peer must answer and
/// accept the credentials; its capacity is the account's quota headroom there (plus what this server already runs
/// there), unless the host was added with a cap. Refused credentials are ERROR at once; silence after
/// Scheduling:NodeMissedProbes misses in a row, as for SSH nodes.
/// </summary>
internal sealed class PeerMonitor(SchedulingStore store, PeerClient peers, Ec2PeerClient ec2, SecretBox box, SchedulingOptions options, SchedulerSignal signal,
    ILogger<PeerMonitor> logger) : BackgroundService, IPeerDirectory
{
    /// <summary>What an unlimited quota on the peer counts as (a cap given on add replaces it).</summary>
    public const long UnlimitedCpus = 1024, UnlimitedMemoryMiB = 1L << 20;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.PeerProbeIntervalSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var clouds = (await store.ListHostsAsync()).Where(h => h.CloudUrl is not null).ToList();
                await Task.WhenAll(clouds.Select(h => ProbeAsync(h, stoppingToken)));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Probing the peer clouds failed");
            }
        }
    }

    /// <summary>Probes one peer now and records the outcome; returns the host as it is afterwards.</summary>
    public async Task<HostRow> ProbeAsync(HostRow host, CancellationToken ct)
    {
        var peer = ToInfo(host) ?? throw new InvalidOperationException($"{host.Name} is not a peer cloud");
        try
        {
            if (peer.Kind == "ec2")
            {
                // EC2 says nothing of quota headroom: its capacity is the cap given on add (else counted as unlimited).
                var zones = await ec2.CallAsync(new Ec2PeerEndpoint(peer.Url, peer.KeyId ?? "", peer.Secret, peer.Region ?? "us-east-1"), "DescribeAvailabilityZones",
                    new Dictionary<string, string>(), ct);
                var names = zones.Descendants().Where(e => e.Name.LocalName == "zoneName").Select(e => (JsonNode?)e.Value).ToArray();
                var found = new JsonObject { ["kind"] = "ec2", ["zones"] = new JsonArray(names) };
                await store.SetProbedAsync(host.Name, "OK", null, UnlimitedCpus, UnlimitedMemoryMiB, 0, 0, "peer", found.ToJsonString());
                if (host.State != "OK" || host.MissedProbes > 0) logger.LogInformation("Peer cloud {Host} ({Url}, EC2): OK", host.Name, peer.Url);
                signal.Wake();
                return (await store.FindHostAsync(host.Name))!;
            }
            var quota = await peers.GetAsync(new PeerEndpoint(peer.Url, peer.Secret), "api/v1/quota", ct)
                ?? throw new PeerUnreachableException($"{peer.Url} answered GET api/v1/quota with no body; is it a StratusLab server?");
            var (cpus, memory) = Headroom(quota, host);
            var probe = new JsonObject { ["kind"] = peer.Kind, ["user"] = quota["user"]?.DeepClone(), ["limits"] = quota["limits"]?.DeepClone(), ["usage"] = quota["usage"]?.DeepClone() };
            await store.SetProbedAsync(host.Name, "OK", null, cpus, memory, 0, 0, "peer", probe.ToJsonString());
            if (host.State != "OK" || host.MissedProbes > 0) logger.LogInformation("Peer cloud {Host} ({Url}): OK", host.Name, peer.Url);
        }
        catch (PeerRefusedException e) when (e.Status is 401 or 403)
        {
            var reason = $"the peer {peer.Url} refused the credentials ({e.Status}: {e.Detail}); " + (peer.Kind == "ec2"
                ? "give a valid access key id and secret (and the region its signatures are scoped to); delete the host and add it again."
                : "give a valid token of an account there (delete the host and add it again).");
            await store.SetProbeMissedAsync(host.Name, reason, errorNow: true, options.NodeMissedProbes);
            logger.LogWarning("Peer cloud {Host}: {Reason}", host.Name, reason);
        }
        catch (PeerRefusedException e)
        {
            var reason = peer.Kind == "ec2"
                ? $"the EC2 peer {peer.Url} refused DescribeAvailabilityZones ({e.Status}: {e.Detail}); check the URL (the EC2 endpoint, like https://HOST:PORT/ec2/) and the region."
                : $"the peer {peer.Url} answered GET /api/v1/quota with {e.Status} ({e.Detail}); is the URL the peer's base URL (http(s)://HOST:PORT/)?";
            await store.SetProbeMissedAsync(host.Name, reason, errorNow: true, options.NodeMissedProbes);
        }
        catch (PeerUnreachableException e)
        {
            var firstContact = host.ProbedAt is null || host.StateReason == "not probed yet";
            var missed = await store.SetProbeMissedAsync(host.Name, $"the peer does not answer: {e.Message}", errorNow: firstContact, options.NodeMissedProbes);
            logger.LogWarning("Peer cloud {Host}: probe {Missed} failed: {Reason}", host.Name, missed, e.Message);
        }
        signal.Wake();
        return (await store.FindHostAsync(host.Name))!;
    }

    /// <summary>
    /// The account's headroom on the peer plus what this server's instances there already hold (they count in the
    /// peer's usage too); a limit of -1 is unlimited. Null (keep the cap) is decided by the store when the capacity was declared.
    /// </summary>
    internal static (long Cpus, long MemoryMiB) Headroom(JsonNode quota, HostRow host)
    {
        static long Free(JsonNode quota, string field, long unlimited)
        {
            var limit = quota["limits"]?[field]?.GetValue<long>() ?? -1;
            var used = quota["usage"]?[field]?.GetValue<long>() ?? 0;
            return limit < 0 ? unlimited : Math.Max(0, limit - used);
        }
        var cpus = Free(quota, "cpus", UnlimitedCpus) + host.AllocatedCpus;
        var memory = Free(quota, "memoryMiB", UnlimitedMemoryMiB) + host.AllocatedMemoryMib;
        // The table requires a positive capacity; a peer with no headroom takes nothing bigger than that.
        return (Math.Max(1, cpus), Math.Max(1, memory));
    }

    public async Task<PeerInfo?> FindPeerAsync(string host, CancellationToken ct = default) =>
        await store.FindHostAsync(host) is { } row ? ToInfo(row) : null;

    PeerInfo? ToInfo(HostRow row)
    {
        if (row.CloudUrl is null || row.CloudSecretSealed is null) return null;
        string secret;
        try { secret = box.Open(row.CloudSecretSealed); }
        catch (CryptographicException e)
        {
            throw new InvalidOperationException($"the credentials of peer {row.Name} cannot be opened with this server's key ({e.Message}); restore <data-dir>/server.key, or delete the host and add it again", e);
        }
        return new PeerInfo(row.Name, new Uri(row.CloudUrl), row.CloudKind ?? "stratuslab", row.CloudRegion, row.CloudKeyId, secret, row.State, row.StateReason, row.MissedProbes);
    }

    /// <summary>Checks a peer's URL: absolute http(s), ending with '/' so relative paths resolve under it.</summary>
    public static Uri NormalizeUrl(string? url)
    {
        if (string.IsNullOrWhiteSpace(url) || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new Platform.Contracts.InvalidInputException("url", $"'url' = '{Validate.Trim(url ?? "")}' is not an http(s) URL; give the peer's base URL, like https://cloud.example.org:8440/.");
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment) || !string.IsNullOrEmpty(uri.UserInfo))
            throw new Platform.Contracts.InvalidInputException("url", "'url' must have no user, query or fragment; give credentials in 'token' (or accessKeyId/secretAccessKey).");
        return uri.AbsolutePath.EndsWith('/') ? uri : new Uri(uri + "/");
    }
}
