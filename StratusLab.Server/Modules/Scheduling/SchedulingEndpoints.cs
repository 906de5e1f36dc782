using System.Security.Claims;
using System.Text.Json;
using StratusLab.Server.Modules.Identity.Contracts;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>A host as the API shows it: declared capacity, allocated and measured use, running VMs.</summary>
internal sealed record HostView(
    string Name, string Driver, bool Enabled, bool Local, long Cpus, long MemoryMiB,
    long AllocatedCpus, long AllocatedMemoryMiB, long FreeCpus, long FreeMemoryMiB,
    double CpuUsagePercent, long MemoryUsedMiB, long RunningVms, DateTimeOffset? MonitoredAt)
{
    /// <summary>OK, or ERROR (an SSH node that lacks something or does not answer: nothing is placed on it) with <see cref="StateReason"/>.</summary>
    public string State { get; init; } = "OK";
    public string? StateReason { get; init; }
    /// <summary>For SSH nodes: user@address:port, the key file, the node-side directory, the accelerator and the last probe.</summary>
    public string? Ssh { get; init; }
    public string? KeyFile { get; init; }
    public string? Root { get; init; }
    public string? Accelerator { get; init; }
    public long MissedProbes { get; init; }
    public DateTimeOffset? ProbedAt { get; init; }
    public JsonElement? Probe { get; init; }
    /// <summary>For SSH nodes: the node's own iSCSI initiator name, which Pdisk's target ACLs name while it mounts a volume.</summary>
    public string? IscsiInitiator { get; init; }
    /// <summary>For SSH nodes: how its VMs get their boot disks, cache (copied to the node) or iscsi (opened over iSCSI from this machine).</summary>
    public string? BootDisks { get; init; }
    /// <summary>For peer clouds: the peer's URL, its kind (stratuslab or ec2), the EC2 region, whether credentials are stored (never the credentials) and whether it is a burst target.</summary>
    public string? Cloud { get; init; }
    public string? CloudKind { get; init; }
    public string? Region { get; init; }
    public bool? CredentialsStored { get; init; }
    public string? AccessKeyId { get; init; }
    public bool? Burst { get; init; }
    /// <summary>For peer clouds, in GET /hosts/{name}: instances ended here while the peer was silent, whose termination there is still being retried.</summary>
    public IReadOnlyList<PendingRemoteDeletion>? PendingRemoteDeletions { get; init; }
}

/// <summary>
/// Body of POST /hosts. Driver ssh: <see cref="Ssh"/> is [user@]address (user root by default), <see cref="Port"/> 22 by
/// default, <see cref="KeyFile"/> a private key the server reads, <see cref="Root"/> the node-side directory
/// (Scheduling:NodeRoot by default), <see cref="BootDisks"/> cache (default) or iscsi; cpus and memoryMiB are then optional (probed).
/// </summary>
/// <remarks>
/// Driver cloud (a peer cloud): <see cref="Url"/> its base URL, <see cref="Kind"/> stratuslab (default: its REST API with
/// <see cref="Token"/>) or ec2 (EC2 Query with <see cref="AccessKeyId"/>, <see cref="SecretAccessKey"/>, <see cref="Region"/>);
/// cpus and memoryMiB cap it (else its quota headroom); <see cref="Burst"/>: it takes instances when no local host has room.
/// </remarks>
internal sealed record CreateHostRequest(string Name, string Driver, long? Cpus = null, long? MemoryMiB = null, string? Ssh = null, int? Port = null, string? KeyFile = null, string? Root = null,
    string? Url = null, string? Kind = null, string? Token = null, string? AccessKeyId = null, string? SecretAccessKey = null, string? Region = null, bool? Burst = null,
    string? BootDisks = null);

/// <summary>Body of PUT /hosts/{name}/metrics: measured load of a simulated host.</summary>
internal sealed record HostMetricsRequest(double CpuUsagePercent, long MemoryUsedMiB);

internal static class SchedulingEndpoints
{
    public static RouteGroupBuilder MapSchedulingEndpoints(this IEndpointRouteBuilder app)
    {
        var hosts = app.MapGroup("/api/v1/hosts").RequireAuthorization(Policies.Admin).WithTags("Scheduling");
        hosts.MapGet("/", ListHosts);
        hosts.MapGet("/{name}", GetHost);
        hosts.MapPost("/", CreateHost);
        hosts.MapPost("/{name}/disable", DisableHost);
        hosts.MapPost("/{name}/enable", EnableHost);
        hosts.MapPut("/{name}/metrics", SetHostMetrics);
        hosts.MapPost("/{name}/probe", ProbeHost);
        hosts.MapPost("/{name}/forget-host-key", ForgetHostKey);
        hosts.MapDelete("/{name}", DeleteHost);
        return hosts;
    }

