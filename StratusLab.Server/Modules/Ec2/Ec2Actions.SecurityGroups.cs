using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// Security groups, the default VPC, subnets and account attributes over Networking's <see cref="ISecurityGroups"/> and
/// <see cref="INetworks"/> (the services REST uses). What maps: accept rules ↔ IpPermissions (all/tcp/udp/icmp, a port range,
/// IPv4 CIDRs; a rule without a CIDR is 0.0.0.0/0; tcp/udp without ports is 0-65535). What does not: drop rules (AWS has no
/// deny; they are not listed), ICMP types, other IP protocols, IPv6, group-to-group references, prefix lists, rule descriptions.
/// </summary>
internal sealed partial class Ec2Actions
{
    async Task<IEnumerable<XElement>> CreateSecurityGroup(Ec2Request request, CancellationToken ct)
    {
        var name = request.Require("GroupName");
        var description = request.Require("GroupDescription");
        if (request.Get("VpcId") is { } vpc && vpc != await DefaultVpcIdAsync())
            throw new Ec2Exception("InvalidVpcID.NotFound", $"The vpc ID '{vpc}' does not exist; this region's only VPC is '{await DefaultVpcIdAsync()}'.");
        var tags = Ec2NetworkingShapes.TagSpecifications(request, "security-group");
        SecurityGroupInfo created;
        try
        {
            // As in AWS, a new group lets all egress out through one rule that clients (Terraform) may revoke.
            created = await _securityGroups.CreateAsync(name, description, [new SecurityRuleSpec("outbound", "all", null, "0.0.0.0/0", "accept")], request.Caller, ct);
        }
        catch (ConflictException e)
        {
            throw new Ec2Exception("InvalidGroup.Duplicate", $"The security group '{name}' already exists. {e.Message}");
        }
        var groupId = await _ec2Store.IdForAsync(Ec2Kind.SecurityGroup, created.Id.ToString(CultureInfo.InvariantCulture));
        if (tags.Count > 0) await _ec2Store.SetTagsAsync([groupId], tags);
        return [E("return", true), E("groupId", groupId), Ec2NetworkingShapes.TagSet(Ns, tags)];
    }

    async Task<IEnumerable<XElement>> DescribeSecurityGroups(Ec2Request request, CancellationToken ct)
    {
        var wantedIds = request.List("GroupId");
        var wantedNames = request.List("GroupName");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "security groups", wantedIds.Count + wantedNames.Count > 0 ? "GroupIds or GroupNames" : null);
        var filters = request.Filters();
        var groups = await _securityGroups.ListAsync(request.Caller, ct);
        var ids = await _ec2Store.IdsForAsync(Ec2Kind.SecurityGroup, groups.Select(g => g.Id.ToString(CultureInfo.InvariantCulture)).ToList());
        string IdOf(SecurityGroupInfo g) => ids[g.Id.ToString(CultureInfo.InvariantCulture)];

        foreach (var id in wantedIds)
        {
            if (Ec2Store.KindOf(id) != Ec2Kind.SecurityGroup) throw new Ec2Exception("InvalidGroupId.Malformed", $"Invalid id: '{id}' (expecting 'sg-' and 17 hex digits).");
            if (!groups.Any(g => IdOf(g) == id)) throw new Ec2Exception("InvalidGroup.NotFound", $"The security group '{id}' does not exist.");
        }
        foreach (var name in wantedNames)
            if (!groups.Any(g => g.Name == name))
                throw new Ec2Exception("InvalidGroup.NotFound", $"The security group '{name}' does not exist in default VPC '{await DefaultVpcIdAsync()}'.");

