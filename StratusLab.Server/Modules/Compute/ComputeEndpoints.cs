using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Body of POST /instance-types.</summary>
internal sealed record CreateInstanceTypeRequest(string Name, int Cpu, long MemoryMiB);
/// <summary>Body of POST /simulator/faults.</summary>
internal sealed record CreateFaultRequest(string Action, string Mode = "fail", int? Times = null, long? InstanceId = null, int DelayMs = 0, string? Message = null);

/// <summary>Body of PATCH /instances/{id}: the fields that can change on an instance (today its name).</summary>
internal sealed record UpdateInstanceRequest(string? Name = null);

internal static class ComputeEndpoints
{
    public static RouteGroupBuilder MapComputeEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").RequireAuthorization().WithTags("Compute");

        api.MapPost("/instances", CreateInstances);
        api.MapGet("/instances", ListInstances);
        api.MapGet("/instances/{id:long}", GetInstance);
        api.MapDelete("/instances/{id:long}", TerminateInstance);
        api.MapPatch("/instances/{id:long}", UpdateInstance);
        api.MapPost("/instances/{id:long}/actions/{action}", ActOnInstance);
        api.MapGet("/instances/{id:long}/wait", WaitForInstance);
        api.MapGet("/instances/{id:long}/console", Console.ConsoleEndpoints.GetConsole);
        api.MapGet("/instances/{id:long}/console/ws", Console.ConsoleEndpoints.ConnectConsole);
        api.MapGet("/instances/{id:long}/vnc", Console.GraphicalConsoleEndpoints.ConnectGraphicalConsole);
        api.MapGet("/events", StreamEvents);

        api.MapGet("/instance-types", ListInstanceTypes);
        api.MapPost("/instance-types", CreateInstanceType).RequireAuthorization(Policies.Admin);
        api.MapDelete("/instance-types/{name}", DeleteInstanceType).RequireAuthorization(Policies.Admin);

        var simulator = api.MapGroup("/simulator").RequireAuthorization(Policies.Admin).WithTags("Simulator");
        simulator.MapPost("/faults", CreateFault);
        simulator.MapGet("/faults", ListFaults);
        simulator.MapDelete("/faults/{id}", DeleteFault);
        simulator.MapDelete("/faults", ClearFaults);
        simulator.MapPost("/instances/{id:long}/crash", CrashSimulatedInstance);
        simulator.MapPost("/hosts/{name}/outage", (string name, SimulatedFaults faults) => SetOutage(name, true, faults));
        simulator.MapDelete("/hosts/{name}/outage", (string name, SimulatedFaults faults) => SetOutage(name, false, faults));

