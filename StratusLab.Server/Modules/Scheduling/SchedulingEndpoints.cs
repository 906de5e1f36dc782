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
}

/// <summary>
/// Body of POST /hosts. Driver ssh: <see cref="Ssh"/> is [user@]address (user root by default), <see cref="Port"/> 22 by
/// default, <see cref="KeyFile"/> a private key the server reads, <see cref="Root"/> the node-side directory
/// (Scheduling:NodeRoot by default); cpus and memoryMiB are then optional (probed).
/// </summary>
internal sealed record CreateHostRequest(string Name, string Driver, long? Cpus = null, long? MemoryMiB = null, string? Ssh = null, int? Port = null, string? KeyFile = null, string? Root = null);

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

    static async Task<Ok<HostView>> GetHost(string name, SchedulingStore store) =>
        TypedResults.Ok(ToView(await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'")));

    static async Task<Created<HostView>> CreateHost(CreateHostRequest body, ClaimsPrincipal principal, IHostAdministration hosts, SchedulingStore store, NodeMonitor nodes,
        SchedulingOptions options, ServerOptions server, CancellationToken ct)
    {
        var name = Validate.Name(body.Name, "name");
        if (body.Driver is not ("simulated" or "qemu" or "ssh"))
            throw ApiException.BadRequest("driver", $"'driver' = '{Validate.Trim(body.Driver ?? "")}' is not accepted; accepted values: qemu, simulated, ssh.");
        if (body.Driver == "qemu")
            throw ApiException.Invalid("driver", "Only the local machine runs qemu VMs as driver 'qemu'; add another machine as driver 'ssh' (with ssh = root@ADDRESS), or 'simulated' hosts to model a larger site.");
        if (body.Driver == "ssh") return await CreateSshHost(name, body, store, nodes, options, server, ct);
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
        if (body.Cpus is { } cpus) Validate.Range(cpus, "cpus", 1, 100_000);
        if (body.MemoryMiB is { } memory) Validate.Range(memory, "memoryMiB", 64, 1L << 40);
        if ((await store.ListHostsAsync()).FirstOrDefault(h => h.Ssh is { } other && other.Address == target.Address && other.Port == target.Port) is { } taken)
            throw ApiException.Conflict($"Host '{taken.Name}' is already the node at {target.Address}:{target.Port}.");
        if (!await store.InsertSshHostAsync(name, body.Cpus ?? 1, body.MemoryMiB ?? 64, body.Cpus is not null && body.MemoryMiB is not null, target, root))
            throw ApiException.Conflict($"A host named '{name}' already exists.");
        var probed = await nodes.ProbeAsync((await store.FindHostAsync(name))!, ct, full: true);
        return TypedResults.Created($"/api/v1/hosts/{name}", ToView(probed));
    }

    static async Task<Ok<HostView>> ProbeHost(string name, SchedulingStore store, NodeMonitor nodes, CancellationToken ct)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        if (host.Ssh is null) throw ApiException.Conflict($"'{name}' is not an SSH node; only SSH nodes are probed.");
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

    static async Task<NoContent> DeleteHost(string name, SchedulingStore store, SshTransport ssh)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        if (host.IsLocal) throw ApiException.Conflict($"'{name}' is this machine and cannot be removed; disable it to drain it.");
        var result = await store.DeleteHostAsync(name);
        if (result < 0) throw ApiException.Conflict($"Host '{name}' still holds {-result} instance(s); disable it and wait for them to end, or terminate them.");
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
    };
}
