using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>A host as the API shows it: declared capacity, allocated and measured use, running VMs.</summary>
internal sealed record HostView(
    string Name, string Driver, bool Enabled, bool Local, long Cpus, long MemoryMiB,
    long AllocatedCpus, long AllocatedMemoryMiB, long FreeCpus, long FreeMemoryMiB,
    double CpuUsagePercent, long MemoryUsedMiB, long RunningVms, DateTimeOffset? MonitoredAt);

/// <summary>Body of POST /hosts.</summary>
internal sealed record CreateHostRequest(string Name, string Driver, long Cpus, long MemoryMiB);

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
        hosts.MapDelete("/{name}", DeleteHost);
        return hosts;
    }

    static async Task<Ok<IReadOnlyList<HostView>>> ListHosts(SchedulingStore store) =>
        TypedResults.Ok<IReadOnlyList<HostView>>((await store.ListHostsAsync()).Select(ToView).ToList());

    static async Task<Ok<HostView>> GetHost(string name, SchedulingStore store) =>
        TypedResults.Ok(ToView(await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'")));

    static async Task<Created<HostView>> CreateHost(CreateHostRequest body, SchedulingStore store, ISchedulerSignal signal)
    {
        var name = Validate.Name(body.Name, "name");
        if (body.Driver is not ("simulated" or "qemu"))
            throw ApiException.BadRequest("driver", $"'driver' = '{Validate.Trim(body.Driver)}' is not accepted; accepted values: qemu, simulated.");
        if (body.Driver == "qemu")
            throw ApiException.Invalid("driver", "Only the local machine runs qemu VMs; remote hosts are not supported yet. Add 'simulated' hosts to model a larger site.");
        Validate.Range(body.Cpus, "cpus", 1, 100_000);
        Validate.Range(body.MemoryMiB, "memoryMiB", 64, 1L << 40);
        if (!await store.InsertHostAsync(name, body.Driver, body.Cpus, body.MemoryMiB, isLocal: false))
            throw ApiException.Conflict($"A host named '{name}' already exists.");
        signal.Wake();
        return TypedResults.Created($"/api/v1/hosts/{name}", ToView((await store.FindHostAsync(name))!));
    }

    static async Task<Ok<HostView>> DisableHost(string name, SchedulingStore store)
    {
        if (!await store.SetEnabledAsync(name, false)) throw ApiException.NotFound($"Host '{name}'");
        return TypedResults.Ok(ToView((await store.FindHostAsync(name))!));
    }

    static async Task<Ok<HostView>> EnableHost(string name, SchedulingStore store, ISchedulerSignal signal)
    {
        if (!await store.SetEnabledAsync(name, true)) throw ApiException.NotFound($"Host '{name}'");
        signal.Wake();
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

    static async Task<NoContent> DeleteHost(string name, SchedulingStore store)
    {
        var host = await store.FindHostAsync(name) ?? throw ApiException.NotFound($"Host '{name}'");
        if (host.IsLocal) throw ApiException.Conflict($"'{name}' is this machine and cannot be removed; disable it to drain it.");
        var result = await store.DeleteHostAsync(name);
        if (result < 0) throw ApiException.Conflict($"Host '{name}' still holds {-result} instance(s); disable it and wait for them to end, or terminate them.");
        return TypedResults.NoContent();
    }

    static HostView ToView(HostRow h) => new(h.Name, h.Driver, h.Enabled, h.IsLocal, h.Cpus, h.MemoryMib, h.AllocatedCpus, h.AllocatedMemoryMib,
        h.Cpus - h.AllocatedCpus, h.MemoryMib - h.AllocatedMemoryMib, h.CpuUsage, h.MemoryUsedMib, h.RunningVms, h.MonitoredAt);
}
