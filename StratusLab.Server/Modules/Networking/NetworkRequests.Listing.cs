using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

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

    /// <summary>One network the caller may see, by name or id; NotFoundException otherwise (never revealed).</summary>
    public async Task<NetworkRow> VisibleAsync(string idOrName, Caller caller)
    {
        var row = await store.FindNetworkAsync(idOrName);
        if (row is null || !AccessRules.CanSee(caller, InstanceNetworking.OwnershipOf(row))) throw new NotFoundException($"Network '{Validate.Trim(idOrName)}'");
        return row;
    }

    public async Task<IReadOnlyList<LeaseView>> LeasesAsync(Caller caller, string network, string? state = null, int limit = 1000, int offset = 0,
        CancellationToken ct = default)
    {
        var row = await VisibleAsync(network, caller);
        if (state is not null and not ("used" or "held"))
            throw new InvalidInputException("state", $"'state' = '{Validate.Trim(state)}' is not accepted; accepted values: used, held.");
        var ports = await store.PortsOfNetworkAsync(row.Id);
        var leases = await store.LeasesOfNetworkAsync(row.Id, state, limit, offset);
        return leases.Select(lease => new LeaseView(lease.Ip, lease.Mac, lease.State, lease.InstanceId, lease.Nic, lease.Reason,
            ports.Where(p => p.Address == lease.Address).Select(p => new PortForwardPlan((int)p.GuestPort, p.HostAddress, (int)p.Port, p.Protocol)).ToList(),
            lease.CreatedAt)).ToList();
    }

    public async Task<LeaseView> HoldAsync(Caller caller, string network, string ip, CancellationToken ct = default)
    {
        var lease = await HoldAsync(await VisibleAsync(network, caller), ip, caller);
        return new LeaseView(lease.Ip, lease.Mac, lease.State, null, null, lease.Reason, [], lease.CreatedAt);
    }

    public async Task ReleaseAsync(Caller caller, string network, string ip, CancellationToken ct = default) =>
        await ReleaseAsync(await VisibleAsync(network, caller), ip, caller);
}
