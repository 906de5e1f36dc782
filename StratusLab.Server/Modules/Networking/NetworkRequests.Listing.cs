using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;

namespace StratusLab.Server.Modules.Networking;

internal sealed partial class NetworkRequests : INetworks
{
    /// <summary>The networks the caller may see (the one visibility rule of every front door), by id.</summary>
    public async Task<IReadOnlyList<NetworkRow>> VisibleAsync(Caller caller) =>
        (await store.ListNetworksAsync()).Where(n => AccessRules.CanSee(caller, InstanceNetworking.OwnershipOf(n))).ToList();

    public async Task<IReadOnlyList<NetworkInfo>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        var counts = await store.CountLeasesAsync();
        var list = new List<NetworkInfo>();
        foreach (var n in await VisibleAsync(caller))
        {
            var size = (await store.RangesAsync(n.Id)).Sum(r => r.Last - r.First + 1);
            var (used, held) = counts.GetValueOrDefault(n.Id);
            list.Add(new NetworkInfo(n.Id, n.Name, n.Kind, n.Driver, n.OwnerId, n.Subnet.ToString(), n.Gateway, await store.SecurityGroupNamesAsync(n.Id),
                size, size - used - held, string.Equals(n.Name, InstanceNetworking.DefaultNetworkName, StringComparison.OrdinalIgnoreCase),
                AccessRules.Can(caller, InstanceNetworking.OwnershipOf(n), Operation.Use), n.CreatedAt));
        }
        return list;
    }
}
