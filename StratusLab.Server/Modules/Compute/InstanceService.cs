using StratusLab.Server.Modules.Compute.Console;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Compute's application service (see <see cref="IInstances"/>): the one place front doors reach instances through.</summary>
internal sealed class InstanceService(InstanceRequests requests, ComputeStore store, InstanceViews views, InstanceLifecycle lifecycle,
    ConsoleLogs consoles, Scheduling.Contracts.ISchedulerSignal scheduler, IFreeSpaceGuard space, InstanceEvents events,
    Scheduling.Contracts.IScheduler placement, Scheduling.Contracts.IHostInventory hosts, IServiceProvider services) : IInstances
{
    public async Task<HostEvacuation> EvacuateHostAsync(Caller caller, string host, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) throw new ForbiddenException("Only administrators may evacuate a host.");
        var known = (await hosts.ListAsync(ct)).FirstOrDefault(h => string.Equals(h.Name, host, StringComparison.OrdinalIgnoreCase))
            ?? throw new NotFoundException($"Host '{Validate.Trim(host)}'");
        // Drained first, so nothing new lands there while its instances leave.
        await hosts.SetEnabledAsync(known.Name, false, ct);
        var results = new List<EvacuatedInstance>();
        foreach (var row in (await store.ListAsync(null, null)).Where(r => string.Equals(r.Host, known.Name, StringComparison.OrdinalIgnoreCase)))
            if (await lifecycle.EvacuateAsync(row.Id, known.Name, placement, ct) is { } result)
                results.Add(result);
        return new HostEvacuation(known.Name, results);
    }

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

    public Task<InstanceView> ActAsync(Caller caller, long id, string action, CancellationToken ct = default) =>
        ActAsync(caller, id, action, new InstanceActionOptions(), ct);

    public async Task<InstanceView> ActAsync(Caller caller, long id, string action, InstanceActionOptions options, CancellationToken ct = default)
    {
        if (!InstanceStateMachine.TryParseAction(action, out var parsed))
            throw new NotFoundException($"Action '{Validate.Trim(action)}' (accepted: stop, start, reboot, suspend, resume, shutdown; DELETE terminates)");
        if (options.Force && options.Graceful)
            throw new InvalidInputException("force", "'force' and 'graceful' exclude each other: give one (force: at once; graceful: through the guest's power-off).");
        if (options.Force && parsed is not (InstanceAction.Stop or InstanceAction.Reboot))
            throw new InvalidInputException("force", $"'{InstanceStateMachine.Name(parsed)}' cannot be forced; only stop (power off at once) and reboot (a reset) take 'force'.");
        if (options.Graceful && parsed != InstanceAction.Reboot)
            throw new InvalidInputException("graceful", $"'{InstanceStateMachine.Name(parsed)}' takes no 'graceful'; only reboot does (a guest power-off, then power on). Stop is graceful unless forced.");
        if (options.Save && parsed != InstanceAction.Shutdown)
            throw new InvalidInputException("save", $"'{InstanceStateMachine.Name(parsed)}' takes no 'save'; only shutdown does (the powered-off disk becomes a new signed image).");
        var row = await VisibleAsync(id, caller, Operation.Manage);
        RequireAllowed(row, parsed);
        if (row.Driver == "cloud" && parsed is InstanceAction.Suspend or InstanceAction.Resume
            && await services.GetRequiredService<Drivers.CloudDriver>().RefusalOfAsync(row, InstanceStateMachine.Name(parsed), ct) is { } refused)
            throw new ConflictException(refused);
        await lifecycle.StartActionAsync(id, parsed, options);
        return await views.ViewAsync((await store.GetAsync(id))!);
    }

    public async Task<InstanceView> RenameAsync(Caller caller, long id, string name, CancellationToken ct = default)
    {
        var valid = Validate.Name(name, "name");
        var row = await VisibleAsync(id, caller, Operation.Manage);
        if (row.StateValue == InstanceState.Done)
            throw new ConflictException($"Instance {id} is DONE: an ended instance cannot be renamed.");
        // A guest named after its instance keeps the host name it booted with.
        var renamed = await store.RenameAsync(id, valid, row.Guest with { Hostname = InstanceLifecycle.HostnameOf(row) })
                      ?? throw new ConflictException($"Instance {id} ended while it was being renamed.");
        events.Publish(new InstanceEvent(renamed.Id, renamed.Name, renamed.State, renamed.Ready, renamed.FailedStep, renamed.FailureReason, DateTimeOffset.UtcNow)
        {
            Ownership = InstanceViews.OwnershipOf(renamed),
        });
        return await views.ViewAsync(renamed);
    }

    public async Task<IReadOnlyList<InstanceTypeView>> ListTypesAsync(CancellationToken ct = default) =>
        (await store.ListTypesAsync()).Select(t => new InstanceTypeView(t.Name, t.Cpu, t.MemoryMib, t.Builtin)).ToList();

    public async Task<string> ConsoleAsync(Caller caller, long id, int? tail, CancellationToken ct = default)
    {
        if (tail is { } n) Validate.Range(n, "tail", 1, ConsoleEndpoints.MaxTail);
        await VisibleAsync(id, caller, Operation.Use);
        return consoles.Tail(id, tail);
    }

    public async Task<Stream> OpenGraphicalConsoleAsync(Caller caller, long id, CancellationToken ct = default)
    {
        var row = await VisibleAsync(id, caller, Operation.Manage);
        if (row.StateValue is not (InstanceState.Running or InstanceState.Suspended or InstanceState.Boot))
            throw new ConflictException($"Instance {id} is {row.State}: its graphical console exists while the VM runs; start the instance first.");
        try
        {
            return await services.GetHypervisor(row.Driver).OpenGraphicalConsoleAsync(new VmRef(row.Id, row.VmDir, (int?)row.Pid), ct);
        }
        catch (HypervisorException e)
        {
            throw new ConflictException($"Instance {id} has no graphical console now: {e.Message}.");
        }
    }

    public async Task<Stream> OpenSerialConsoleAsync(Caller caller, long id, CancellationToken ct = default)
    {
        var row = await VisibleAsync(id, caller, Operation.Manage);
        if (row.StateValue is not (InstanceState.Running or InstanceState.Suspended or InstanceState.Boot))
            throw new ConflictException($"Instance {id} is {row.State}: the interactive console exists while the VM runs. Its log stays readable: GET /api/v1/instances/{id}/console.");
        try
        {
            return await services.GetHypervisor(row.Driver).OpenSerialConsoleAsync(new VmRef(row.Id, row.VmDir, (int?)row.Pid), ct);
        }
        catch (HypervisorException e)
        {
            throw new ConflictException($"Instance {id} has no serial console to connect to now: {e.Message}. Its log stays readable: GET /api/v1/instances/{id}/console.");
        }
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
