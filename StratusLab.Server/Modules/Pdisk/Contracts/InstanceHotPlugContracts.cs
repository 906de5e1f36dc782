namespace StratusLab.Server.Modules.Pdisk.Contracts;

/// <summary>
/// A disk to hot-plug: its transport URL says how the host reaches it —
/// <c>file:///path/to/disk</c> (local path) or <c>iscsi://host[:port]/iqn.../lun</c> (QEMU's own iSCSI initiator).
/// </summary>
public sealed record DiskAttachment(string Turl, string Format, bool ReadOnly);

/// <summary>
/// Hot-plugs disks into running instances (blockdev-add + device_add over QMP, and their reverse). Pdisk declares what
/// it needs; Compute, which owns the hypervisors, implements it, so Pdisk never depends on Compute.
/// </summary>
public interface IInstanceHotPlug
{
    /// <summary>
    /// Attaches the disk to a RUNNING (or SUSPENDED) instance; returns the device id to detach it with. The guest sees a new
    /// virtio disk. Refusals are domain exceptions (404 unknown instance, 409 wrong state, 422 refused by the hypervisor).
    /// </summary>
    Task<string> AttachAsync(long instanceId, DiskAttachment disk, CancellationToken ct = default);

    /// <summary>Detaches a hot-plugged disk; a no-op when the instance no longer runs.</summary>
    Task DetachAsync(long instanceId, string deviceId, CancellationToken ct = default);
}
