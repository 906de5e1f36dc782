using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Networking.Contracts;

/// <summary>
/// A security group rule as a request writes it. <see cref="Direction"/>: inbound or outbound; <see cref="Protocol"/>: all
/// (default), tcp, udp or icmp; <see cref="Ports"/>: "22" or "1000-2000" (tcp and udp only; any port when left out);
/// <see cref="Cidr"/>: the remote side (source of inbound, destination of outbound; anywhere when left out);
/// <see cref="Action"/>: accept (default) or drop.
/// </summary>
public sealed record SecurityRuleSpec(string Direction, string? Protocol = null, string? Ports = null, string? Cidr = null, string? Action = null);

/// <summary>
/// A stored security group rule: <see cref="Direction"/> inbound or outbound, <see cref="Action"/> accept or drop,
/// <see cref="Protocol"/> all, tcp, udp or icmp, the port range (null: any port), the remote <see cref="Cidr"/> (null: anywhere).
/// </summary>
public sealed record SecurityRuleInfo(long Id, string Direction, string Action, string Protocol, int? PortFirst, int? PortLast, string? Cidr);

/// <summary>
/// A security group the caller may see: its owner (<see cref="OwnerId"/> 0 and <see cref="Owner"/> "site" for the
/// built-in group 'default'), its rules, and the ids of the networks that use it.
/// </summary>
public sealed record SecurityGroupInfo(
    long Id, string Name, long OwnerId, string Owner, string? Description, IReadOnlyList<SecurityRuleInfo> Rules, IReadOnlyList<long> Networks,
    DateTimeOffset CreatedAt);

/// <summary>
/// Security groups, as every front door uses them (same permissions and validation for all). The rules of every group of a
/// network apply to each NIC on it (bridge networks): a matching drop rule drops; a direction with accept rules lets through
/// only what they match; a direction without accept rules is open. The built-in group 'default' accepts everything.
/// Names are unique on the site. A group the caller may not see is <c>NotFoundException</c>, never revealed.
/// Changes apply to running NICs at once.
/// </summary>
public interface ISecurityGroups
{
    /// <summary>Creates a group owned by the caller (public when an administrator creates it, private otherwise) with its first rules, all or nothing.
    /// Throws InvalidInputException for a bad name, description or rule, ConflictException when the name is taken.</summary>
    Task<SecurityGroupInfo> CreateAsync(string name, string? description, IReadOnlyList<SecurityRuleSpec> rules, Caller caller, CancellationToken ct = default);

    /// <summary>Every group the caller may see, oldest first.</summary>
    Task<IReadOnlyList<SecurityGroupInfo>> ListAsync(Caller caller, CancellationToken ct = default);

    /// <summary>One group by name; NotFoundException when it does not exist or the caller may not see it.</summary>
    Task<SecurityGroupInfo> GetAsync(string name, Caller caller, CancellationToken ct = default);

    /// <summary>Deletes a group. ForbiddenException unless the caller may manage it; ConflictException for 'default' or while a network uses it.</summary>
    Task DeleteAsync(string name, Caller caller, CancellationToken ct = default);

    /// <summary>Validates rules as <see cref="AddRulesAsync"/> would and returns them in their stored (normalized) form, with Id 0, writing nothing:
    /// lets a front door compare a request with a group's rules.</summary>
    IReadOnlyList<SecurityRuleInfo> Normalize(IReadOnlyList<SecurityRuleSpec> rules);

    /// <summary>Adds rules to a group, all or nothing (nothing is written unless every rule is valid); returns the stored rules, in order.
    /// InvalidInputException names the bad rule's field (prefixed <c>rules[i].</c> when there are several).</summary>
    Task<IReadOnlyList<SecurityRuleInfo>> AddRulesAsync(string name, IReadOnlyList<SecurityRuleSpec> rules, Caller caller, CancellationToken ct = default);

    /// <summary>Removes rules of a group by id, all or nothing; NotFoundException naming the first rule the group does not have.</summary>
    Task RemoveRulesAsync(string name, IReadOnlyList<long> ruleIds, Caller caller, CancellationToken ct = default);
}

/// <summary>
/// A network the caller may see: <see cref="Kind"/> public, local or private; <see cref="Driver"/> user or bridge; its subnet
/// <see cref="Cidr"/>, <see cref="Gateway"/>, address counts, whether it is the site's default network (where instances go when
/// they name none) and whether the caller may put instances on it (<see cref="Usable"/>).
/// </summary>
public sealed record NetworkInfo(
    long Id, string Name, string Kind, string Driver, long OwnerId, string Cidr, string? Gateway, IReadOnlyList<string> SecurityGroups,
    long Size, long Free, bool IsDefault, bool Usable, DateTimeOffset CreatedAt);

/// <summary>Networks, as front doors other than REST read them (same visibility rules as the REST API).</summary>
public interface INetworks
{
    /// <summary>Every network the caller may see, by id.</summary>
    Task<IReadOnlyList<NetworkInfo>> ListAsync(Caller caller, CancellationToken ct = default);

    /// <summary>
    /// The leases of a network the caller may see (by name or id; NotFoundException otherwise): addresses used by instances'
    /// NICs (with instance, NIC and MAC) and held ones (state 'held', kept from allocation), with their port forwards.
    /// <paramref name="state"/> 'used' or 'held' filters (InvalidInputException for anything else).
    /// </summary>
    Task<IReadOnlyList<LeaseView>> LeasesAsync(Caller caller, string network, string? state = null, int limit = 1000, int offset = 0, CancellationToken ct = default);

    /// <summary>Holds a free address of the network so no instance gets it (the network's manager only); refusals name 'ip'.</summary>
    Task<LeaseView> HoldAsync(Caller caller, string network, string ip, CancellationToken ct = default);

    /// <summary>Releases a held address of the network (the network's manager only).</summary>
    Task ReleaseAsync(Caller caller, string network, string ip, CancellationToken ct = default);
}
