using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Networking;

/// <summary>First start: creates the network named "default" from Networking:DefaultNetwork (QEMU user-mode's layout by default).</summary>
internal sealed class NetworkingBootstrap(NetworkingStore store, NetworkRequests requests, NetworkingOptions options, ILogger<NetworkingBootstrap> logger)
{
    /// <summary>The site itself, as the owner of built-in objects.</summary>
    static readonly Caller Site = new(0, "site", IsAdmin: true, PrimaryGroupId: 0, GroupIds: []);

    public async Task EnsureDefaultNetworkAsync()
    {
        if (await store.FindNetworkAsync(InstanceNetworking.DefaultNetworkName) is not null) return;
        var d = options.DefaultNetwork;
        var dns = d.Dns.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        await requests.CreateAsync(new CreateNetworkRequest(InstanceNetworking.DefaultNetworkName, Kind: "private", Driver: d.Driver, Cidr: d.Cidr,
            First: d.First.Length == 0 ? null : d.First, Gateway: d.Gateway, Dns: dns), Site);
        logger.LogInformation("Created the default network: {Driver} driver, {Cidr} from {First}, gateway {Gateway}, DNS {Dns}", d.Driver, d.Cidr, d.First, d.Gateway, d.Dns);
    }
}