    static async Task<Ok<IReadOnlyList<HostView>>> ListHosts(SchedulingStore store) =>
        TypedResults.Ok<IReadOnlyList<HostView>>((await store.ListHostsAsync()).Select(ToView).ToList());

    static async Task<Ok<HostView>> GetHost(string name, SchedulingStore store, HttpContext http, CancellationToken ct)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        var view = ToView(host);
        if (host.CloudUrl is not null && http.RequestServices.GetService<IPendingRemoteDeletions>() is { } owed)
            view = view with { PendingRemoteDeletions = await owed.ListAsync(name, ct) };
        return TypedResults.Ok(view);
    }

    static async Task<Created<HostView>> CreateHost(CreateHostRequest body, ClaimsPrincipal principal, IHostAdministration hosts, SchedulingStore store, NodeMonitor nodes,
        PeerMonitor peers, Platform.Security.SecretBox box, SchedulingOptions options, ServerOptions server, CancellationToken ct)
    {
        var name = Validate.Name(body.Name, "name");
        if (body.Driver is not ("simulated" or "qemu" or "ssh" or "cloud"))
            throw ApiException.BadRequest("driver", $"'driver' = '{Validate.Trim(body.Driver ?? "")}' is not accepted; accepted values: qemu, simulated, ssh, cloud.");
        if (body.Driver != "cloud" && (body.Url ?? body.Kind ?? body.Token ?? body.AccessKeyId ?? body.SecretAccessKey ?? body.Region) is not null)
            throw ApiException.BadRequest("url", "'url', 'kind', 'token', 'accessKeyId', 'secretAccessKey' and 'region' are for driver 'cloud' only.");
        if (body.Driver == "qemu")
            throw ApiException.Invalid("driver", "Only the local machine runs qemu VMs as driver 'qemu'; add another machine as driver 'ssh' (with ssh = root@ADDRESS), or 'simulated' hosts to model a larger site.");
        if (body.Driver != "ssh" && body.BootDisks is not null)
            throw ApiException.BadRequest("bootDisks", "'bootDisks' is for driver 'ssh' only: it says how an SSH node gets its VMs' boot disks.");
        if (body.Driver == "ssh") return await CreateSshHost(name, body, store, nodes, options, server, ct);
        if (body.Driver == "cloud") return await CreateCloudHost(name, body, store, peers, box, ct);
        if (body.Ssh is not null || body.KeyFile is not null || body.Port is not null || body.Root is not null)
            throw ApiException.BadRequest("ssh", "'ssh', 'port', 'keyFile' and 'root' are for driver 'ssh' only.");
        await hosts.AddSimulatedAsync(principal.ToCaller(), name, body.Cpus ?? 0, body.MemoryMiB ?? 0, ct);
        return TypedResults.Created($"/api/v1/hosts/{name}", ToView((await store.FindHostAsync(name))!));
    }

    /// <summary>Adds an SSH node and probes it at once: the answer shows OK, or ERROR with what is wrong.</summary>
    static async Task<Created<HostView>> CreateSshHost(string name, CreateHostRequest body, SchedulingStore store, NodeMonitor nodes,
        SchedulingOptions options, ServerOptions server, CancellationToken ct)
    {
        var target = SshNodeInput.Target(body.Ssh, body.Port, body.KeyFile);
        var root = SshNodeInput.Root(body.Root ?? options.NodeRoot, server.DataDir);
        var bootDisks = SshNodeInput.BootDisks(body.BootDisks);
        if (body.Cpus is { } cpus) Validate.Range(cpus, "cpus", 1, 100_000);
        if (body.MemoryMiB is { } memory) Validate.Range(memory, "memoryMiB", 64, 1L << 40);
        if ((await store.ListHostsAsync()).FirstOrDefault(h => h.Ssh is { } other && other.Address == target.Address && other.Port == target.Port) is { } taken)
            throw ApiException.Conflict($"Host '{taken.Name}' is already the node at {target.Address}:{target.Port}.");
        if (!await store.InsertSshHostAsync(name, body.Cpus ?? 1, body.MemoryMiB ?? 64, body.Cpus is not null && body.MemoryMiB is not null, target, root, bootDisks))
            throw ApiException.Conflict($"A host named '{name}' already exists.");
        var probed = await nodes.ProbeAsync((await store.FindHostAsync(name))!, ct, full: true);
        return TypedResults.Created($"/api/v1/hosts/{name}", ToView(probed));
    }

    /// <summary>
    /// Adds a peer cloud and probes it at once: the answer shows OK with its capacity, or ERROR with what is wrong. The
    /// credentials are sealed with the server key before they are stored; the API only ever says that they exist.
    /// </summary>
    static async Task<Created<HostView>> CreateCloudHost(string name, CreateHostRequest body, SchedulingStore store, PeerMonitor peers,
        Platform.Security.SecretBox box, CancellationToken ct)
    {
        var url = PeerMonitor.NormalizeUrl(body.Url);
        var kind = body.Kind ?? "stratuslab";
        if (kind is not ("stratuslab" or "ec2"))
            throw ApiException.BadRequest("kind", $"'kind' = '{Validate.Trim(kind)}' is not accepted; accepted values: stratuslab (its REST API, with 'token'), ec2 (EC2 Query, with 'accessKeyId', 'secretAccessKey' and 'region').");
        string secret;
        if (kind == "stratuslab")
        {
            if (string.IsNullOrWhiteSpace(body.Token))
                throw ApiException.BadRequest("token", "A StratusLab peer needs 'token': an API token of the account to run instances as on the peer (POST /api/v1/tokens there).");
            if (body.AccessKeyId is not null || body.SecretAccessKey is not null || body.Region is not null)
                throw ApiException.BadRequest("accessKeyId", "'accessKeyId', 'secretAccessKey' and 'region' are for kind 'ec2'; a StratusLab peer takes 'token'.");
            secret = body.Token.Trim();
        }
        else
        {
            if (string.IsNullOrWhiteSpace(body.AccessKeyId) || string.IsNullOrWhiteSpace(body.SecretAccessKey))
                throw ApiException.BadRequest("accessKeyId", "An EC2 peer needs 'accessKeyId' and 'secretAccessKey' (and 'region', us-east-1 by default).");
            if (body.Token is not null) throw ApiException.BadRequest("token", "'token' is for kind 'stratuslab'; an EC2 peer takes 'accessKeyId' and 'secretAccessKey'.");
            secret = body.SecretAccessKey.Trim();
        }
        if (secret.Length > 1024 || secret.Any(char.IsControl)) throw ApiException.BadRequest(kind == "ec2" ? "secretAccessKey" : "token", "The credential must be at most 1024 characters without control characters.");
        if (body.Cpus is { } cpus) Validate.Range(cpus, "cpus", 1, 100_000);
        if (body.MemoryMiB is { } memory) Validate.Range(memory, "memoryMiB", 64, 1L << 40);
        if ((body.Cpus is null) != (body.MemoryMiB is null))
            throw ApiException.BadRequest("cpus", "Give both 'cpus' and 'memoryMiB' to cap a peer cloud, or neither (its quota headroom is its capacity).");
        var region = kind == "ec2" ? (string.IsNullOrWhiteSpace(body.Region) ? "us-east-1" : Validate.Name(body.Region.Trim(), "region")) : null;
        if (!await store.InsertCloudHostAsync(name, body.Cpus ?? 1, body.MemoryMiB ?? 64, body.Cpus is not null, url.ToString(), kind, region,
                body.AccessKeyId?.Trim(), box.Seal(secret), body.Burst ?? false))
            throw ApiException.Conflict($"A host named '{name}' already exists.");
        var probed = await peers.ProbeAsync((await store.FindHostAsync(name))!, ct);
        return TypedResults.Created($"/api/v1/hosts/{name}", ToView(probed));
    }

    static async Task<Ok<HostView>> ProbeHost(string name, SchedulingStore store, NodeMonitor nodes, PeerMonitor peers, CancellationToken ct)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        if (host.CloudUrl is not null) return TypedResults.Ok(ToView(await peers.ProbeAsync(host, ct)));
        if (host.Ssh is null) throw ApiException.Conflict($"'{name}' is not an SSH node or a peer cloud; only those are probed.");
        return TypedResults.Ok(ToView(await nodes.ProbeAsync(host, ct, full: true)));
    }

    /// <summary>Forgets a node's pinned SSH host key (it was reinstalled), then probes it: the key it shows now is pinned.</summary>
    static async Task<Ok<HostView>> ForgetHostKey(string name, SchedulingStore store, NodeMonitor nodes, SshTransport ssh, CancellationToken ct)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        if (host.Ssh is not { } target) throw ApiException.Conflict($"'{name}' is not an SSH node; it has no host key.");
        await ssh.CloseAsync(target, ct);
        await ssh.ForgetHostKeyAsync(target, ct);
        return TypedResults.Ok(ToView(await nodes.ProbeAsync(host, ct, full: true)));
    }

    static async Task<Ok<HostView>> DisableHost(string name, ClaimsPrincipal principal, IHostAdministration hosts, SchedulingStore store, CancellationToken ct)
    {
        await hosts.SetEnabledAsync(principal.ToCaller(), name, false, ct);
        return TypedResults.Ok(ToView((await store.FindHostAsync(name))!));
    }

    static async Task<Ok<HostView>> EnableHost(string name, ClaimsPrincipal principal, IHostAdministration hosts, SchedulingStore store, CancellationToken ct)
    {
        await hosts.SetEnabledAsync(principal.ToCaller(), name, true, ct);
        return TypedResults.Ok(ToView((await store.FindHostAsync(name))!));
    }

    static async Task<Ok<HostView>> SetHostMetrics(string name, HostMetricsRequest body, SchedulingStore store, ISchedulerSignal signal)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        if (host.Driver != "simulated")
            throw ApiException.Conflict($"'{name}' is measured by the server itself; only simulated hosts take metrics from the API.");
        if (body.CpuUsagePercent is < 0 or > 100 || double.IsNaN(body.CpuUsagePercent))
            throw ApiException.BadRequest("cpuUsagePercent", "'cpuUsagePercent' must be between 0 and 100.");
        Validate.Range(body.MemoryUsedMiB, "memoryUsedMiB", 0, host.MemoryMib);
        await store.SetMeasuredAsync(name, body.CpuUsagePercent, body.MemoryUsedMiB, null);
        signal.Wake();
        return TypedResults.Ok(ToView((await store.FindHostAsync(name))!));
    }

    static async Task<NoContent> DeleteHost(string name, SchedulingStore store, SshTransport ssh, HttpContext http, CancellationToken ct, bool force = false)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        if (host.IsLocal) throw ApiException.Conflict($"'{name}' is this machine and cannot be removed; disable it to drain it.");
        var owed = host.CloudUrl is null ? null : http.RequestServices.GetService<IPendingRemoteDeletions>();
        if (owed is not null && !force && await owed.ListAsync(name, ct) is { Count: > 0 } pending)
            throw ApiException.Conflict($"Peer cloud '{name}' is still owed the termination of {pending.Count} instance(s) there ({string.Join(", ", pending.Select(p => p.RemoteId))}); " +
                "they are terminated when the peer answers again: wait for that, or terminate them on the peer yourself and delete the host with ?force=true.");
        var result = await store.DeleteHostAsync(name);
        if (result < 0) throw ApiException.Conflict($"Host '{name}' still holds {-result} instance(s); disable it and wait for them to end, or terminate them.");
        if (owed is not null) await owed.ForgetAsync(name, ct);
        if (host.Ssh is { } target)
        {
            await ssh.CloseAsync(target);
            await ssh.ForgetHostKeyAsync(target);
        }
        return TypedResults.NoContent();
    }

    static HostView ToView(HostRow h) => new(h.Name, h.Driver, h.Enabled, h.IsLocal, h.Cpus, h.MemoryMib, h.AllocatedCpus, h.AllocatedMemoryMib,
        h.Cpus - h.AllocatedCpus, h.MemoryMib - h.AllocatedMemoryMib, h.CpuUsage, h.MemoryUsedMib, h.RunningVms, h.MonitoredAt)
    {
        State = h.State,
        StateReason = h.StateReason,
        Ssh = h.Ssh?.ToString(),
        KeyFile = h.SshKeyFile,
        Root = h.Ssh is null ? null : h.NodeRoot,
        Accelerator = h.Accelerator,
        MissedProbes = h.MissedProbes,
        ProbedAt = h.ProbedAt,
        Probe = h.ProbeJson is null ? null : JsonDocument.Parse(h.ProbeJson).RootElement.Clone(),
        IscsiInitiator = h.Ssh is null ? null : h.IscsiInitiator,
        BootDisks = h.Ssh is null ? null : h.BootDisks ?? NodeBootDisks.Cache,
        Cloud = h.CloudUrl,
        CloudKind = h.CloudKind,
        Region = h.CloudRegion,
        AccessKeyId = h.CloudKeyId,
        CredentialsStored = h.CloudUrl is null ? null : h.CloudSecretSealed is not null,
        Burst = h.CloudUrl is null ? null : h.Burst,
    };
}
