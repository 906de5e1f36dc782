using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Modules.Compute;

internal sealed partial class InstanceLifecycle
{
    /// <summary>Ends an instance in any state: undoes a deployment in progress, or stops the VM and removes its media.</summary>
    public async Task TerminateAsync(long id)
    {
        var gate = LockOf(id);
        await gate.WaitAsync();
        try
        {
            var row = await store.GetAsync(id);
            if (row is null || row.StateValue is InstanceState.Done or InstanceState.Epilog) return;
            if (row.StateValue == InstanceState.Pending && !_deploying.ContainsKey(id))
            {
                if (await store.TransitionAsync(id, [InstanceState.Pending], InstanceState.Epilog) is not null) await FinishAsync(id);
                return;
            }
            if (await store.TransitionAsync(id, [row.StateValue], InstanceState.Epilog) is not { } ending) return;
            Publish(ending);
            if (_deploying.TryGetValue(id, out var deploying))
            {
                // DeployAsync sees EPILOG, rolls back its own steps and finishes the instance.
                await deploying.CancelAsync();
                return;
            }
        }
        finally
        {
            gate.Release();
        }
        _ = Task.Run(() => EpilogAsync(id));
    }

    async Task EpilogAsync(long id)
    {
        try
        {
            var row = await store.GetAsync(id);
            if (row is null) return;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await CleanUpAsync(row, timeout.Token);
            await FinishAsync(id);
        }
        catch (Exception e)
        {
            logger.LogError(e, "EPILOG of instance {Id} failed", id);
            await FailAsync(id, InstanceState.Epilog, "clean-up failed: " + e.Message);
        }
    }

    /// <summary>Runs a user action in the background; the API has already checked it is allowed in the current state.</summary>
    public async Task StartActionAsync(long id, InstanceAction action)
    {
        if (action == InstanceAction.Shutdown)
        {
            if (await store.TransitionAsync(id, [InstanceState.Running], InstanceState.Shutdown) is not { } shutting) return;
            Publish(shutting);
        }
        _ = Task.Run(() => RunActionAsync(id, action));
    }

    async Task RunActionAsync(long id, InstanceAction action)
    {
        var gate = LockOf(id);
        await gate.WaitAsync();
        try
        {
            var row = await store.GetAsync(id);
            if (row is null) return;
            var driver = services.GetHypervisor(row.Driver);
            var vm = new VmRef(id, row.VmDir, (int?)row.Pid);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
            timeout.CancelAfter(TimeSpan.FromSeconds(compute.ShutdownTimeoutSeconds + compute.BootTimeoutSeconds));
            var ct = timeout.Token;
            try
            {
                switch (action)
                {
                    case InstanceAction.Suspend:
                        await driver.PauseAsync(vm, ct);
                        await store.TransitionAsync(id, [InstanceState.Running], InstanceState.Suspended);
                        break;
                    case InstanceAction.Resume:
                        await driver.ResumeAsync(vm, ct);
                        await store.TransitionAsync(id, [InstanceState.Suspended], InstanceState.Running);
                        break;
                    case InstanceAction.Reboot:
                        await driver.ResetAsync(vm, ct);
                        await store.ClearReadyAsync(id);
                        break;
                    case InstanceAction.Stop:
                        await driver.ShutdownAsync(vm, TimeSpan.FromSeconds(compute.ShutdownTimeoutSeconds), ct);
                        await store.MarkStoppedAsync(id);
                        break;
                    case InstanceAction.Start:
                        await BootAgainAsync(row, driver, ct);
                        break;
                    case InstanceAction.Shutdown:
                        await driver.ShutdownAsync(vm, TimeSpan.FromSeconds(compute.ShutdownTimeoutSeconds), ct);
                        if (row.SaveImage) await SaveImageAsync(row, ct);
                        if (await store.TransitionAsync(id, [InstanceState.Shutdown], InstanceState.Epilog) is { } ending)
                        {
                            Publish(ending);
                            await CleanUpAsync(ending, ct);
                            await FinishAsync(id);
                            return;
                        }
                        break;
                }
            }
            catch (Exception e) when (e is HypervisorException or OperationCanceledException or Platform.Host.ToolFailedException)
            {
                var reason = $"{InstanceStateMachine.Name(action)} failed: {(e is OperationCanceledException ? "the driver did not answer in time" : e.Message)}";
                logger.LogWarning("Instance {Id}: {Reason}", id, reason);
                if (action is InstanceAction.Start or InstanceAction.Shutdown)
                {
                    await CleanUpAsync((await store.GetAsync(id))!, CancellationToken.None);
                    await FailAsync(id, action == InstanceAction.Start ? InstanceState.Boot : InstanceState.Shutdown, reason);
                    return;
                }
                await store.SetFailureReasonAsync(id, reason);
            }
            await PublishAsync(id);
        }
        finally
        {
            gate.Release();
        }
    }

    async Task BootAgainAsync(InstanceRow row, IHypervisorDriver driver, CancellationToken ct)
    {
        if (await store.TransitionAsync(row.Id, [InstanceState.Stopped], InstanceState.Boot) is not { } booting) return;
        Publish(booting);
        var nics = await networking.PlansAsync(row.Id, ct);
        var dir = row.VmDir ?? InstanceDir(row.Id);
        var iso = Path.Combine(dir, "context.iso");
        var spec = SpecOf(row, row.BootDisk, await MountedVolumesAsync(row, ct), dir, nics, driver.UsesRealMedia ? iso : null);
        if (driver.UsesRealMedia) await networking.PreBootAsync(row.Id, ct);
        var started = await driver.StartAsync(spec, ct);
        await store.MarkRunningAsync(row.Id, started.Pid);
        if (driver.UsesRealMedia) await networking.PostBootAsync(row.Id, ct);
    }

