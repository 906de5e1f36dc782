using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Networking;

/// <summary>
/// Security groups (OpenNebula's): the rules of every group of a network apply to each NIC on it (bridge networks).
/// A matching drop rule drops; a direction with accept rules lets through only what they match; a direction without
/// accept rules is open. The built-in group 'default' accepts everything both ways. Changes apply to running NICs at once.
/// The application service behind every front door (REST, EC2).
/// </summary>
internal sealed class SecurityGroupRequests(NetworkingStore store, InstanceNetworking networking, IUserDirectory users) : ISecurityGroups
{
    public async Task<SecurityGroupInfo> CreateAsync(string name, string? description, IReadOnlyList<SecurityRuleSpec> rules, Caller caller, CancellationToken ct = default)
    {
        name = Validate.Name(name, "name");
        if (description is { Length: > 500 }) throw new InvalidInputException("description", "'description' is longer than 500 characters.");
        var parsed = rules.Select((q, i) => ParseRule(q, $"rules[{i}].")).ToList();
        var id = await store.WriteAsync(async (c, tx) =>
        {
            if (await store.FindGroupAsync(name, c, tx) is not null)
                throw new ConflictException($"A security group named '{name}' already exists; choose another name.");
            var permissions = caller.IsAdmin ? Permissions.Public : Permissions.Private;
            var id = await store.InsertGroupAsync(c, tx, name, caller.UserId, caller.PrimaryGroupId, permissions.Bits, description);
            foreach (var rule in parsed) await store.InsertRuleAsync(c, tx, id, rule);
            return id;
        });
        return await InfoAsync((await store.FindGroupAsync(name))!, ct);
    }

    public async Task<IReadOnlyList<SecurityGroupInfo>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        var list = new List<SecurityGroupInfo>();
        foreach (var row in (await store.ListGroupsAsync()).Where(g => AccessRules.CanSee(caller, OwnershipOf(g))))
            list.Add(await InfoAsync(row, ct));
        return list;
    }

    public async Task<SecurityGroupInfo> GetAsync(string name, Caller caller, CancellationToken ct = default) =>
        await InfoAsync(await VisibleAsync(name, caller), ct);

    public async Task<IReadOnlyList<SecurityRuleInfo>> AddRulesAsync(string name, IReadOnlyList<SecurityRuleSpec> rules, Caller caller, CancellationToken ct = default)
    {
        var group = await VisibleAsync(name, caller);
        RequireManage(group, caller);
        if (rules.Count == 0) throw new InvalidInputException("rules", "No rule was given; give at least one.");
        var parsed = rules.Select((q, i) => ParseRule(q, rules.Count == 1 ? "" : $"rules[{i}].")).ToList();
        var ids = await store.WriteAsync(async (c, tx) =>
        {
            var added = new List<long>();
            foreach (var rule in parsed) added.Add(await store.InsertRuleAsync(c, tx, group.Id, rule));
            return added;
        });
        await networking.ApplyRulesAsync(await store.NetworksUsingGroupAsync(group.Id), ct);
        var stored = await store.RulesOfGroupAsync(group.Id);
        return ids.Select(id => ToInfo(stored.First(r => r.Id == id))).ToList();
    }

    public IReadOnlyList<SecurityRuleInfo> Normalize(IReadOnlyList<SecurityRuleSpec> rules) =>
        rules.Select((q, i) => ParseRule(q, rules.Count == 1 ? "" : $"rules[{i}]."))
            .Select(r => new SecurityRuleInfo(0, r.Direction, r.Action, r.Protocol, r.PortFirst, r.PortLast, r.Cidr)).ToList();

    public async Task RemoveRulesAsync(string name, IReadOnlyList<long> ruleIds, Caller caller, CancellationToken ct = default)
    {
        var group = await VisibleAsync(name, caller);
        RequireManage(group, caller);
        await store.WriteAsync(async (c, tx) =>
        {
            foreach (var ruleId in ruleIds.Distinct())
                if (await store.DeleteRuleAsync(c, tx, group.Id, ruleId) == 0) throw new NotFoundException($"Rule {ruleId} of security group '{group.Name}'");
        });
        await networking.ApplyRulesAsync(await store.NetworksUsingGroupAsync(group.Id), ct);
    }

    public async Task DeleteAsync(string name, Caller caller, CancellationToken ct = default)
    {
        var group = await VisibleAsync(name, caller);
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

    async Task<SecurityGroupRow> VisibleAsync(string name, Caller caller)
    {
        var row = await store.FindGroupAsync(name);
        if (row is null || !AccessRules.CanSee(caller, OwnershipOf(row))) throw new NotFoundException($"Security group '{Validate.Trim(name)}'");
        return row;
    }

    async Task<SecurityGroupInfo> InfoAsync(SecurityGroupRow g, CancellationToken ct) =>
        new(g.Id, g.Name, g.OwnerId, g.OwnerId == 0 ? "site" : (await users.FindAsync(g.OwnerId, ct))?.Name ?? $"#{g.OwnerId}", g.Description,
            (await store.RulesOfGroupAsync(g.Id)).Select(ToInfo).ToList(), await store.NetworksUsingGroupAsync(g.Id), g.CreatedAt);

    static SecurityRuleInfo ToInfo(SecurityRuleRow r) => new(r.Id, r.Direction, r.Action, r.Protocol, r.PortFirst, r.PortLast, r.Cidr);

    static SecurityRule ParseRule(SecurityRuleSpec r, string prefix)
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
