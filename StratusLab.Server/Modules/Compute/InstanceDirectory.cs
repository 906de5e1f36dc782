using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Compute's answer to "is this instance alive, and who owns it", for the reconcilers of lower modules.</summary>
internal sealed class InstanceDirectory(ComputeStore store) : IInstanceDirectory
{
    public async Task<InstanceEntry?> FindAsync(long instanceId, CancellationToken ct = default)
    {
        var row = await store.GetAsync(instanceId);
        return row is null ? null : new InstanceEntry(row.Id, row.Name, row.OwnerId, row.Host, row.Driver,
            Ended: row.StateValue is InstanceState.Done or InstanceState.Failed);
    }

    public async Task<IReadOnlyList<long>> ListPlacedAsync(CancellationToken ct = default) =>
        await store.ListPlacedIdsAsync();
}