    /// <summary>
    /// After a restart: match every instance with what really runs. VMs of this data dir that no live instance owns are
    /// killed first, before anything they hold (ports, leases, disks) is given back. Then running VMs stay RUNNING, dead
    /// ones are FAILED and cleaned up, interrupted deployments fail (a VM started by one is killed, found by its pidfile
    /// or name even though its pid was not recorded yet), interrupted clean-ups finish, PENDING ones are queued; and the
    /// sweep runs again over the rows as reconciliation left them.
    /// </summary>
    public async Task ReconcileAsync(CancellationToken ct)
    {
        await KillUnownedVmsAsync(ct);
        var rows = await store.ListAsync(null, null);
        foreach (var row in rows.Where(r => r.StateValue is not (InstanceState.Done)))
        {
            var driver = services.GetHypervisor(row.Driver);
            var vm = new VmRef(row.Id, row.VmDir, (int?)row.Pid);
            switch (row.StateValue)
            {
                case InstanceState.Pending:
                    // The scheduler's first pass places it (again, if it had been placed before the restart).
                    break;
                case InstanceState.Prolog:
                    await CleanUpAsync(row, ct);
                    await FailAsync(row.Id, InstanceState.Prolog, "the server stopped during PROLOG; nothing of it was kept");
                    break;
                case InstanceState.Boot:
                    // The VM may have started (QEMU writes its pidfile before the server records the pid): CleanUpAsync
                    // kills it before the ports, leases and disks go back.
                    await CleanUpAsync(row, ct);
                    await FailAsync(row.Id, InstanceState.Boot, "the server stopped during BOOT; the VM it was starting was stopped and nothing of it was kept");
                    break;
                case InstanceState.Epilog:
                    _ = Task.Run(() => EpilogAsync(row.Id), ct);
                    break;
                case InstanceState.Running or InstanceState.Suspended or InstanceState.Shutdown:
                {
                    VmPowerState power;
                    try { power = await driver.QueryAsync(vm, ct); }
                    catch (HypervisorException) { power = VmPowerState.Off; }
                    if (power == VmPowerState.Off)
                    {
                        await CleanUpAsync(row, ct);
                        await FailAsync(row.Id, row.StateValue, "the VM was no longer running when the server restarted (it stopped or crashed while the server was down)");
                        break;
                    }
                    if (row.StateValue == InstanceState.Shutdown)
                        _ = Task.Run(() => RunActionAsync(row.Id, InstanceAction.Shutdown), ct);
                    logger.LogInformation("Instance {Id} re-attached after restart: {State}", row.Id, power);
                    break;
                }
            }
        }
        await KillUnownedVmsAsync(ct);
    }

    /// <summary>Kills every VM a driver finds running for this data dir whose instance is missing, ended, or on another driver's books as ended.</summary>
    async Task KillUnownedVmsAsync(CancellationToken ct)
    {
        var rows = (await store.ListAsync(null, null)).ToDictionary(r => r.Id);
        foreach (var driver in allDrivers)
        {
            foreach (var orphan in await driver.ListRunningAsync(ct))
            {
                if (rows.TryGetValue(orphan.InstanceId, out var owner))
                {
                    if (owner.Driver != driver.Name) continue;
                    if (InstanceStateMachine.MayHaveVm(owner.StateValue) || owner.StateValue == InstanceState.Pending) continue;
                }
                logger.LogWarning("Killing VM of instance {Id} ({Driver}, pid {Pid}): no live instance owns it ({State})", orphan.InstanceId, driver.Name,
                    orphan.Pid, owner is null ? "no such instance" : owner.State);
                try { await driver.KillAsync(orphan, ct); }
                catch (HypervisorException e) { logger.LogError("Instance {Id}: the VM nothing owns could not be killed: {Error}", orphan.InstanceId, e.Message); }
            }
        }
    }

    /// <summary>A periodic pass: a VM that stopped running on its own makes its instance FAILED (and cleaned up).</summary>
    public async Task MonitorAsync(CancellationToken ct)
    {
        var rows = await store.ListAsync([InstanceState.Running, InstanceState.Suspended], null);
        foreach (var row in rows)
        {
            var gate = LockOf(row.Id);
            if (!await gate.WaitAsync(0, ct)) continue;
            try
            {
                var current = await store.GetAsync(row.Id);
                if (current is null || current.StateValue is not (InstanceState.Running or InstanceState.Suspended)) continue;
                var driver = services.GetHypervisor(current.Driver);
                VmPowerState power;
                try { power = await driver.QueryAsync(new VmRef(current.Id, current.VmDir, (int?)current.Pid), ct); }
                catch (HypervisorException) { continue; }
                if (power == VmPowerState.Unresponsive)
                {
                    // Frozen or wedged, not gone: the instance stays as it is, says why, and is asked again next pass.
                    if (await store.SetMonitorWarningAsync(current.Id,
                            $"the VM's QEMU is not answering (QMP timed out); it is still there, so the instance stays {current.State} and is checked again every {compute.MonitorIntervalSeconds} s") is { } warned)
                        Publish(warned);
                    continue;
                }
                if (power != VmPowerState.Off)
                {
                    if (current.FailureReason?.StartsWith("monitor: ", StringComparison.Ordinal) == true
                        && await store.SetMonitorWarningAsync(current.Id, null) is { } recovered)
                    {
                        logger.LogInformation("Instance {Id}: its QEMU answers again", current.Id);
                        Publish(recovered);
                    }
                    continue;
                }
                await CleanUpAsync(current, ct);
                await FailAsync(current.Id, current.StateValue,
                    "the VM stopped running outside the server's control (powered off from inside, or crashed)");
            }
            finally
            {
                gate.Release();
            }
        }
    }
}
