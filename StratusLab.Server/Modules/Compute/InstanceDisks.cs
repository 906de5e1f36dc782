using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Hot-plug of disks into running instances, for Pdisk.</summary>
internal sealed class InstanceDisks(ComputeStore store, IServiceProvider services) : IInstanceHotPlug
{
    public async Task<string> AttachAsync(long instanceId, DiskAttachment disk, CancellationToken ct = default)
    {
        var row = await store.GetAsync(instanceId) ?? throw new NotFoundException($"Instance {instanceId}");
        if (row.StateValue is not (InstanceState.Running or InstanceState.Suspended))
            throw new ConflictException($"Instance {instanceId} is {row.State}; disks can be attached to RUNNING or SUSPENDED instances only.");
        var deviceId = "vol" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        HotDisk hot;
        try { hot = HotDisks.Describe(deviceId, disk.Turl, disk.Format, disk.ReadOnly); }
        catch (ArgumentException e) { throw new InvalidInputException("turl", e.Message, unprocessable: true); }
        try
        {
            await services.GetHypervisor(row.Driver).AttachDiskAsync(new VmRef(row.Id, row.VmDir, (int?)row.Pid), hot, ct);
        }
        catch (HypervisorException e)
        {
            throw new InvalidInputException("instance", $"The hypervisor refused to attach the disk: {e.Message}", unprocessable: true);
        }
        return deviceId;
    }

    public async Task DetachAsync(long instanceId, string deviceId, CancellationToken ct = default)
    {
        var row = await store.GetAsync(instanceId);
        if (row is null || row.StateValue is not (InstanceState.Running or InstanceState.Suspended or InstanceState.Shutdown)) return;
        await services.GetHypervisor(row.Driver).DetachDiskAsync(new VmRef(row.Id, row.VmDir, (int?)row.Pid), deviceId, ct);
    }
}