        api.MapPost("/hosts/{name}/evacuate", EvacuateHost).RequireAuthorization(Policies.Admin).WithTags("Scheduling");
        return api;
    }

    static async Task<IResult> CreateInstances(CreateInstanceRequest body, ClaimsPrincipal principal, IInstances instances, CancellationToken ct)
    {
        var list = await instances.LaunchAsync(principal.ToCaller(), body, ct);
        return body.Count is null
            ? TypedResults.Created($"/api/v1/instances/{list[0].Id}", list[0])
            : TypedResults.Created($"/api/v1/instances/{list[0].Id}", list);
    }

    static async Task<Ok<IReadOnlyList<InstanceView>>> ListInstances(ClaimsPrincipal principal, IInstances instances,
        string? state, int? limit, int? offset, CancellationToken ct) =>
        TypedResults.Ok(await instances.ListAsync(principal.ToCaller(),
            new InstanceQuery(state?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), null, limit, offset), ct));

    static async Task<Ok<InstanceView>> GetInstance(long id, ClaimsPrincipal principal, IInstances instances, CancellationToken ct) =>
        TypedResults.Ok(await instances.GetAsync(principal.ToCaller(), id, ct));

    static async Task<Accepted<InstanceView>> TerminateInstance(long id, ClaimsPrincipal principal, IInstances instances, CancellationToken ct) =>
        TypedResults.Accepted($"/api/v1/instances/{id}", await instances.TerminateAsync(principal.ToCaller(), id, ct));

    /// <summary>?force=true: stop powers off at once (no ACPI wait); ?graceful=true: reboot through a guest power-off and power-on.</summary>
    static async Task<Accepted<InstanceView>> ActOnInstance(long id, string action, bool? force, bool? graceful, bool? save, ClaimsPrincipal principal, IInstances instances,
        CancellationToken ct) =>
        TypedResults.Accepted($"/api/v1/instances/{id}",
            await instances.ActAsync(principal.ToCaller(), id, action, new InstanceActionOptions(force ?? false, graceful ?? false, save ?? false), ct));

    static async Task<Ok<InstanceView>> UpdateInstance(long id, UpdateInstanceRequest body, ClaimsPrincipal principal, IInstances instances, CancellationToken ct)
    {
        if (body.Name is null) throw ApiException.BadRequest("name", "Nothing to change: give 'name' (the only field PATCH changes on an instance).");
        return TypedResults.Ok(await instances.RenameAsync(principal.ToCaller(), id, body.Name, ct));
    }

    static async Task<Ok<InstanceView>> WaitForInstance(long id, ClaimsPrincipal principal, ComputeStore store, InstanceEvents events,
        InstanceViews views, string? state, int? timeout, CancellationToken ct)
    {
        var caller = principal.ToCaller();
        await VisibleAsync(id, caller, store, Operation.Use);
        var wanted = state ?? "RUNNING";
        var waitForReady = wanted.Equals("ready", StringComparison.OrdinalIgnoreCase);
        InstanceState target = default;
        if (!waitForReady && !InstanceStateMachine.TryParseState(wanted, out target))
            throw ApiException.BadRequest("state", $"'state' = '{Validate.Trim(wanted)}' is not a state; accepted: ready, {string.Join(", ", Enum.GetValues<InstanceState>().Select(InstanceStateMachine.Name))}.");
        var seconds = Validate.Range(timeout ?? 60, "timeout", 0, 600);

        using var subscription = events.Subscribe();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        while (true)
        {
            var row = (await store.GetAsync(id))!;
            var done = waitForReady ? row.Ready : row.StateValue == target;
            if (done || row.StateValue is InstanceState.Failed or InstanceState.Done || deadline.IsCancellationRequested)
                return TypedResults.Ok(await views.ViewAsync(row));
            try
            {
                while (await subscription.Reader.WaitToReadAsync(deadline.Token))
                    if (subscription.Reader.TryRead(out var evt) && evt.Id == id) break;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
        }
    }

    // The same stream the other front doors follow (IInstances.WatchAsync), with what the caller may see only.
    static Task StreamEvents(HttpContext http, ClaimsPrincipal principal, IInstances instances, CancellationToken ct) =>
        Platform.Http.ServerSentEvents.StreamAsync(http, instances.WatchAsync(principal.ToCaller(), ct), "instance", c => c.Id, ": stratuslab events\n\n", ct);

    internal static Task<InstanceRow> VisibleAsync(long id, Caller caller, ComputeStore store, Operation operation) =>
        InstanceService.VisibleAsync(id, caller, store, operation);

    static async Task<Ok<IReadOnlyList<InstanceTypeView>>> ListInstanceTypes(IInstances instances, CancellationToken ct) =>
        TypedResults.Ok(await instances.ListTypesAsync(ct));

    static async Task<Created<InstanceTypeView>> CreateInstanceType(CreateInstanceTypeRequest body, ComputeStore store)
    {
        var name = Validate.Name(body.Name, "name");
        Validate.Range(body.Cpu, "cpu", 1, 256);
        Validate.Range(body.MemoryMiB, "memoryMiB", 32, 4L * 1024 * 1024);
        if (!await store.InsertTypeAsync(name, body.Cpu, body.MemoryMiB))
            throw ApiException.Conflict($"An instance type named '{name}' already exists.");
        return TypedResults.Created($"/api/v1/instance-types/{name}", new InstanceTypeView(name, body.Cpu, body.MemoryMiB, false));
    }

    static async Task<NoContent> DeleteInstanceType(string name, ComputeStore store)
    {
        var type = (await store.ListTypesAsync()).FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw ApiException.NotFound($"Instance type '{name}'");
        if (type.Builtin) throw ApiException.Conflict($"'{type.Name}' is a built-in instance type and cannot be removed.");
        await store.DeleteTypeAsync(type.Name);
        return TypedResults.NoContent();
    }

    static Created<SimulatedFault> CreateFault(CreateFaultRequest body, SimulatedFaults faults)
    {
        if (!SimulatedFaults.Actions.Contains(body.Action))
            throw ApiException.BadRequest("action", $"'action' = '{Validate.Trim(body.Action)}' is not accepted; accepted values: {string.Join(", ", SimulatedFaults.Actions)}.");
        if (!SimulatedFaults.Modes.Contains(body.Mode))
            throw ApiException.BadRequest("mode", $"'mode' = '{Validate.Trim(body.Mode)}' is not accepted; accepted values: {string.Join(", ", SimulatedFaults.Modes)}.");
        if (body.Times is < 1) throw ApiException.BadRequest("times", "'times' must be 1 or more, or left out for every time.");
        if (body.Mode == "silent" && body.Action != "query")
            throw ApiException.BadRequest("mode", "'mode' = 'silent' is for the action 'query' only (the VM is there but does not answer).");
        Validate.Range(body.DelayMs, "delayMs", 0, 3_600_000);
        var fault = faults.Add(body.Action, body.Mode, body.Times, body.InstanceId, body.DelayMs, body.Message);
        return TypedResults.Created($"/api/v1/simulator/faults/{fault.Id}", fault);
    }

    static Ok<IReadOnlyList<SimulatedFault>> ListFaults(SimulatedFaults faults) => TypedResults.Ok(faults.List());

    static NoContent DeleteFault(string id, SimulatedFaults faults) =>
        faults.Remove(id) ? TypedResults.NoContent() : throw ApiException.NotFound($"Fault '{id}'");

    static NoContent ClearFaults(SimulatedFaults faults)
    {
        faults.Clear();
        return TypedResults.NoContent();
    }

    static async Task<Ok<HostEvacuation>> EvacuateHost(string name, ClaimsPrincipal principal, IInstances instances, CancellationToken ct) =>
        TypedResults.Ok(await instances.EvacuateHostAsync(principal.ToCaller(), name, ct));

    /// <summary>Starts or ends a simulated outage of a host: its VMs go UNKNOWN at the next monitoring pass, and come back after.</summary>
    static NoContent SetOutage(string name, bool down, SimulatedFaults faults)
    {
        faults.SetDown(name, down);
        return TypedResults.NoContent();
    }

    static async Task<NoContent> CrashSimulatedInstance(long id, ComputeStore store, SimulatedDriver simulated)
    {
        var row = await store.GetAsync(id) ?? throw ApiException.NotFound($"Instance {id}");
        if (row.Driver != "simulated") throw ApiException.Conflict($"Instance {id} runs on the {row.Driver} driver; only simulated VMs can be crashed on purpose.");
        await simulated.CrashAsync(id);
        return TypedResults.NoContent();
    }
}
