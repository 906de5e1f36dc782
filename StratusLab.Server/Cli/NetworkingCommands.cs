using System.Globalization;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Networking.Contracts;

namespace StratusLab.Server.Cli;

/// <summary>Networks, leases and security groups.</summary>
public static class NetworkingCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("create-network", "NAME (--cidr CIDR | --first IP --last IP [--mask MASK] | --network IP --mask MASK) [--first IP] [--last IP] " +
            "[--kind public|local|private] [--driver user|bridge] [--gateway IP] [--dns IP]... [--mtu N] [--vlan ID --uplink DEV] [--security-group NAME]...",
            "create a virtual network with an address range", CreateNetwork) { Example = "stratuslab create-network lab --driver bridge --cidr 10.77.0.0/24 --gateway 10.77.0.1" },
        new("describe-networks", "[NAME]...", "show networks: ranges, gateway, DNS, leases used, held and free", DescribeNetworks) { Example = "stratuslab describe-networks" },
        new("describe-leases", "NETWORK [--state used|held]", "show a network's leases: address, MAC, instance, forwarded ports", DescribeLeases) { Example = "stratuslab describe-leases lab --state used" },
        new("hold-address", "NETWORK IP", "reserve an address so that no VM gets it", HoldAddress) { Example = "stratuslab hold-address lab 10.77.0.10" },
        new("release-address", "NETWORK IP", "give a held address back", ReleaseAddress) { Example = "stratuslab release-address lab 10.77.0.10" },
        new("delete-network", "NAME", "delete a network (only when no instance uses it)", DeleteNetwork) { Example = "stratuslab delete-network lab" },
        new("create-security-group", "NAME [--description TEXT]", "create an empty security group (firewall rules for NICs)", CreateSecurityGroup) { Example = "stratuslab create-security-group web --description \"HTTP in\"" },
        new("describe-security-groups", "[NAME]...", "show security groups and their rules", DescribeSecurityGroups) { Example = "stratuslab describe-security-groups" },
        new("add-security-rule", "GROUP --direction inbound|outbound [--protocol all|tcp|udp|icmp] [--ports 22|1000-2000] [--cidr CIDR] [--action accept|drop]",
            "add a rule to a security group (applies to running NICs at once)", AddSecurityRule) { Example = "stratuslab add-security-rule web --direction inbound --protocol tcp --ports 80" },
        new("delete-security-rule", "GROUP RULE-ID", "remove a rule from a security group", DeleteSecurityRule) { Example = "stratuslab delete-security-rule web 2" },
        new("delete-security-group", "NAME", "delete a security group no network uses", DeleteSecurityGroup) { Example = "stratuslab delete-security-group web" },
    ];

    static async Task<int> CreateNetwork(CliContext cx)
    {
        cx.Args.AllowOnly("--cidr", "--first", "--last", "--network", "--mask", "--kind", "--driver", "--gateway", "--dns", "--mtu", "--vlan", "--uplink", "--security-group");
        var name = cx.Args.Positional(0, "the network name");
        static IReadOnlyList<string>? Many(IReadOnlyList<string> values) => values.Count > 0 ? values : null;
        var body = new CreateNetworkRequest(name, cx.Args.Option("--kind"), cx.Args.Option("--driver"), cx.Args.Option("--cidr"), cx.Args.Option("--first"),
            cx.Args.Option("--last"), cx.Args.Option("--network"), cx.Args.Option("--mask"), Ranges: null, cx.Args.Option("--gateway"), Many(cx.Args.All("--dns")),
            Int(cx, "--mtu"), Int(cx, "--vlan"), cx.Args.Option("--uplink"), Many(cx.Args.All("--security-group")));
        var created = await cx.Api.PostAsync<NetworkView>("api/v1/networks", body);
        return cx.Print(created, n => cx.Out.WriteLine($"created network {n.Name} ({n.Driver}, {n.Cidr}, {n.Size} addresses)"));
    }

    static int? Int(CliContext cx, string option) => cx.Args.LongOption(option) switch
    {
        null => null,
        var v and >= int.MinValue and <= int.MaxValue => (int)v,
        var v => throw new UsageException($"{option} {v} is out of range."),
    };

    static async Task<int> DescribeNetworks(CliContext cx)
    {
        cx.Args.AllowOnly();
        List<NetworkView> networks;
        if (cx.Args.Positionals.Count == 0) networks = await cx.Api.GetAsync<List<NetworkView>>("api/v1/networks");
        else
        {
            networks = [];
            foreach (var name in cx.Args.Positionals) networks.Add(await cx.Api.GetAsync<NetworkView>($"api/v1/networks/{Uri.EscapeDataString(name)}"));
        }
        return cx.Print(networks, list => cx.TableOf(list,
            ("name", n => n.Name), ("kind", n => n.Kind), ("driver", n => n.Driver), ("cidr", n => n.Cidr),
            ("ranges", n => string.Join(",", n.Ranges.Select(r => $"{r.First}-{r.Last}"))),
            ("gateway", n => n.Gateway), ("dns", n => string.Join(",", n.Dns)),
            ("used", n => $"{n.Used}"), ("held", n => $"{n.Held}"), ("free", n => $"{n.Free}"),
            ("vlan", n => n.VlanId?.ToString(CultureInfo.InvariantCulture)), ("groups", n => string.Join(",", n.SecurityGroups))));
    }

    static async Task<int> DescribeLeases(CliContext cx)
    {
        cx.Args.AllowOnly("--state");
        var network = cx.Args.Positional(0, "the network name");
        var state = cx.Args.Option("--state");
        var leases = await cx.Api.GetAsync<List<LeaseView>>($"api/v1/networks/{Uri.EscapeDataString(network)}/leases?limit=1000" + (state is null ? "" : "&state=" + Uri.EscapeDataString(state)));
        return cx.Print(leases, list => cx.TableOf(list,
            ("ip", l => l.Ip), ("mac", l => l.Mac), ("state", l => l.State), ("instance", l => l.InstanceId?.ToString(CultureInfo.InvariantCulture)),
            ("nic", l => l.Nic?.ToString(CultureInfo.InvariantCulture)), ("reason", l => l.Reason),
            ("ports", l => string.Join(",", l.Forwards.Select(f => $"{f.HostAddress}:{f.HostPort}->{f.GuestPort}")))));
    }

    static async Task<int> HoldAddress(CliContext cx)
    {
        cx.Args.AllowOnly();
        var network = cx.Args.Positional(0, "the network name");
        var ip = cx.Args.Positional(1, "the address to hold");
        var lease = await cx.Api.PostAsync<LeaseView>($"api/v1/networks/{Uri.EscapeDataString(network)}/hold", new AddressRequest(ip));
        return cx.Print(lease, l => cx.Out.WriteLine($"held {l.Ip} on network {network}"));
    }

    static async Task<int> ReleaseAddress(CliContext cx)
    {
        cx.Args.AllowOnly();
        var network = cx.Args.Positional(0, "the network name");
        var ip = cx.Args.Positional(1, "the address to release");
        await cx.Api.PostAsync($"api/v1/networks/{Uri.EscapeDataString(network)}/release", new AddressRequest(ip));
        return cx.Print(new JsonObject { ["released"] = ip, ["network"] = network }, _ => cx.Out.WriteLine($"released {ip} on network {network}"));
    }

    static async Task<int> DeleteNetwork(CliContext cx)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the network name");
        await cx.Api.DeleteAsync($"api/v1/networks/{Uri.EscapeDataString(name)}");
        return cx.Print(new JsonObject { ["deleted"] = name }, _ => cx.Out.WriteLine($"deleted network {name}"));
    }

    static async Task<int> CreateSecurityGroup(CliContext cx)
    {
        cx.Args.AllowOnly("--description");
        var name = cx.Args.Positional(0, "the security group name");
        var created = await cx.Api.PostAsync<SecurityGroupView>("api/v1/security-groups", new CreateSecurityGroupRequest(name, cx.Args.Option("--description")));
        return cx.Print(created, g => cx.Out.WriteLine($"created security group {g.Name}"));
    }

    static async Task<int> DescribeSecurityGroups(CliContext cx)
    {
        cx.Args.AllowOnly();
        List<SecurityGroupView> groups;
        if (cx.Args.Positionals.Count == 0) groups = await cx.Api.GetAsync<List<SecurityGroupView>>("api/v1/security-groups");
        else
        {
            groups = [];
            foreach (var name in cx.Args.Positionals) groups.Add(await cx.Api.GetAsync<SecurityGroupView>($"api/v1/security-groups/{Uri.EscapeDataString(name)}"));
        }
        return cx.Print(groups, list =>
        {
            foreach (var g in list)
            {
                cx.Out.WriteLine($"{g.Name} (owner {g.Owner}, networks {string.Join(",", g.Networks.Select(n => n.ToString(CultureInfo.InvariantCulture)).DefaultIfEmpty("-"))})");
                cx.TableOf(g.Rules,
                    ("  id", r => "  " + r.Id), ("direction", r => r.Direction), ("protocol", r => r.Protocol),
                    ("ports", r => r.Ports), ("cidr", r => r.Cidr ?? "any"), ("action", r => r.Action));
            }
        });
    }

    static async Task<int> AddSecurityRule(CliContext cx)
    {
        cx.Args.AllowOnly("--direction", "--protocol", "--ports", "--cidr", "--action");
        var group = cx.Args.Positional(0, "the security group name");
        var direction = cx.Args.Option("--direction") ?? throw new UsageException("--direction is required (inbound or outbound).");
        var rule = await cx.Api.PostAsync<SecurityRuleView>($"api/v1/security-groups/{Uri.EscapeDataString(group)}/rules", new SecurityRuleRequest(
            direction, cx.Args.Option("--protocol"), cx.Args.Option("--ports"), cx.Args.Option("--cidr"), cx.Args.Option("--action")));
        return cx.Print(rule, r => cx.Out.WriteLine($"added rule {r.Id} to {group}: {r.Direction} {r.Protocol} {r.Ports} {r.Cidr ?? "any"} {r.Action}"));
    }

    static async Task<int> DeleteSecurityRule(CliContext cx)
    {
        cx.Args.AllowOnly();
        var group = cx.Args.Positional(0, "the security group name");
        var id = cx.Args.Positional(1, "the rule id");
        if (!long.TryParse(id, out _)) throw new UsageException($"'{id}' is not a rule id (see describe-security-groups).");
        await cx.Api.DeleteAsync($"api/v1/security-groups/{Uri.EscapeDataString(group)}/rules/{id}");
        return cx.Print(new JsonObject { ["deleted"] = long.Parse(id) }, _ => cx.Out.WriteLine($"deleted rule {id} of {group}"));
    }

    static async Task<int> DeleteSecurityGroup(CliContext cx)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the security group name");
        await cx.Api.DeleteAsync($"api/v1/security-groups/{Uri.EscapeDataString(name)}");
        return cx.Print(new JsonObject { ["deleted"] = name }, _ => cx.Out.WriteLine($"deleted security group {name}"));
    }
}