        var vpcId = await DefaultVpcIdAsync();
        var tags = await _ec2Store.TagsOfAsync(groups.Select(IdOf).ToList());
        var selected = groups
            .Where(g => wantedIds.Count == 0 || wantedIds.Contains(IdOf(g)))
            .Where(g => wantedNames.Count == 0 || wantedNames.Contains(g.Name))
            .Where(g => filters.All(f => Ec2NetworkingShapes.Matches(f, tags.GetValueOrDefault(IdOf(g)), name => name switch
            {
                "group-id" => [IdOf(g)],
                "group-name" => [g.Name],
                "description" => [g.Description ?? ""],
                "vpc-id" => [vpcId],
                "owner-id" => [Ec2NetworkingShapes.AccountOf(g.OwnerId)],
                _ => null,
            })))
            .ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        return
        [
            Set("securityGroupInfo", page.Select(g => Item(
                E("ownerId", Ec2NetworkingShapes.AccountOf(g.OwnerId)), E("groupId", IdOf(g)), E("groupName", g.Name),
                E("groupDescription", g.Description ?? ""), E("vpcId", vpcId),
                Set("ipPermissions", Permissions(g.Rules, "inbound")), Set("ipPermissionsEgress", Permissions(g.Rules, "outbound")),
                Ec2NetworkingShapes.TagSet(Ns, tags.GetValueOrDefault(IdOf(g))?.ToList() ?? [])))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    /// <summary>Accept rules of one direction as AWS's IpPermissions: one item per protocol and port range, with its CIDRs.</summary>
    static IEnumerable<XElement> Permissions(IReadOnlyList<SecurityRuleInfo> rules, string direction) =>
        rules.Where(r => r.Direction == direction && r.Action == "accept")
            .Select(r => (Perm: Ec2NetworkingShapes.PermissionOf(r), Cidr: r.Cidr ?? "0.0.0.0/0"))
            .GroupBy(x => x.Perm)
            .Select(g => Item(
                E("ipProtocol", g.Key.Protocol),
                g.Key.From is { } from ? E("fromPort", from) : null!,
                g.Key.To is { } to ? E("toPort", to) : null!,
                Set("groups", []),
                Set("ipRanges", g.Select(x => x.Cidr).Distinct().Select(c => Item(E("cidrIp", c)))),
                Set("ipv6Ranges", []), Set("prefixListIds", [])));

    Task<IEnumerable<XElement>> AuthorizeSecurityGroupIngress(Ec2Request request, CancellationToken ct) => ChangeRulesAsync(request, "inbound", authorize: true, ct);
    Task<IEnumerable<XElement>> AuthorizeSecurityGroupEgress(Ec2Request request, CancellationToken ct) => ChangeRulesAsync(request, "outbound", authorize: true, ct);
    Task<IEnumerable<XElement>> RevokeSecurityGroupIngress(Ec2Request request, CancellationToken ct) => ChangeRulesAsync(request, "inbound", authorize: false, ct);
    Task<IEnumerable<XElement>> RevokeSecurityGroupEgress(Ec2Request request, CancellationToken ct) => ChangeRulesAsync(request, "outbound", authorize: false, ct);

    async Task<IEnumerable<XElement>> ChangeRulesAsync(Ec2Request request, string direction, bool authorize, CancellationToken ct)
    {
        var group = await GroupOfRequestAsync(request, allowName: direction == "inbound", ct);
        if (!authorize && request.List("SecurityGroupRuleId") is { Count: > 0 } ruleAwsIds)
        {
            if (request.Structs("IpPermissions").Count > 0 || request.Get("IpProtocol") is not null)
                throw new Ec2Exception("InvalidParameterCombination", "Give either SecurityGroupRuleIds or IpPermissions, not both.");
            await _securityGroups.RemoveRulesAsync(group.Name, await RuleIdsOfRequestAsync(ruleAwsIds, group, direction), request.Caller, ct);
            return [E("return", true)];
        }
        var specs = Ec2NetworkingShapes.RuleSpecs(request, direction);
        var wanted = _securityGroups.Normalize(specs);
        static bool Same(SecurityRuleInfo a, SecurityRuleInfo b) =>
            a.Direction == b.Direction && a.Action == b.Action && a.Protocol == b.Protocol && a.PortFirst == b.PortFirst && a.PortLast == b.PortLast
            && (a.Cidr ?? "0.0.0.0/0") == (b.Cidr ?? "0.0.0.0/0");
        string Describe(SecurityRuleInfo r)
        {
            var p = Ec2NetworkingShapes.PermissionOf(r);
            return $"peer: {r.Cidr ?? "0.0.0.0/0"}, {(p.From is null ? "ALL" : $"{p.Protocol.ToUpperInvariant()}, from port: {p.From}, to port: {p.To}")}, ALLOW";
        }

        if (authorize)
        {
            var distinct = wanted.Where((r, i) => !wanted.Take(i).Any(earlier => Same(earlier, r))).ToList();
            if (distinct.Count < wanted.Count || group.Rules.FirstOrDefault(have => wanted.Any(w => Same(have, w))) is not null)
            {
                var dup = wanted.First(w => group.Rules.Any(have => Same(have, w)) || wanted.Count(x => Same(x, w)) > 1);
                throw new Ec2Exception("InvalidPermission.Duplicate", $"the specified rule \"{Describe(dup)}\" already exists");
            }
            var added = await _securityGroups.AddRulesAsync(group.Name, specs, request.Caller, ct);
            var ruleIds = await _ec2Store.RuleIdsForAsync(added.Select(r => r.Id).ToList());
            var groupId = await _ec2Store.IdForAsync(Ec2Kind.SecurityGroup, group.Id.ToString(CultureInfo.InvariantCulture));
            return [E("return", true), Set("securityGroupRuleSet", added.Select(r => RuleItem(r, ruleIds[r.Id], groupId, group.OwnerId)))];
        }
        else
        {
            var ruleIds = new List<long>();
            foreach (var w in wanted)
            {
                var have = group.Rules.FirstOrDefault(r => Same(r, w))
                    ?? throw new Ec2Exception("InvalidPermission.NotFound", $"The specified rule does not exist in this security group: \"{Describe(w)}\".");
                ruleIds.Add(have.Id);
            }
            await _securityGroups.RemoveRulesAsync(group.Name, ruleIds, request.Caller, ct);
        }
        return [E("return", true)];
    }

    /// <summary>The Networking rule ids behind SecurityGroupRuleId.N, each an accept rule of this group and direction (else AWS's NotFound).</summary>
    async Task<IReadOnlyList<long>> RuleIdsOfRequestAsync(IReadOnlyList<string> awsIds, SecurityGroupInfo group, string direction)
    {
        if (awsIds.FirstOrDefault(id => !Ec2Store.IsRuleId(id)) is { } malformed)
            throw new Ec2Exception("InvalidSecurityGroupRuleId.Malformed", $"Invalid id: '{malformed}' (expecting 'sgr-' and 17 hex digits).");
        var resolved = await _ec2Store.ResolveRuleIdsAsync(awsIds.Distinct().ToList());
        var result = new List<long>();
        foreach (var id in awsIds.Distinct())
        {
            if (!resolved.TryGetValue(id, out var ruleId) || group.Rules.FirstOrDefault(r => r.Id == ruleId) is not { Action: "accept" } rule)
                throw new Ec2Exception("InvalidSecurityGroupRuleId.NotFound", $"The security group rule ID '{id}' does not exist in security group '{group.Name}'.");
            if (rule.Direction != direction)
                throw new Ec2Exception("InvalidSecurityGroupRuleId.NotFound",
                    $"The security group rule ID '{id}' is an {(rule.Direction == "inbound" ? "ingress" : "egress")} rule; revoke it with RevokeSecurityGroup{(rule.Direction == "inbound" ? "Ingress" : "Egress")}.");
            result.Add(ruleId);
        }
        return result;
    }

    /// <summary>One rule as AWS's SecurityGroupRule.</summary>
    static XElement RuleItem(SecurityRuleInfo r, string ruleId, string groupId, long ownerId)
    {
        var p = Ec2NetworkingShapes.PermissionOf(r);
        return Item(E("securityGroupRuleId", ruleId), E("groupId", groupId), E("groupOwnerId", Ec2NetworkingShapes.AccountOf(ownerId)),
            E("isEgress", r.Direction == "outbound"), E("ipProtocol", p.Protocol), E("fromPort", p.From ?? -1), E("toPort", p.To ?? -1),
            E("cidrIpv4", r.Cidr ?? "0.0.0.0/0"), Set("tagSet", []));
    }

    async Task<IEnumerable<XElement>> DescribeSecurityGroupRules(Ec2Request request, CancellationToken ct)
    {
        var wanted = request.List("SecurityGroupRuleId");
        if (wanted.FirstOrDefault(id => !Ec2Store.IsRuleId(id)) is { } malformed)
            throw new Ec2Exception("InvalidSecurityGroupRuleId.Malformed", $"Invalid id: '{malformed}' (expecting 'sgr-' and 17 hex digits).");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "security group rules", wanted.Count > 0 ? "SecurityGroupRuleIds" : null);
        var filters = request.Filters();
        var groups = await _securityGroups.ListAsync(request.Caller, ct);
        var groupIds = await _ec2Store.IdsForAsync(Ec2Kind.SecurityGroup, groups.Select(g => g.Id.ToString(CultureInfo.InvariantCulture)).ToList());
        // Only accept rules are AWS permissions (a REST drop rule applies but has no AWS shape).
        var rules = groups.SelectMany(g => g.Rules.Where(r => r.Action == "accept").Select(r => (Group: g, Rule: r))).ToList();
        var ruleIds = await _ec2Store.RuleIdsForAsync(rules.Select(x => x.Rule.Id).ToList());
        if (wanted.FirstOrDefault(id => !ruleIds.Values.Contains(id)) is { } unknown)
            throw new Ec2Exception("InvalidSecurityGroupRuleId.NotFound", $"The security group rule ID '{unknown}' does not exist.");
        var selected = rules
            .Where(x => wanted.Count == 0 || wanted.Contains(ruleIds[x.Rule.Id]))
            .Where(x => filters.All(f => Ec2NetworkingShapes.Matches(f, null, name => name switch
            {
                "group-id" => [groupIds[x.Group.Id.ToString(CultureInfo.InvariantCulture)]],
                "security-group-rule-id" => [ruleIds[x.Rule.Id]],
                _ => null,
            })))
            .OrderBy(x => x.Rule.Id).ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        return
        [
            Set("securityGroupRuleSet", page.Select(x => RuleItem(x.Rule, ruleIds[x.Rule.Id], groupIds[x.Group.Id.ToString(CultureInfo.InvariantCulture)], x.Group.OwnerId))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    async Task<IEnumerable<XElement>> DeleteSecurityGroup(Ec2Request request, CancellationToken ct)
    {
        var group = await GroupOfRequestAsync(request, allowName: true, ct);
        if (group.Id == 0)
            throw new Ec2Exception("CannotDelete", $"The security group '{group.Name}' is the built-in default group and cannot be deleted.");
        try
        {
            await _securityGroups.DeleteAsync(group.Name, request.Caller, ct);
        }
        catch (ConflictException e)
        {
            throw new Ec2Exception("DependencyViolation", $"resource {await _ec2Store.IdForAsync(Ec2Kind.SecurityGroup, group.Id.ToString(CultureInfo.InvariantCulture))} has a dependent object. {e.Message}");
        }
        return [E("return", true)];
    }

    /// <summary>The group a request names by GroupId (sg-) or, where AWS allows it, GroupName; InvalidGroup.NotFound when the caller may not see it.</summary>
    async Task<SecurityGroupInfo> GroupOfRequestAsync(Ec2Request request, bool allowName, CancellationToken ct)
    {
        var groupId = request.Get("GroupId");
        var groupName = allowName ? request.Get("GroupName") : null;
        if (string.IsNullOrEmpty(groupId) && string.IsNullOrEmpty(groupName)) throw Ec2Exception.MissingParameter(allowName ? "GroupId or GroupName" : "GroupId");
        var visible = await _securityGroups.ListAsync(request.Caller, ct);
        if (!string.IsNullOrEmpty(groupId))
        {
            if (Ec2Store.KindOf(groupId) != Ec2Kind.SecurityGroup)
                throw new Ec2Exception("InvalidGroupId.Malformed", $"Invalid id: '{groupId}' (expecting 'sg-' and 17 hex digits).");
            var native = (await _ec2Store.ResolveAsync([groupId])).FirstOrDefault(i => i.Kind == Ec2Kind.SecurityGroup)?.NativeId;
            return visible.FirstOrDefault(g => g.Id.ToString(CultureInfo.InvariantCulture) == native)
                ?? throw new Ec2Exception("InvalidGroup.NotFound", $"The security group '{groupId}' does not exist.");
        }
        return visible.FirstOrDefault(g => g.Name == groupName)
            ?? throw new Ec2Exception("InvalidGroup.NotFound", $"The security group '{groupName}' does not exist in default VPC '{await DefaultVpcIdAsync()}'.");
    }

    // ---- the default VPC, its subnets (one per network), account attributes ------------------------------------------

    Task<string> DefaultVpcIdAsync() => _ec2Store.IdForAsync(Ec2Kind.Vpc, _options.Region);

    async Task<IEnumerable<XElement>> DescribeVpcs(Ec2Request request, CancellationToken ct)
    {
        var vpcId = await DefaultVpcIdAsync();
        foreach (var id in request.List("VpcId"))
            if (id != vpcId) throw new Ec2Exception("InvalidVpcID.NotFound", $"The vpc ID '{id}' does not exist; this region's only VPC is '{vpcId}'.");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "VPCs", null);
        var usable = (await _networks.ListAsync(request.Caller, ct)).Where(n => n.Usable).ToList();
        var cidr = Ec2NetworkingShapes.Covering(usable.Select(n => n.Cidr));
        var tags = (await _ec2Store.TagsOfAsync([vpcId])).GetValueOrDefault(vpcId);
        var account = Ec2NetworkingShapes.AccountOf(request.Caller.UserId);
        var matches = request.Filters().All(f => Ec2NetworkingShapes.Matches(f, tags, name => name switch
        {
            "vpc-id" => [vpcId],
            "is-default" or "isDefault" => ["true"],
            "state" => ["available"],
            "cidr" or "cidr-block" or "cidrBlock" or "cidr-block-association.cidr-block" => [cidr],
            "owner-id" => [account],
            "dhcp-options-id" => ["default"],
            _ => null,
        }));
        var all = matches ? new[] { vpcId } : [];
        var page = all.Skip(offset).Take(max).ToList();
        return
        [
            Set("vpcSet", page.Select(id => Item(
                E("vpcId", id), E("ownerId", account), E("state", "available"), E("cidrBlock", cidr),
                Set("cidrBlockAssociationSet", [Item(E("cidrBlock", cidr), E("associationId", "vpc-cidr-assoc-" + id[4..]), new XElement(Ns + "cidrBlockState", E("state", "associated")))]),
                Set("ipv6CidrBlockAssociationSet", []),
                E("dhcpOptionsId", "default"), E("instanceTenancy", "default"), E("isDefault", true),
                Ec2NetworkingShapes.TagSet(Ns, tags?.ToList() ?? [])))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, all.Length),
        ];
    }

    async Task<IEnumerable<XElement>> DescribeSubnets(Ec2Request request, CancellationToken ct)
    {
        var vpcId = await DefaultVpcIdAsync();
        var wanted = request.List("SubnetId");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "subnets", wanted.Count > 0 ? "SubnetIds" : null);
        var networks = (await _networks.ListAsync(request.Caller, ct)).Where(n => n.Usable).ToList();
        var ids = await _ec2Store.IdsForAsync(Ec2Kind.Subnet, networks.Select(n => n.Id.ToString(CultureInfo.InvariantCulture)).ToList());
        string IdOf(NetworkInfo n) => ids[n.Id.ToString(CultureInfo.InvariantCulture)];
        foreach (var id in wanted)
            if (!networks.Any(n => IdOf(n) == id)) throw new Ec2Exception("InvalidSubnetID.NotFound", $"The subnet ID '{id}' does not exist.");
        var stored = await _ec2Store.TagsOfAsync(networks.Select(IdOf).ToList());
        // A subnet's Name tag is its network's name unless the caller tagged it otherwise.
        List<KeyValuePair<string, string>> TagsOf(NetworkInfo n) =>
            new Dictionary<string, string>(stored.GetValueOrDefault(IdOf(n)) ?? new Dictionary<string, string>()) { ["Name"] = stored.GetValueOrDefault(IdOf(n))?.GetValueOrDefault("Name") ?? n.Name }
                .OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var account = Ec2NetworkingShapes.AccountOf(request.Caller.UserId);
        var zoneId = _options.Region + "-az1";
        var filters = request.Filters();
        var selected = networks
            .Where(n => wanted.Count == 0 || wanted.Contains(IdOf(n)))
            .Where(n => filters.All(f => Ec2NetworkingShapes.Matches(f, TagsOf(n).ToDictionary(), name => name switch
            {
                "subnet-id" or "subnetId" => [IdOf(n)],
                "vpc-id" or "vpcId" => [vpcId],
                "cidr" or "cidr-block" or "cidrBlock" => [n.Cidr],
                "availability-zone" or "availabilityZone" => [_options.Zone],
                "availability-zone-id" or "availabilityZoneId" => [zoneId],
                "default-for-az" or "defaultForAz" => [n.IsDefault ? "true" : "false"],
                "state" => ["available"],
                "owner-id" => [Ec2NetworkingShapes.AccountOf(n.OwnerId)],
                "map-public-ip-on-launch" => [n.Kind == "public" ? "true" : "false"],
                _ => null,
            })))
            .ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        return
        [
            Set("subnetSet", page.Select(n => Item(
                E("subnetId", IdOf(n)), E("subnetArn", $"arn:aws:ec2:{_options.Region}:{Ec2NetworkingShapes.AccountOf(n.OwnerId)}:subnet/{IdOf(n)}"),
                E("state", "available"), E("ownerId", Ec2NetworkingShapes.AccountOf(n.OwnerId)), E("vpcId", vpcId), E("cidrBlock", n.Cidr),
                Set("ipv6CidrBlockAssociationSet", []), E("availableIpAddressCount", n.Free),
                E("availabilityZone", _options.Zone), E("availabilityZoneId", zoneId), E("defaultForAz", n.IsDefault),
                E("mapPublicIpOnLaunch", n.Kind == "public"), E("assignIpv6AddressOnCreation", false),
                Ec2NetworkingShapes.TagSet(Ns, TagsOf(n))))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    async Task<IEnumerable<XElement>> DescribeAccountAttributes(Ec2Request request, CancellationToken ct)
    {
        string[] known = ["supported-platforms", "default-vpc"];
        var wanted = request.List("AttributeName");
        if (wanted.FirstOrDefault(a => !known.Contains(a)) is { } unknown)
            throw Ec2Exception.InvalidParameterValue("AttributeName", unknown, $"Supported attributes: {string.Join(", ", known)}.");
        var vpcId = await DefaultVpcIdAsync();
        var values = new Dictionary<string, string[]> { ["supported-platforms"] = ["VPC"], ["default-vpc"] = [vpcId] };
        return
        [
            Set("accountAttributeSet", known.Where(a => wanted.Count == 0 || wanted.Contains(a)).Select(a => Item(
                E("attributeName", a), Set("attributeValueSet", values[a].Select(v => Item(E("attributeValue", v))))))),
        ];
    }
}

/// <summary>AWS shapes the networking actions share: rule parameters, paging, filters, tags, account ids (pure).</summary>
internal static class Ec2NetworkingShapes
{
    /// <summary>The 12-digit AWS account id standing for one of our users (0: the site).</summary>
    public static string AccountOf(long userId) => userId.ToString("D12", CultureInfo.InvariantCulture);

    /// <summary>An accept rule's AWS protocol and ports: -1 (no ports), tcp/udp with 0-65535 for any port, icmp with -1/-1 (every type and code).</summary>
    public static (string Protocol, int? From, int? To) PermissionOf(SecurityRuleInfo r) => r.Protocol switch
    {
        "tcp" or "udp" => (r.Protocol, r.PortFirst ?? 0, r.PortLast ?? 65535),
        "icmp" => ("icmp", -1, -1),
        _ => ("-1", null, null),
    };

    /// <summary>
    /// The rules an Authorize/Revoke request names, one per (permission, CIDR): IpPermissions.N.{IpProtocol, FromPort, ToPort,
    /// IpRanges.M.CidrIp}, or the legacy top-level IpProtocol/FromPort/ToPort/CidrIp.
    /// </summary>
    public static IReadOnlyList<SecurityRuleSpec> RuleSpecs(Ec2Request request, string direction)
    {
        var permissions = request.Structs("IpPermissions").Select((p, i) => (Fields: p, Prefix: $"IpPermissions.{i + 1}.")).ToList();
        if (request.Get("IpProtocol") is not null || request.Get("CidrIp") is not null)
        {
            if (permissions.Count > 0)
                throw new Ec2Exception("InvalidParameterCombination", "Give either IpPermissions or the top-level IpProtocol, FromPort, ToPort and CidrIp, not both.");
            if (request.Get("SourceSecurityGroupName") is not null || request.Get("SourceSecurityGroupOwnerId") is not null)
                throw new Ec2Exception("InvalidParameterValue", "Rules that reference another security group are not supported by this server; give CidrIp instead.");
            var legacy = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var key in new[] { "IpProtocol", "FromPort", "ToPort" })
                if (request.Get(key) is { } v) legacy[key] = v;
            legacy["IpRanges.1.CidrIp"] = request.Get("CidrIp") ?? throw Ec2Exception.MissingParameter("CidrIp");
            permissions = [(legacy, "")];
        }
        if (permissions.Count == 0) throw Ec2Exception.MissingParameter("IpPermissions");

        var specs = new List<SecurityRuleSpec>();
        foreach (var (p, prefix) in permissions)
        {
            if (p.Keys.Any(k => k.StartsWith("Groups.", StringComparison.Ordinal)))
                throw new Ec2Exception("InvalidParameterValue", $"{prefix}Groups: rules that reference another security group are not supported by this server; give IpRanges instead.");
            if (p.Keys.Any(k => k.StartsWith("Ipv6Ranges.", StringComparison.Ordinal)))
                throw new Ec2Exception("InvalidParameterValue", $"{prefix}Ipv6Ranges: IPv6 rules are not supported by this server; give IPv4 IpRanges.");
            if (p.Keys.Any(k => k.StartsWith("PrefixListIds.", StringComparison.Ordinal)))
                throw new Ec2Exception("InvalidParameterValue", $"{prefix}PrefixListIds: prefix lists are not supported by this server; give IpRanges.");
            var protocolText = p.GetValueOrDefault("IpProtocol") ?? throw Ec2Exception.MissingParameter(prefix + "IpProtocol");
            var protocol = protocolText.ToLowerInvariant() switch
            {
                "-1" or "all" => "all",
                "tcp" or "6" => "tcp",
                "udp" or "17" => "udp",
                "icmp" or "1" => "icmp",
                _ => throw Ec2Exception.InvalidParameterValue(prefix + "IpProtocol", protocolText, "Supported protocols: tcp (6), udp (17), icmp (1) and -1 (all)."),
            };
            var from = Port(p, prefix + "FromPort", "FromPort");
            var to = Port(p, prefix + "ToPort", "ToPort");
            string? ports = null;
            if (protocol is "tcp" or "udp")
            {
                if (from is null || to is null)
                    throw new Ec2Exception("InvalidParameterValue", $"Invalid value for portRange. Must specify both from and to ports with TCP/UDP ({prefix}FromPort, {prefix}ToPort).");
                if (from is < 0 or > 65535 || to is < 0 or > 65535 || to < from)
                    throw new Ec2Exception("InvalidParameterValue", $"Invalid port range {from}-{to} ({prefix}FromPort, {prefix}ToPort): give 0..65535, FromPort not above ToPort.");
                if (to == 0) throw new Ec2Exception("InvalidParameterValue", $"Port 0 alone ({prefix}ToPort) cannot be matched; give ports 1..65535.");
                if (!(from == 0 && to == 65535)) ports = $"{Math.Max(1, from.Value)}-{to}";
            }
            else if (protocol == "icmp" && (from is not (null or -1) || to is not (null or -1)))
                throw new Ec2Exception("InvalidParameterValue",
                    $"ICMP type {from} / code {to} ({prefix}FromPort, {prefix}ToPort): this server's rules match every ICMP type and code; give -1 for both.");
            var cidrs = p.Where(kv => Regex.IsMatch(kv.Key, @"^IpRanges\.\d+\.CidrIp$")).OrderBy(kv => int.Parse(kv.Key.Split('.')[1], CultureInfo.InvariantCulture))
                .Select(kv => kv.Value).ToList();
            if (cidrs.Count == 0) throw Ec2Exception.MissingParameter(prefix + "IpRanges.1.CidrIp");
            foreach (var cidr in cidrs)
            {
                if (!Regex.IsMatch(cidr, @"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$"))
                    throw Ec2Exception.InvalidParameterValue(prefix + "IpRanges.N.CidrIp", cidr, "CIDR block is malformed: give an IPv4 CIDR such as 192.0.2.0/24.");
                specs.Add(new SecurityRuleSpec(direction, protocol, ports, cidr, "accept"));
            }
        }
        return specs;
    }

    static int? Port(IReadOnlyDictionary<string, string> p, string name, string key)
    {
        if (p.GetValueOrDefault(key) is not { } text) return null;
        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v is >= -1 and <= 65535
            ? v : throw Ec2Exception.InvalidParameterValue(name, text, "Accepted: a port 0..65535 (-1 for every ICMP type or code).");
    }

    /// <summary>MaxResults (5..1000) and NextToken as (page size, offset); MaxResults may not be combined with explicit ids.</summary>
    public static (int Max, int Offset) Paging(Ec2Request request, string what, string? idsParameter)
    {
        var max = request.Int("MaxResults", 5, 1000);
        if (max is not null && idsParameter is not null)
            throw new Ec2Exception("InvalidParameterCombination", $"The parameter MaxResults cannot be used with {idsParameter}; list {what} by id, or page without ids.");
        var offset = 0;
        if (request.Get("NextToken") is { Length: > 0 } token)
        {
            string text;
            try { text = Encoding.UTF8.GetString(Convert.FromBase64String(token)); }
            catch (FormatException) { text = ""; }
            if (!text.StartsWith("offset:", StringComparison.Ordinal) || !int.TryParse(text[7..], NumberStyles.None, CultureInfo.InvariantCulture, out offset))
                throw Ec2Exception.InvalidParameterValue("NextToken", token, "Give the NextToken of the previous page's response, unchanged.");
        }
        return (max ?? 1000, offset);
    }

    /// <summary>The nextToken element when more results follow.</summary>
    public static IEnumerable<XElement> NextToken(XNamespace ns, int next, int total) =>
        next < total ? [new XElement(ns + "nextToken", Convert.ToBase64String(Encoding.UTF8.GetBytes($"offset:{next}")))] : [];

    /// <summary>
    /// Whether a resource passes one filter: the named attribute (null for an unknown name: InvalidParameterValue), tag:K
    /// or tag-key; values may use * and ? wildcards.
    /// </summary>
    public static bool Matches((string Name, IReadOnlyList<string> Values) filter, IReadOnlyDictionary<string, string>? tags, Func<string, IReadOnlyList<string>?> attribute)
    {
        var (name, values) = filter;
        IReadOnlyList<string>? actual = name.StartsWith("tag:", StringComparison.Ordinal)
            ? tags?.TryGetValue(name[4..], out var v) == true ? [v!] : []
            : name == "tag-key" ? tags?.Keys.ToList() ?? [] : attribute(name);
        if (actual is null) throw new Ec2Exception("InvalidParameterValue", $"The filter '{name}' is invalid.");
        return values.Any(pattern => actual.Any(a => Regex.IsMatch(a, "^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$", RegexOptions.Singleline)));
    }

    /// <summary>TagSpecification.N.{ResourceType, Tag.M.Key, Tag.M.Value} for one resource type.</summary>
    public static List<KeyValuePair<string, string>> TagSpecifications(Ec2Request request, string resourceType)
    {
        var tags = new List<KeyValuePair<string, string>>();
        foreach (var spec in request.Structs("TagSpecification"))
        {
            var type = spec.GetValueOrDefault("ResourceType");
            if (type != resourceType)
                throw Ec2Exception.InvalidParameterValue("TagSpecification.N.ResourceType", type ?? "", $"This action tags resources of type '{resourceType}'.");
            foreach (var key in spec.Keys.Where(k => Regex.IsMatch(k, @"^Tag\.\d+\.Key$")).OrderBy(k => int.Parse(k.Split('.')[1], CultureInfo.InvariantCulture)))
            {
                var tagKey = spec[key];
                if (tagKey.Length is 0 or > 128 || tagKey.StartsWith("aws:", StringComparison.Ordinal))
                    throw Ec2Exception.InvalidParameterValue("Tag.Key", tagKey, "A tag key is 1..128 characters and does not start with 'aws:'.");
                var value = spec.GetValueOrDefault(key[..^3] + "Value") ?? "";
                if (value.Length > 256) throw Ec2Exception.InvalidParameterValue("Tag.Value", value, "A tag value is at most 256 characters.");
                tags.Add(new(tagKey, value));
            }
        }
        return tags;
    }

    public static XElement TagSet(XNamespace ns, IEnumerable<KeyValuePair<string, string>> tags) =>
        new(ns + "tagSet", tags.Select(t => new XElement(ns + "item", new XElement(ns + "key", t.Key), new XElement(ns + "value", t.Value))));

    /// <summary>The smallest IPv4 CIDR covering every given CIDR (10.0.0.0/16 when there are none).</summary>
    public static string Covering(IEnumerable<string> cidrs)
    {
        var parsed = cidrs.Select(c => c.Split('/')).Where(p => p.Length == 2 && IPAddress.TryParse(p[0], out _))
            .Select(p => (Start: ToUInt(IPAddress.Parse(p[0])), Prefix: int.Parse(p[1], CultureInfo.InvariantCulture)))
            .Select(p => (First: p.Start, Last: p.Start | (p.Prefix == 0 ? uint.MaxValue : (1u << (32 - p.Prefix)) - 1))).ToList();
        if (parsed.Count == 0) return "10.0.0.0/16";
        var first = parsed.Min(p => p.First);
        var last = parsed.Max(p => p.Last);
        var prefix = 32;
        while (prefix > 0 && (first >> (32 - prefix)) != (last >> (32 - prefix))) prefix--;
        var network = prefix == 0 ? 0 : first & (uint.MaxValue << (32 - prefix));
        return $"{new IPAddress([(byte)(network >> 24), (byte)(network >> 16), (byte)(network >> 8), (byte)network])}/{prefix}";
    }

    static uint ToUInt(IPAddress address)
    {
        var b = address.GetAddressBytes();
        return (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
    }
}
