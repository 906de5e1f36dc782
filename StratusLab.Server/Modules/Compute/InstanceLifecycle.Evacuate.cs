using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Scheduling.Contracts;

namespace StratusLab.Server.Modules.Compute;

internal sealed partial class InstanceLifecycle
{
    /// <summary>
    /// Moves one instance off <paramref name="host"/> (already drained): its capacity moves first (nothing else changes
    /// when no other host fits), then a live VM is stopped on the old host and started on the new one from its boot disk
    /// (which a stop brings back from an SSH node). A VM that cannot be stopped keeps its host and its capacity there; one
    /// that does not start on the new host stays STOPPED there with the reason. Null when the instance is no longer on the host.
    /// An UNKNOWN VM (its node does not answer) moves only when its boot disk is a volume the node opened over iSCSI:
    /// the node is fenced off its disks first (Pdisk withdraws its initiator and closes its connections).
    /// </summary>
    public async Task<EvacuatedInstance?> EvacuateAsync(long id, string host, IScheduler scheduler, CancellationToken ct)
    {
        var gate = LockOf(id);
        await gate.WaitAsync(ct);
        try
        {
            var row = await store.GetAsync(id);
            if (row is null || !string.Equals(row.Host, host, StringComparison.OrdinalIgnoreCase)
                || row.StateValue is InstanceState.Done or InstanceState.Failed) return null;
            EvacuatedInstance Stays(string reason) => new(row.Id, row.Name, row.State, row.State, null, reason);
            // A VM whose node opened its boot disk over iSCSI from here survives the node: the disk is here, once the node is fenced off it.
            var fence = false;
            switch (row.StateValue)
            {
                case InstanceState.Unknown when row.BootDisk is { OverIscsi: true }:
                    fence = true;
                    break;
                case InstanceState.Unknown:
                    return Stays($"its host {host} does not answer: the VM may still run there, and its boot disk's latest writes are there (copied to the node's cache); " +
                        "terminate it, or evacuate again once the host answers");
                case InstanceState.Running or InstanceState.Suspended or InstanceState.Stopped:
                    break;
                default:
                    return Stays($"it is {row.State} (between states); evacuate the host again once it is RUNNING or STOPPED");
            }
            if (_deploying.ContainsKey(id)) return Stays("it is being deployed; evacuate the host again once it is RUNNING");
            var decision = await scheduler.RelocateAsync(
                new SchedulingRequest(row.Id, row.Cpu, row.MemoryMib, row.Admin.Requirements, row.Admin.Policy, row.CreatedAt), host, ct);
            if (!decision.Placed) return Stays(decision.Reason!);
            var live = row.StateValue is not InstanceState.Stopped;
            if (fence)
            {
                // The node may be half-dead (its QEMU still running, unreachable): it leaves the disks' ACLs and its iSCSI
                // connections are closed before any other host opens them, so it cannot write to them any more.
                try { await volumes.FenceAsync(id, host, ct); }
                catch (Platform.Contracts.DomainException e)
                {
                    await allocations.MoveAsync(id, host, CancellationToken.None);
                    return Stays($"its disks could not be fenced off {host}: {e.Detail}");
                }
                if (await store.MarkFencedAsync(id, $"evacuated from {host}, which did not answer: fenced off its disks and restarted elsewhere") is { } fenced) Publish(fenced);
                logger.LogWarning("Instance {Id}: host {Host} does not answer; fenced off its disks, restarting it elsewhere", id, host);
            }
            else if (live)
            {
                try
                {
                    await services.GetHypervisor(row.Driver).ShutdownAsync(new VmRef(id, row.VmDir, (int?)row.Pid), TimeSpan.FromSeconds(compute.ShutdownTimeoutSeconds), ct);
                }
                catch (Exception e) when (e is HypervisorException or Platform.Host.ToolFailedException or OperationCanceledException)
                {
                    await allocations.MoveAsync(id, host, CancellationToken.None);
                    return Stays($"it could not be stopped on {host}: {e.Message}");
                }
                if (await store.MarkStoppedAsync(id) is { } stopped) Publish(stopped);
            }
            var moved = await store.MoveStoppedAsync(id, decision.Host!, decision.Driver!) ?? throw new InvalidOperationException($"instance {id} left STOPPED while it moved");
            logger.LogInformation("Instance {Id}: evacuated from host {From} to {To}", id, host, decision.Host);
            if (!live)
            {
                Publish(moved);
                return new(id, row.Name, row.State, moved.State, decision.Host, null);
            }
            var driver = services.GetHypervisor(moved.Driver);
            try
            {
                await BootAgainAsync(moved, driver, ct);
            }
            catch (Exception e) when (e is HypervisorException or Platform.Host.ToolFailedException or OperationCanceledException or Platform.Contracts.DomainException)
            {
                // Its disks and addresses are kept: it stays STOPPED on the new host, and says why.
                try { await driver.KillAsync(new VmRef(id, moved.VmDir, null), CancellationToken.None); }
                catch (HypervisorException kill) { logger.LogWarning("Instance {Id}: cleaning up the failed start on {Host}: {Error}", id, decision.Host, kill.Message); }
                await store.TransitionAsync(id, [InstanceState.Boot], InstanceState.Stopped);
                await store.SetFailureReasonAsync(id, $"evacuated from {host} to {decision.Host}, but it did not start there: {e.Message}; start it again, or move it");
                await PublishAsync(id);
                return new(id, row.Name, row.State, InstanceStateMachine.Name(InstanceState.Stopped), decision.Host, $"it did not start on {decision.Host}: {e.Message}");
            }
            var after = await store.GetAsync(id);
            if (after is not null) Publish(after);
            return new(id, row.Name, row.State, after?.State ?? "RUNNING", decision.Host, null);
        }
        finally
        {
            gate.Release();
        }
    }
}
