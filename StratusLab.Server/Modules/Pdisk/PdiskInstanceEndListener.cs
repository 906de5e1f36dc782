using StratusLab.Server.Modules.Compute.Contracts;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>When a VM ends, its volumes are released (LIVE root disks go to quarantine), so they can be deleted or attached elsewhere at once.</summary>
public sealed class PdiskInstanceEndListener(VolumeLifecycle volumes) : IInstanceEndListener
{
    public Task InstanceEndedAsync(long instanceId, CancellationToken ct = default) => volumes.ReleaseMountsAsync(instanceId, ct);
}
