using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Networking;

/// <summary>
/// A security group rule as users write it. direction: inbound or outbound; protocol: all (default), tcp, udp or icmp;
/// ports: "22" or "1000-2000" (tcp and udp); cidr: the remote side (source of inbound, destination of outbound), any
/// when left out; action: accept (default) or drop.
/// </summary>
internal sealed record SecurityRuleRequest(string Direction, string? Protocol = null, string? Ports = null, string? Cidr = null, string? Action = null);

/// <summary>Body of POST /api/v1/security-groups.</summary>
internal sealed record CreateSecurityGroupRequest(string Name, string? Description = null, IReadOnlyList<SecurityRuleRequest>? Rules = null);

/// <summary>
/// Security groups (OpenNebula's): the rules of every group of a network apply to each NIC on it (bridge networks).
/// A matching drop rule drops; a direction with accept rules lets through only what they match; a direction without
/// accept rules is open. The built-in group 'default' accepts everything both ways. Changes apply to running NICs at once.
/// </summary>
internal sealed class SecurityGroupRequests(NetworkingStore store, InstanceNetworking networking)
{
    public async Task<long> CreateAsync(CreateSecurityGroupRequest r, Caller caller)
    {
        var name = Validate.Name(r.Name, "name");
        if (r.Description is { Length: > 500 }) throw new InvalidInputException("description", "'description' is longer than 500 characters.");
        var rules = (r.Rules ?? []).Select((q, i) => ParseRule(q, $"rules[{i}].")).ToList();
        return await store.WriteAsync(async (c, tx) =>
        {
            if (await store.FindGroupAsync(name, c, tx) is not null)
                throw new ConflictException($"A security group named '{name}' already exists; choose another name.");
            var permissions = caller.IsAdmin ? Permissions.Public : Permissions.Private;
            var id = await store.InsertGroupAsync(c, tx, name, caller.UserId, caller.PrimaryGroupId, permissions.Bits, r.Description);
            foreach (var rule in rules) await store.InsertRuleAsync(c, tx, id, rule);
            return id;
        });
    }

    public async Task<long> AddRuleAsync(SecurityGroupRow group, SecurityRuleRequest r, Caller caller, CancellationToken ct)
    {
        RequireManage(group, caller);
        var rule = ParseRule(r, "");
        var id = await store.WriteAsync((c, tx) => store.InsertRuleAsync(c, tx, group.Id, rule));
        await networking.ApplyRulesAsync(await store.NetworksUsingGroupAsync(group.Id), ct);
        return id;
    }

    public async Task DeleteRuleAsync(SecurityGroupRow group, long ruleId, Caller caller, CancellationToken ct)
    {
        RequireManage(group, caller);
        if (await store.DeleteRuleAsync(group.Id, ruleId) == 0) throw new NotFoundException($"Rule {ruleId} of security group '{group.Name}'");
        await networking.ApplyRulesAsync(await store.NetworksUsingGroupAsync(group.Id), ct);
    }

    public async Task DeleteAsync(SecurityGroupRow group, Caller caller)
    {
        if (group.Id == 0) throw new ConflictException("'default' is the built-in security group and cannot be deleted.");
        RequireManage(group, caller);
        await store.WriteAsync(async (c, tx) =>
        {
            var networks = await store.NetworksUsingGroupAsync(group.Id, c, tx);
            if (networks.Count > 0)
                throw new ConflictException($"Security group '{group.Name}' is used by {networks.Count} network(s) (ids {string.Join(", ", networks)}); delete those networks first.");
            await store.DeleteGroupAsync(c, tx, group.Id);
        });
    }

    static SecurityRule ParseRule(SecurityRuleRequest r, string prefix)
    {
        try { return SecurityRule.Parse(r.Direction, r.Protocol, r.Ports, r.Cidr, r.Action); }
        catch (AddressRangeException e) { throw new InvalidInputException(prefix + e.Field, e.Message); }
    }

    public static Ownership OwnershipOf(SecurityGroupRow group) => new(group.OwnerId, group.GroupId, new Permissions((int)group.Permissions));

    static void RequireManage(SecurityGroupRow group, Caller caller)
    {
        if (!AccessRules.Can(caller, OwnershipOf(group), Operation.Manage))
            throw new ForbiddenException($"Only administrators and the owner of security group '{group.Name}' may change it.");
    }
}
