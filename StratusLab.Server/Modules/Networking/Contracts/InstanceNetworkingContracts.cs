using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Networking.Contracts;

/// <summary>A host port forwarded to a guest port of a NIC's address (port address translation).</summary>
public sealed record PortForwardPlan(int GuestPort, string HostAddress, int HostPort, string Protocol = "tcp");

/// <summary>
/// One NIC of an instance, from its lease: what the hypervisor attaches and what the guest's context says.
/// <see cref="Driver"/> is the network driver: <c>user</c> (QEMU user-mode networking: <see cref="Cidr"/>,
/// <see cref="Gateway"/> and the first <see cref="Dns"/> address are the slirp layout, <see cref="Ip"/> its DHCP address)
/// or <c>bridge</c> (a tap device <see cref="TapDevice"/> on the network's bridge; DHCP from the network's dnsmasq).
/// </summary>
public sealed record NicPlan(
    int Index,
    string Network,
    string Driver,
    string Mac,
    string Ip,
    string Mask,
    string Cidr,
    string? Gateway,
    IReadOnlyList<string> Dns,
    int? Mtu,
    string? TapDevice,
    IReadOnlyList<PortForwardPlan> Forwards)
{
    /// <summary>The address QEMU's user-mode network answers DNS on (the first of <see cref="Dns"/> inside <see cref="Cidr"/>), for the user driver.</summary>
    public string? UserDns { get; init; }
}

/// <summary>
/// What an instance asks of Networking when it is deployed: one NIC per entry of <see cref="Networks"/> (network names;
/// empty for one NIC on the default network), extra guest ports to forward (besides Networking:PatGuestPorts),
/// an admin-set MAC for the first NIC, and whether the hypervisor is simulated (no host ports are probed).
/// </summary>
public sealed record NicRequest(long InstanceId, long OwnerId, IReadOnlyList<string> Networks, IReadOnlyList<int> ForwardPorts, string? FirstMac, bool Simulated);

/// <summary>An instance cannot get its NICs now: a network has no free address, no PAT port is free, or a network is gone.</summary>
public sealed class NetworkUnavailableException(string message) : Exception(message);

/// <summary>
/// Networking as Compute uses it: validates the networks of a request, allocates leases (address, MAC, PAT ports)
/// in PROLOG, runs the network drivers' pre-boot, post-boot and clean actions.
/// Every method is idempotent; clean runs on terminate, on failure and on restart reconciliation.
/// </summary>
public interface IInstanceNetworking
{
    /// <summary>
    /// Throws a domain exception (InvalidInputException 400/422, NetworkFullException 409) when a request's networks or forwarded ports are not acceptable:
    /// unknown or unusable network, too many NICs, invalid ports, or a network without enough free addresses for
    /// <paramref name="count"/> instances.
    /// </summary>
    Task ValidateAsync(IReadOnlyList<string> networks, IReadOnlyList<int> forwardPorts, int count, Caller caller, CancellationToken ct = default);

    /// <summary>
    /// Leases one address per NIC and the PAT ports of the first non-public NIC, all or nothing; returns the NIC plans.
    /// Throws <see cref="NetworkUnavailableException"/> when an address or port is not available. Calling it again
    /// for the same instance returns the leases it already has.
    /// </summary>
    Task<IReadOnlyList<NicPlan>> AllocateAsync(NicRequest request, CancellationToken ct = default);

    /// <summary>The NIC plans of an instance's current leases (empty when it has none).</summary>
    Task<IReadOnlyList<NicPlan>> PlansAsync(long instanceId, CancellationToken ct = default);

    /// <summary>
    /// Host side before the VM starts on <paramref name="host"/>: taps, firewall rules, DHCP entries, NAT and PAT rules
    /// (bridge networks). On an SSH node the NICs' taps, bridges and firewall rules are made on the node, linked to the
    /// front-end's bridge (DHCP, NAT, PAT) over VXLAN.
    /// </summary>
    Task PreBootAsync(long instanceId, string? host, CancellationToken ct = default);

    /// <summary>Host side once the VM runs (the taps are open and up).</summary>
    Task PostBootAsync(long instanceId, CancellationToken ct = default);

    /// <summary>Removes the instance's host side and gives its leases and ports back. Never throws for a host failure: what cannot be removed now is retried by reconciliation.</summary>
    Task CleanAsync(long instanceId, CancellationToken ct = default);
}
