using System.Globalization;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Networking.Drivers;

/// <summary>
/// A Linux bridge per network (its gateway address on the bridge), a tap per NIC, one dnsmasq per network serving
/// exactly the leases as static DHCP entries, nftables masquerade for outbound NAT, PAT as DNAT rules, and per-NIC
/// filter chains from the security groups, all in the tables 'ip stratuslab' and 'bridge stratuslab' that the server
/// owns. Pre-boot makes a NIC's host side (and the network's, on its first NIC); clean removes it (and the network's,
/// with its last NIC), so nothing outlives its instance. Needs root; one server per network namespace. A NIC on an SSH
/// node is carried over VXLAN (BridgeNetworkDriver.Vxlan.cs).
/// </summary>
internal sealed partial class BridgeNetworkDriver(ICommandRunner runner, ServerOptions options, NetworkingOptions networking, ILogger<BridgeNetworkDriver> logger,
    SshTransport? ssh = null) : INetworkDriver
{
    public const string TapPrefix = "sltap-";
    public const string BridgePrefix = "slbr-";
    public const string VlanPrefix = "slvl-";

    public string Name => "bridge";
    public bool HasHostSide => true;
    public string? TapOf(NicSpec nic) => TapName(nic.InstanceId, nic.Index);

    /// <summary>Interface names are at most 15 characters; ids that do not fit in decimal are written in base 36.</summary>
    public static string TapName(long instanceId, int nic)
    {
        var name = $"{TapPrefix}{instanceId.ToString(CultureInfo.InvariantCulture)}-{nic}";
        return name.Length <= 15 ? name : $"sl{Base36(instanceId)}-{nic}";
    }

    public static string BridgeName(long networkId) => BridgePrefix + networkId.ToString(CultureInfo.InvariantCulture);
    public static string VlanName(long networkId) => VlanPrefix + networkId.ToString(CultureInfo.InvariantCulture);

    static string Base36(long value)
    {
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        var s = "";
        do { s = digits[(int)(value % 36)] + s; value /= 36; } while (value > 0);
        return s;
    }

    /// <summary>Where a network's dnsmasq keeps its pidfile, DHCP hosts, lease file and log.</summary>
    public string StateDir(long networkId) => Path.Combine(options.DataDir, "networks", networkId.ToString(CultureInfo.InvariantCulture));

    public async Task PreBootAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct)
    {
        if (nic.Node is not null)
        {
            await PreBootOnNodeAsync(network, nic, served, ct);
            return;
        }
        await EnsureNetworkAsync(network, ct);
        await EnsureTapAsync(network, nic, ct);
        await ApplyRulesAsync(network, nic, ct);
        await ServeDhcpAsync(network, served, ct);
    }

    public async Task PostBootAsync(NetworkSpec network, NicSpec nic, CancellationToken ct)
    {
        // QEMU opened the tap; it must be up and on the bridge for the guest's first DHCP request to get through.
        var tap = TapName(nic.InstanceId, nic.Index);
        var link = (await LinksAtAsync(nic.Node, ct)).FirstOrDefault(l => l.Name == tap);
        if (link?.Master != BridgeName(network.Id))
            logger.LogWarning("Network {Name}: tap {Tap} was not on its bridge after boot; putting it back", network.Name, tap);
        await IpAtAsync(nic.Node, ["link", "set", "dev", tap, "master", BridgeName(network.Id), "up"], ct);
    }

    public async Task CleanAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct)
    {
        if (nic.Node is not null)
        {
            await CleanOnNodeAsync(network, nic, served, ct);
            return;
        }
        await RemoveNicRulesAsync(nic, ct);
        await DeleteLinkAsync(TapName(nic.InstanceId, nic.Index), ct);
        if (served.Count == 0) await TearDownAsync(network, ct);
        else await ServeDhcpAsync(network, served, ct);
    }

    public async Task TearDownAsync(NetworkSpec network, CancellationToken ct)
    {
        await StopDnsmasqAsync(network.Id, ct);
        await RemoveNetworkRulesAsync(network, ct);
        await DeleteLinkAsync(VlanName(network.Id), ct);
        await DeleteLinkAsync(VxlanName(network.Id), ct);
        await DeleteLinkAsync(BridgeName(network.Id), ct);
        var dir = StateDir(network.Id);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        logger.LogInformation("Network {Name}: bridge {Bridge}, its dnsmasq and rules removed (no NIC left)", network.Name, BridgeName(network.Id));
    }

    public async Task ReconcileAsync(IReadOnlyList<(NetworkSpec Network, IReadOnlyList<NicSpec> Nics)> live, CancellationToken ct)
    {
        var networksDir = Path.Combine(options.DataDir, "networks");
        var stateDirs = Directory.Exists(networksDir) ? Directory.GetDirectories(networksDir) : [];
        // Nothing was ever made on the host by this data dir: leave the host alone (and run no tool).
        if (live.Count == 0 && stateDirs.Length == 0) return;

        // Rules first, in one transaction from the configuration and the store: what an older configuration wrote goes.
        await RewriteTablesAsync(live, ct);
        foreach (var (network, nics) in live)
        {
            await EnsureBridgeAsync(network, ct);
            foreach (var nic in nics.Where(n => n.Node is null)) await EnsureTapAsync(network, nic, ct);
            await ServeDhcpAsync(network, nics, ct);
            await ReconcileNodesAsync(network, nics, ct);
        }

        var liveNetworks = live.Select(l => l.Network.Id).ToHashSet();
        foreach (var dir in stateDirs)
        {
            if (long.TryParse(Path.GetFileName(dir), out var id) && !liveNetworks.Contains(id))
            {
                await StopDnsmasqAsync(id, ct);
                Directory.Delete(dir, recursive: true);
                logger.LogWarning("Removed the dnsmasq state of network {Id}: no live NIC uses it", id);
            }
        }
        var liveTaps = live.SelectMany(l => l.Nics.Where(n => n.Node is null).Select(n => TapName(n.InstanceId, n.Index))).ToHashSet();
        foreach (var link in await LinksAsync(ct))
        {
            if (IsOrphan(link, liveTaps, liveNetworks))
            {
                logger.LogWarning("Removing {Link}: no live NIC or network of this server owns it", link.Name);
                await DeleteLinkAsync(link.Name, ct);
            }
        }
    }

    /// <summary>
    /// At start-up: the front-end's VXLAN of a network with NICs on nodes, and each node's bridge, VXLAN, taps and chains,
    /// made again where missing. A node that does not answer now is left as it is, with a warning.
    /// </summary>
    async Task ReconcileNodesAsync(NetworkSpec network, IReadOnlyList<NicSpec> nics, CancellationToken ct)
    {
        await SyncFrontEndVxlanAsync(network, nics, ct);
        foreach (var node in NodesOf(nics).Where(n => n.Ssh is not null))
        {
            try
            {
                await EnsureNodeBridgeAsync(network, node, nics, ct);
                foreach (var nic in nics.Where(n => n.Node?.Name == node.Name))
                {
                    await EnsureNodeTapAsync(network, nic, ct);
                    await ApplyNodeRulesAsync(nic, ct);
                }
            }
            catch (Contracts.NetworkUnavailableException e)
            {
                logger.LogWarning("Network {Name}: node {Node} could not be reconciled now: {Error}", network.Name, node.Name, e.Message);
            }
        }
    }

    /// <summary>A tap, bridge or VLAN link named like ours that no live NIC or network owns (pure).</summary>
    public static bool IsOrphan(LinkInfo link, IReadOnlySet<string> liveTaps, IReadOnlySet<long> liveNetworks)
    {
        if (link.Name.StartsWith(BridgePrefix, StringComparison.Ordinal) || link.Name.StartsWith(VlanPrefix, StringComparison.Ordinal)
            || link.Name.StartsWith(VxlanPrefix, StringComparison.Ordinal))
            return !(long.TryParse(link.Name[BridgePrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var id) && liveNetworks.Contains(id));
        var ourTap = link.Name.StartsWith(TapPrefix, StringComparison.Ordinal)
            || (link.Name.StartsWith("sl", StringComparison.Ordinal) && link.Master?.StartsWith(BridgePrefix, StringComparison.Ordinal) == true);
        return ourTap && !liveTaps.Contains(link.Name);
    }
}
