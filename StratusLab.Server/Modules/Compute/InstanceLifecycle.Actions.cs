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
        using var working = Working(id);
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
            // If even that cannot be written (disk full), the instance stays EPILOG and the recovery pass runs EPILOG again.
            try { await FailAsync(id, InstanceState.Epilog, "clean-up failed: " + e.Message); }
            catch (Exception failing) { logger.LogError("Instance {Id}: marking it FAILED failed: {Error}; EPILOG is retried by the next recovery pass", id, failing.Message); }
        }
    }

    /// <summary>Runs a user action in the background; the API has already checked it is allowed in the current state.</summary>
    public async Task StartActionAsync(long id, InstanceAction action, InstanceActionOptions? options = null)
    {
        if (action == InstanceAction.Shutdown)
        {
            if (await store.TransitionAsync(id, [InstanceState.Running], InstanceState.Shutdown) is not { } shutting) return;
            Publish(shutting);
        }
        _ = Task.Run(() => RunActionAsync(id, action, options ?? new InstanceActionOptions()));
    }

    async Task RunActionAsync(long id, InstanceAction action, InstanceActionOptions options)
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
                    case InstanceAction.Reboot when options.Graceful:
                        // QEMU has no ACPI reboot button: the guest powers off through ACPI as for stop, then the VM boots again.
                        await driver.ShutdownAsync(vm, TimeSpan.FromSeconds(compute.ShutdownTimeoutSeconds), ct);
                        if (await store.MarkStoppedAsync(id) is not { } stopped) break;
                        Publish(stopped);
                        await BootAgainAsync(stopped, driver, ct);
                        break;
                    case InstanceAction.Reboot:
                        await driver.ResetAsync(vm, ct);
                        await store.ClearReadyAsync(id);
                        break;
                    case InstanceAction.Stop:
                        // Forced: a zero timeout is the driver's immediate power-off (no ACPI request, no wait).
                        await driver.ShutdownAsync(vm, options.Force ? TimeSpan.Zero : TimeSpan.FromSeconds(compute.ShutdownTimeoutSeconds), ct);
                        await store.MarkStoppedAsync(id);
                        break;
                    case InstanceAction.Start:
                        await BootAgainAsync(row, driver, ct);
                        break;
                    case InstanceAction.Shutdown:
                        await driver.ShutdownAsync(vm, TimeSpan.FromSeconds(compute.ShutdownTimeoutSeconds), ct);
                        // Saved when launched with save, or when this shutdown asks for it (the dashboard's "save as image").
                        if (row.SaveImage || options.Save) await SaveImageAsync(row, ct);
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
                var current = (await store.GetAsync(id))!;
                if (action is InstanceAction.Start or InstanceAction.Shutdown || (action == InstanceAction.Reboot && current.StateValue is InstanceState.Boot or InstanceState.Stopped))
                {
                    await CleanUpAsync(current, CancellationToken.None);
                    await FailAsync(id, action == InstanceAction.Shutdown ? InstanceState.Shutdown : InstanceState.Boot, reason);
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
        var boot = driver.UsesRealMedia ? await BootDiskForHostAsync(row, ct) : row.BootDisk;
        var spec = SpecOf(row, boot, await MountedVolumesAsync(row, ct), dir, nics, driver.UsesRealMedia ? iso : null);
        if (driver.UsesRealMedia) await networking.PreBootAsync(row.Id, row.Host, ct);
        var started = await driver.StartAsync(spec, ct);
        await ReplugAsync(row, driver, new VmRef(row.Id, dir, started.Pid), ct);
        await store.MarkRunningAsync(row.Id, started.Pid);
        if (driver.UsesRealMedia) await networking.PostBootAsync(row.Id, ct);
    }

    /// <summary>
    /// Volumes hot-plugged before a stop keep their mount records: plug them in again as the VM starts, with their device
    /// ids (so a later detach finds them). One that fails stays mounted on paper and is named in the reason.
    /// </summary>
    async Task ReplugAsync(InstanceRow row, IHypervisorDriver driver, VmRef vm, CancellationToken ct)
    {
        var hot = (await volumes.MountsOfAsync(row.Id, ct)).Where(m => m.HotPlugged).ToList();
        foreach (var mount in hot)
        {
            try
            {
                await driver.AttachDiskAsync(vm, HotDisks.Describe(mount.Device, mount.Turl, mount.Format, mount.ReadOnly), ct);
                logger.LogInformation("Instance {Id}: volume {Volume} plugged in again after start ({Device})", row.Id, mount.Uuid, mount.Device);
            }
            catch (Exception e) when (e is HypervisorException or ArgumentException)
            {
                logger.LogWarning("Instance {Id}: volume {Volume} could not be plugged in again after start: {Error}", row.Id, mount.Uuid, e.Message);
                await store.SetFailureReasonAsync(row.Id, $"volume {mount.Uuid} could not be plugged in again after start: {e.Message}; detach and attach it again");
            }
        }
    }

    /// <summary>
    /// After a restart: match every instance with what really runs. VMs of this data dir that no live instance owns are
    /// killed first, before anything they hold (ports, leases, disks) is given back. Then running VMs stay RUNNING, dead
    /// ones are FAILED and cleaned up, deployments interrupted while their image downloaded run their PROLOG again, other
    /// interrupted deployments fail (a VM started by one is killed, found by its pidfile or name even though its pid was
    /// not recorded yet), interrupted clean-ups finish, PENDING ones are queued; and the sweep runs again over the rows
    /// as reconciliation left them.
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
                    // A launch that waited for an image download runs its PROLOG again: the download resumes from its kept
                    // partial file. Any other interrupted PROLOG fails as before (its step may not be safe to repeat blindly).
                    if (await WaitsForDownloadAsync(row))
                    {
                        logger.LogInformation("Instance {Id} was waiting for its image download when the server stopped; its PROLOG runs again", row.Id);
                        _resuming[row.Id] = 0;
                        Enqueue(row.Id);
                    }
                    else
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
                case InstanceState.Running or InstanceState.Suspended or InstanceState.Shutdown or InstanceState.Unknown:
                {
                    VmPowerState power;
                    try { power = await driver.QueryAsync(vm, ct); }
                    catch (VmStateUnknownException e) when (row.StateValue != InstanceState.Shutdown)
                    {
                        // Its host does not answer: the VM may still run there; the monitor re-attaches or fails it once the host answers.
                        await MarkUnknownAsync(row, e.Message);
                        break;
                    }
                    catch (HypervisorException) { power = VmPowerState.Off; }
                    if (power == VmPowerState.Off)
                    {
                        await CleanUpAsync(row, ct);
                        await FailAsync(row.Id, row.StateValue, "the VM was no longer running when the server restarted (it stopped or crashed while the server was down)");
                        break;
                    }
                    if (row.StateValue == InstanceState.Shutdown)
                        _ = Task.Run(() => RunActionAsync(row.Id, InstanceAction.Shutdown, new InstanceActionOptions()), ct);
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

    DateTimeOffset _lastNodeSweep = DateTimeOffset.MinValue;

    /// <summary>Every Compute:NodeSweepSeconds: VMs on SSH nodes that no live instance owns on that node are killed there.</summary>
    async Task SweepNodesAsync(CancellationToken ct)
    {
        if (DateTimeOffset.UtcNow - _lastNodeSweep < TimeSpan.FromSeconds(compute.NodeSweepSeconds)) return;
        _lastNodeSweep = DateTimeOffset.UtcNow;
        if (allDrivers.OfType<SshQemuDriver>().FirstOrDefault() is not { } ssh) return;
        await ssh.SweepNodesAsync(async (id, node) =>
        {
            var owner = await store.GetAsync(id);
            return owner is not null && owner.Driver == ssh.Name && string.Equals(owner.Host, node, StringComparison.OrdinalIgnoreCase)
                && (InstanceStateMachine.MayHaveVm(owner.StateValue) || owner.StateValue == InstanceState.Pending);
        }, ct);
    }

    /// <summary>A guest kernel panicked (QMP GUEST_PANICKED): FAILED with the console's last words, VM and capacity released.</summary>
    public async Task FailPanickedAsync(long id, CancellationToken ct)
    {
        // The panic message reaches the serial log a moment after pvpanic tells QEMU.
        await Task.Delay(500, ct);
        var gate = LockOf(id);
        await gate.WaitAsync(ct);
        try
        {
            var row = await store.GetAsync(id);
            // Not yet RUNNING (or already ending): the monitoring pass sees the panicked status once deployment is done.
            if (row is null || row.StateValue is not (InstanceState.Running or InstanceState.Suspended)) return;
            await FailPanickedLockedAsync(row, ct);
        }
        finally
        {
            gate.Release();
        }
    }

    async Task FailPanickedLockedAsync(InstanceRow row, CancellationToken ct)
    {
        var reason = consoles.PanicReason(row.Id, panicked: true)!;
        await CleanUpAsync(row, ct);
        await FailAsync(row.Id, row.StateValue, reason);
    }

    string ConsoleTail(long id)
    {
        var lines = consoles.LastLines(id, 5);
        return lines.Count == 0 ? "" : "; last console lines: " + consoles.Quote(lines);
    }

    DateTimeOffset _lastRetentionPass = DateTimeOffset.MinValue;

    /// <summary>Flags RUNNING instances that did not become ready within their ready timeout (once each).</summary>
    async Task FlagNotReadyAsync()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var row in await store.ListAwaitingReadyAsync())
        {
            // The simulated driver records no start time: its VM runs from when it was placed.
            var started = row.StartedAt ?? row.PlacedAt ?? row.CreatedAt;
            if (row.ReadyTimeoutSeconds is not { } limit || now < started.AddSeconds(limit)) continue;
            var reason = $"the guest did not become ready within {limit} s of starting (readyTimeoutSeconds){ConsoleTail(row.Id)}. " +
                         $"See its console: stratuslab console-log {row.Id}";
            if (await store.MarkNotReadyAsync(row.Id, reason) is { } flagged)
            {
                logger.LogWarning("Instance {Id} is not ready after {Seconds} s", row.Id, limit);
                Publish(flagged);
            }
        }
    }

    /// <summary>DONE and FAILED instances past Compute:EndedInstanceRetentionHours go, with their console logs (checked every 10 minutes).</summary>
    public async Task RemoveExpiredAsync(bool force = false)
    {
        var now = DateTimeOffset.UtcNow;
        if (!force && now - _lastRetentionPass < TimeSpan.FromMinutes(10)) return;
        _lastRetentionPass = now;
        var removed = await store.DeleteEndedBeforeAsync(now.AddHours(-compute.EndedInstanceRetentionHours));
        foreach (var id in removed)
        {
            consoles.Delete(id);
            _locks.TryRemove(id, out _);
        }
        if (removed.Count > 0) logger.LogInformation("Removed {Count} ended instance(s) past their retention time, with their console logs", removed.Count);
    }

    /// <summary>A periodic pass: a VM that stopped running on its own makes its instance FAILED (and cleaned up); stranded instances are finished.</summary>
    public async Task MonitorAsync(CancellationToken ct)
    {
        // Its own failures (the store still refuses writes) must not stop the watch over running VMs.
        try { await RecoverStrandedAsync(ct); }
        catch (Exception e) when (!ct.IsCancellationRequested) { logger.LogWarning("Recovering stranded instances failed: {Error}; retried next pass", e.Message); }
        try
        {
            await FlagNotReadyAsync();
            await RemoveExpiredAsync();
        }
        catch (Exception e) when (!ct.IsCancellationRequested) { logger.LogWarning("The ready-timeout or retention pass failed: {Error}; retried next pass", e.Message); }
        try { await SweepNodesAsync(ct); }
        catch (Exception e) when (!ct.IsCancellationRequested) { logger.LogWarning("Sweeping SSH nodes for VMs nothing owns failed: {Error}; retried later", e.Message); }
        var rows = await store.ListAsync([InstanceState.Running, InstanceState.Suspended, InstanceState.Unknown], null);
        foreach (var row in rows)
        {
            var gate = LockOf(row.Id);
            if (!await gate.WaitAsync(0, ct))
            {
                logger.LogDebug("Monitor: instance {Id} is busy (an action holds it); checked next pass", row.Id);
                continue;
            }
            try
            {
                var current = await store.GetAsync(row.Id);
                if (current is null || current.StateValue is not (InstanceState.Running or InstanceState.Suspended or InstanceState.Unknown)) continue;
                var driver = services.GetHypervisor(current.Driver);
                VmPowerState power;
                try { power = await driver.QueryAsync(new VmRef(current.Id, current.VmDir, (int?)current.Pid), ct); }
                catch (VmStateUnknownException e)
                {
                    // Its host does not answer: the VM may well still run there. A host known down makes it UNKNOWN now; one
                    // silent answer counts towards Compute:UnknownAfterSeconds.
                    if (e.HostDown) await MarkUnknownAsync(current, e.Message);
                    else await SilentAsync(current, e.Message);
                    continue;
                }
                catch (HypervisorException) { continue; }
                if (power == VmPowerState.Unresponsive)
                {
                    // Frozen or wedged, not gone: the instance stays as it is, says why, and is asked again next pass.
                    await SilentAsync(current, "the VM's QEMU is not answering (QMP timed out); it is still there");
                    continue;
                }
                _silentSince.TryRemove(current.Id, out _);
                if (power == VmPowerState.Panicked)
                {
                    await FailPanickedLockedAsync(current, ct);
                    continue;
                }
                if (power == VmPowerState.Running && consoles.ShowsKernelPanic(current.Id))
                {
                    // Panicked before its pvpanic driver was loaded: the console is the only witness.
                    await FailPanickedLockedAsync(current, ct);
                    continue;
                }
                if (power != VmPowerState.Off && current.StateValue == InstanceState.Unknown)
                {
                    // Its host answers again and the VM is still there: re-attached as it is now (running or paused).
                    if (await store.MarkAnsweringAsync(current.Id, power == VmPowerState.Paused ? InstanceState.Suspended : InstanceState.Running) is { } back)
                    {
                        logger.LogInformation("Instance {Id}: its host answers again; the VM is re-attached ({State})", current.Id, back.State);
                        Publish(back);
                    }
                    continue;
                }
                if (power != VmPowerState.Off)
                {
                    consoles.Bound(current.Id);
                    if (current.FailureReason?.StartsWith("monitor: ", StringComparison.Ordinal) == true
                        && await store.SetMonitorWarningAsync(current.Id, null) is { } recovered)
                    {
                        logger.LogInformation("Instance {Id}: its QEMU answers again", current.Id);
                        Publish(recovered);
                    }
                    continue;
                }
                await CleanUpAsync(current, ct);
                // A QEMU that exited on its own (after a panic, or a crash) leaves its last words on the console.
                var reason = consoles.PanicReason(current.Id, panicked: false)
                    ?? (current.StateValue == InstanceState.Unknown
                        ? "the VM stopped running while its host did not answer (the host answers again, and the VM is gone)"
                        : "the VM stopped running outside the server's control (powered off from inside, or crashed)") + ConsoleTail(current.Id);
                await FailAsync(current.Id, current.StateValue, reason);
            }
            finally
            {
                gate.Release();
            }
        }
    }

    HashSet<long> _strandedLastPass = [];

    // Since when each VM has not answered (QMP timed out, or its node did not answer once), for Compute:UnknownAfterSeconds.
    readonly System.Collections.Concurrent.ConcurrentDictionary<long, DateTimeOffset> _silentSince = new();

    /// <summary>RUNNING or SUSPENDED → UNKNOWN with the reason (an UNKNOWN one gets the newer reason); capacity and quota stay held.</summary>
    async Task MarkUnknownAsync(InstanceRow row, string reason)
    {
        if (row.FailureReason == "monitor: " + reason) return;
        if (await store.MarkUnknownAsync(row.Id, reason) is not { } unknown) return;
        if (row.StateValue != InstanceState.Unknown) logger.LogWarning("Instance {Id}: state UNKNOWN: {Reason}", row.Id, reason);
        Publish(unknown);
    }

    /// <summary>
    /// The VM did not answer this pass: a warning while it is silent for less than Compute:UnknownAfterSeconds, UNKNOWN
    /// after that (an UNKNOWN instance stays so).
    /// </summary>
    async Task SilentAsync(InstanceRow row, string what)
    {
        var now = DateTimeOffset.UtcNow;
        var silent = now - _silentSince.GetOrAdd(row.Id, now);
        if (row.StateValue == InstanceState.Unknown || silent >= TimeSpan.FromSeconds(compute.UnknownAfterSeconds))
        {
            await MarkUnknownAsync(row, $"{what}; silent for {compute.UnknownAfterSeconds} s or more (Compute:UnknownAfterSeconds)");
            return;
        }
        if (await store.SetMonitorWarningAsync(row.Id,
                $"{what}, so the instance stays {row.State}, is checked again every {compute.MonitorIntervalSeconds} s and shows UNKNOWN if it is still silent after {compute.UnknownAfterSeconds} s") is { } warned)
            Publish(warned);
    }

    /// <summary>
    /// A deployment or EPILOG whose own failure path could not be written (the store refused writes: disk full) leaves its
    /// instance in PROLOG, BOOT or EPILOG with nothing working on it. Seen so on two passes in a row (so a deployment between
    /// its state change and its start is never taken for one), it is finished here: PROLOG and BOOT are cleaned up and FAILED
    /// with the reason they failed for (a BOOT whose VM runs becomes RUNNING), EPILOG runs again. What fails stays for the next pass.
    /// </summary>
    public async Task RecoverStrandedAsync(CancellationToken ct)
    {
        var rows = await store.ListAsync([InstanceState.Prolog, InstanceState.Boot, InstanceState.Epilog], null);
        var idle = rows.Where(r => !_working.ContainsKey(r.Id)).Select(r => r.Id).ToHashSet();
        var confirmed = idle.Where(_strandedLastPass.Contains).ToList();
        _strandedLastPass = idle;
        foreach (var id in confirmed)
        {
            var gate = LockOf(id);
            if (!await gate.WaitAsync(0, ct)) continue;
            try
            {
                var row = await store.GetAsync(id);
                if (_working.ContainsKey(id) || row is null || row.StateValue is not (InstanceState.Prolog or InstanceState.Boot or InstanceState.Epilog)) continue;
                if (row.StateValue == InstanceState.Epilog)
                {
                    logger.LogWarning("Instance {Id} was left in EPILOG by a clean-up that could not finish; running EPILOG again", id);
                    await EpilogAsync(id);
                    continue;
                }
                if (row.StateValue == InstanceState.Boot)
                {
                    VmPowerState power;
                    try { power = await services.GetHypervisor(row.Driver).QueryAsync(new VmRef(row.Id, row.VmDir, (int?)row.Pid), ct); }
                    catch (HypervisorException) { power = VmPowerState.Off; }
                    if (power != VmPowerState.Off && !_unrecorded.ContainsKey(id))
                    {
                        if (await store.MarkRunningAsync(id) is { } running) Publish(running);
                        continue;
                    }
                }
                var (step, reason) = _unrecorded.TryGetValue(id, out var lost)
                    ? lost
                    : (row.StateValue, $"the deployment stopped in {StateName(row.StateValue)} and its failure could not be recorded then (the store refused writes)");
                logger.LogWarning("Instance {Id} was left in {State} by a failure that could not be recorded; cleaning it up and marking it FAILED", id, StateName(row.StateValue));
                await CleanUpAsync(row, ct);
                await FailAsync(id, step, reason);
                _unrecorded.TryRemove(id, out _);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                _strandedLastPass.Add(id);
                logger.LogWarning("Instance {Id} is still stranded: {Error}; retried next pass", id, e.Message);
            }
            finally
            {
                gate.Release();
            }
        }
    }
}
