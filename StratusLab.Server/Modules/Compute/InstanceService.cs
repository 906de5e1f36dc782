using StratusLab.Server.Modules.Compute.Console;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Compute's application service (see <see cref="IInstances"/>): the one place front doors reach instances through.</summary>
internal sealed class InstanceService(InstanceRequests requests, ComputeStore store, InstanceViews views, InstanceLifecycle lifecycle,
    ConsoleLogs consoles, Scheduling.Contracts.ISchedulerSignal scheduler, IFreeSpaceGuard space, InstanceEvents events) : IInstances
{
    public async IAsyncEnumerable<InstanceChange> WatchAsync(Caller caller, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        using var subscription = events.Subscribe();
        while (true)
        {
            try
            {
                if (!await subscription.Reader.WaitToReadAsync(ct)) yield break;
            }
            catch (OperationCanceledException) { yield break; }
            while (subscription.Reader.TryRead(out var e))
                if (AccessRules.CanSee(caller, e.Ownership))
                    yield return new InstanceChange(e.Id, e.Name, e.State, e.Ready, e.FailedStep, e.FailureReason, e.Time);
        }
    }

    public async Task<IReadOnlyList<InstanceView>> LaunchAsync(Caller caller, CreateInstanceRequest request, LaunchRecord? record, CancellationToken ct = default)
    {
        space.EnsureRoom("Launching an instance");
        var created = await requests.AdmitAsync(request, caller, record);
        scheduler.Wake();
        return await views.ViewAsync(created);
    }

    public async Task<IReadOnlyList<InstanceView>> ListAsync(Caller caller, InstanceQuery query, CancellationToken ct = default)
    {
        var (limit, offset) = Paging.Of(query.Limit, query.Offset);
        List<InstanceState>? states = null;
        if (query.States is { } names)
        {
            states = [];
            foreach (var name in names)
            {
                if (!InstanceStateMachine.TryParseState(name, out var parsed))
                    throw new InvalidInputException("state", $"'state' = '{Validate.Trim(name)}' is not a state; accepted: {string.Join(", ", Enum.GetValues<InstanceState>().Select(InstanceStateMachine.Name))}.");
                states.Add(parsed);
            }
        }
        if (query.Ids is { } ids)
        {
            // One query for all of them (EC2's DescribeInstances with InstanceId.N polls this with a whole reservation).
            var rows = (await store.GetManyAsync(ids)).Where(row => AccessRules.CanSee(caller, InstanceViews.OwnershipOf(row))
                && (states is null || states.Contains(row.StateValue)));
            return await views.ViewAsync(rows.OrderBy(r => r.Id).Skip(offset).Take(limit));
        }
        return await views.ViewAsync(await store.ListAsync(states, caller.IsAdmin ? null : caller.UserId, limit, offset));
    }

    public async Task<InstanceView> GetAsync(Caller caller, long id, CancellationToken ct = default) =>
        await views.ViewAsync(await VisibleAsync(id, caller, Operation.Use));

    public async Task<InstanceView> TerminateAsync(Caller caller, long id, CancellationToken ct = default)
    {
        var row = await VisibleAsync(id, caller, Operation.Manage);
        RequireAllowed(row, InstanceAction.Terminate);
        await lifecycle.TerminateAsync(id);
        return await views.ViewAsync((await store.GetAsync(id))!);
    }

    public async Task<InstanceView> ActAsync(Caller caller, long id, string action, CancellationToken ct = default)
    {
        if (!InstanceStateMachine.TryParseAction(action, out var parsed))
            throw new NotFoundException($"Action '{Validate.Trim(action)}' (accepted: stop, start, reboot, suspend, resume, shutdown; DELETE terminates)");
        var row = await VisibleAsync(id, caller, Operation.Manage);
        RequireAllowed(row, parsed);
        await lifecycle.StartActionAsync(id, parsed);
        return await views.ViewAsync((await store.GetAsync(id))!);
    }

    public async Task<IReadOnlyList<InstanceTypeView>> ListTypesAsync(CancellationToken ct = default) =>
        (await store.ListTypesAsync()).Select(t => new InstanceTypeView(t.Name, t.Cpu, t.MemoryMib, t.Builtin)).ToList();

    public async Task<string> ConsoleAsync(Caller caller, long id, int? tail, CancellationToken ct = default)
    {
        if (tail is { } n) Validate.Range(n, "tail", 1, ConsoleEndpoints.MaxTail);
        await VisibleAsync(id, caller, Operation.Use);
        return consoles.Tail(id, tail);
    }

    public async Task<string?> UserDataAsync(Caller caller, long id, CancellationToken ct = default) =>
        (await VisibleAsync(id, caller, Operation.Use)).UserData;

    /// <summary>The instance if the caller may see it (else 404) and do <paramref name="operation"/> on it (else 403).</summary>
    Task<InstanceRow> VisibleAsync(long id, Caller caller, Operation operation) => VisibleAsync(id, caller, store, operation);

    /// <summary>The instance if the caller may see it (else 404) and do <paramref name="operation"/> on it (else 403).</summary>
    internal static async Task<InstanceRow> VisibleAsync(long id, Caller caller, ComputeStore store, Operation operation)
    {
        var row = await store.GetAsync(id);
        var ownership = row is null ? null : InstanceViews.OwnershipOf(row);
        if (row is null || !AccessRules.CanSee(caller, ownership!)) throw new NotFoundException($"Instance {id}");
        if (!AccessRules.Can(caller, ownership!, operation))
            throw new ForbiddenException($"You may see instance {id} but not {operation.ToString().ToLowerInvariant()} it; ask its owner.");
        return row;
    }

    static void RequireAllowed(InstanceRow row, InstanceAction action)
    {
        if (InstanceStateMachine.IsAllowed(row.StateValue, action)) return;
        var allowed = InstanceStateMachine.AllowedActions(row.StateValue).Select(InstanceStateMachine.Name).ToList();
        var error = new ConflictException(
            $"Instance {row.Id} is {row.State}: '{InstanceStateMachine.Name(action)}' is not possible now. " +
            (allowed.Count == 0 ? "No action is possible in this state." : $"Allowed now: {string.Join(", ", allowed)}."));
        error.Extensions["state"] = row.State;
        error.Extensions["allowedActions"] = allowed;
        throw error;
    }
}
