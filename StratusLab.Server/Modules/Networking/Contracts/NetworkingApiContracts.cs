namespace StratusLab.Server.Modules.Networking.Contracts;

// The REST API's records of /api/v1/networks and /api/v1/security-groups: the server returns them and the CLI reads them.

/// <summary>An address range as the API shows it.</summary>
public sealed record AddressRangeView(string First, string Last, long Size);

/// <summary>
/// A network as the API shows it: its subnet (<c>cidr</c>, <c>mask</c>), ranges, and how many addresses are used by
/// instances, held, and free; <c>bridge</c> is the host's bridge device of a bridge network.
/// </summary>
public sealed record NetworkView(
    long Id, string Name, string Kind, string Driver, string Owner, string Cidr, string Mask, IReadOnlyList<AddressRangeView> Ranges,
    string? Gateway, IReadOnlyList<string> Dns, int? Mtu, int? VlanId, string? Uplink, string? Bridge, IReadOnlyList<string> SecurityGroups,
    long Size, long Used, long Held, long Free, DateTimeOffset CreatedAt);

/// <summary>A lease as the API shows it: state <c>used</c> (by an instance NIC) or <c>held</c> (reserved, with the reason).</summary>
public sealed record LeaseView(string Ip, string Mac, string State, long? InstanceId, int? Nic, string? Reason, IReadOnlyList<PortForwardPlan> Forwards, DateTimeOffset CreatedAt);

/// <summary>A security group rule as the API shows it.</summary>
public sealed record SecurityRuleView(long Id, string Direction, string Action, string Protocol, string? Ports, string? Cidr);

/// <summary>A security group as the API shows it, with the networks that use it.</summary>
public sealed record SecurityGroupView(long Id, string Name, string Owner, string? Description, IReadOnlyList<SecurityRuleView> Rules, IReadOnlyList<long> Networks, DateTimeOffset CreatedAt);

/// <summary>One address range of POST /networks: <c>cidr</c>, or <c>first</c> + <c>last</c> (optional <c>mask</c>), or <c>network</c> + <c>mask</c> (optional <c>first</c>).</summary>
public sealed record RangeRequest(string? Cidr = null, string? First = null, string? Last = null, string? Network = null, string? Mask = null);

/// <summary>
/// Body of POST /api/v1/networks. One range at the top level (cidr; first + last [+ mask]; network + mask [+ first]) or
/// several in <c>ranges</c>, all in one subnet. kind: public, local or private (default); driver: user (default) or bridge.
/// gateway: inside the subnet (required for bridge networks: the bridge's address); dns: addresses given to guests;
/// mtu 576..9000; admins only: vlanId (802.1Q, bridge networks) and uplink (the host interface carrying the VLAN).
/// securityGroups: names (default: "default", which allows everything).
/// </summary>
public sealed record CreateNetworkRequest(
    string Name,
    string? Kind = null,
    string? Driver = null,
    string? Cidr = null,
    string? First = null,
    string? Last = null,
    string? Network = null,
    string? Mask = null,
    IReadOnlyList<RangeRequest>? Ranges = null,
    string? Gateway = null,
    IReadOnlyList<string>? Dns = null,
    int? Mtu = null,
    int? VlanId = null,
    string? Uplink = null,
    IReadOnlyList<string>? SecurityGroups = null);

/// <summary>Body of POST /networks/{network}/hold and /release.</summary>
public sealed record AddressRequest(string Ip);

/// <summary>
/// A security group rule as users write it. direction: inbound or outbound; protocol: all (default), tcp, udp or icmp;
/// ports: "22" or "1000-2000" (tcp and udp); cidr: the remote side (source of inbound, destination of outbound), any
/// when left out; action: accept (default) or drop.
/// </summary>
public sealed record SecurityRuleRequest(string Direction, string? Protocol = null, string? Ports = null, string? Cidr = null, string? Action = null);

/// <summary>Body of POST /api/v1/security-groups.</summary>
public sealed record CreateSecurityGroupRequest(string Name, string? Description = null, IReadOnlyList<SecurityRuleRequest>? Rules = null);
