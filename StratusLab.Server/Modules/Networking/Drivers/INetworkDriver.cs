using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;

namespace StratusLab.Server.Modules.Networking.Drivers;

/// <summary>
/// A network as its driver sees it. <see cref="GuestApiPort"/>: the loopback port of the guest API, reached from guests at
/// the gateway. <see cref="Linked"/>: the ids of the networks an admin linked it with (Networking:LinkedNetworks); the
/// server keeps it apart from every other.
/// </summary>
internal sealed record NetworkSpec(long Id, string Name, Subnet Subnet, string? Gateway, IReadOnlyList<string> Dns, int? Mtu, int? VlanId, string? Uplink, int? GuestApiPort,
    IReadOnlyList<long>? Linked = null, long? Vni = null);

/// <summary>
/// The SSH node whose bridge carries a NIC: its host name, how to reach it (null when the host is gone), and its
/// underlay address (the VXLAN endpoint; the address the server reaches it at).
/// </summary>
internal sealed record NodeSite(string Name, StratusLab.Server.Platform.Host.SshTarget? Ssh, string Address);

/// <summary>One NIC as its driver sees it: the lease, its forwarded ports, the rules of its network's security groups, and the SSH node that hosts it (null: this machine).</summary>
internal sealed record NicSpec(long InstanceId, int Index, string Mac, uint Address, IReadOnlyList<PortForwardPlan> Forwards, IReadOnlyList<SecurityRule> Rules,
    NodeSite? Node = null)
{
    public string Ip => Ipv4.Format(Address);
}

/// <summary>
/// How a kind of network reaches the host. Each NIC step has a pre-boot, post-boot and clean action; every action is
/// idempotent, and the caller serialises the actions of one network. <c>served</c> is every NIC the network has after the
/// action (its DHCP entries); clean with none left tears the network's host side down.
/// </summary>
internal interface INetworkDriver
{
    string Name { get; }

    /// <summary>Whether the driver changes the host (bridges, taps, rules, dnsmasq); false for QEMU user-mode networking.</summary>
    bool HasHostSide { get; }

    /// <summary>The tap device of a NIC, or null when the hypervisor makes the NIC on its own.</summary>
    string? TapOf(NicSpec nic);

    Task PreBootAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct);
    Task PostBootAsync(NetworkSpec network, NicSpec nic, CancellationToken ct);
    Task CleanAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct);

    /// <summary>Applies the NIC's security group rules again (they changed).</summary>
    Task ApplyRulesAsync(NetworkSpec network, NicSpec nic, CancellationToken ct);

    /// <summary>
    /// Makes the host match the live NICs and the configuration (at start-up): what is missing is made again, what no live
    /// NIC owns is removed, and rules written under an older configuration are replaced.
    /// </summary>
    Task ReconcileAsync(IReadOnlyList<(NetworkSpec Network, IReadOnlyList<NicSpec> Nics)> live, CancellationToken ct);

    /// <summary>Removes whatever the network still has on the host (it is being deleted).</summary>
    Task TearDownAsync(NetworkSpec network, CancellationToken ct);

    /// <summary>Why a new network with this subnet would break the host (it overlaps the host's own routes), or null.</summary>
    Task<string?> WhyUnusableAsync(Subnet subnet, CancellationToken ct);
}

/// <summary>The driver names networks store and the API accepts; each is the key of its keyed <see cref="INetworkDriver"/> service.</summary>
internal static class NetworkDriverNames
{
    public const string User = "user";
    public const string Bridge = "bridge";

    public static readonly IReadOnlyList<string> All = [Bridge, User];

    /// <summary>The driver registered under <paramref name="name"/>, with a clear error for a name no driver has.</summary>
    public static INetworkDriver GetNetworkDriver(this IServiceProvider services, string name) =>
        services.GetKeyedService<INetworkDriver>(name) ?? throw new InvalidOperationException($"no network driver named '{name}'");
}
