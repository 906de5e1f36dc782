using System.Text.Json.Nodes;

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
        var body = new JsonObject
        {
            ["name"] = name,
            ["kind"] = cx.Args.Option("--kind"),
            ["driver"] = cx.Args.Option("--driver"),
            ["cidr"] = cx.Args.Option("--cidr"),
            ["first"] = cx.Args.Option("--first"),
            ["last"] = cx.Args.Option("--last"),
            ["network"] = cx.Args.Option("--network"),
            ["mask"] = cx.Args.Option("--mask"),
            ["gateway"] = cx.Args.Option("--gateway"),
            ["mtu"] = cx.Args.LongOption("--mtu"),
            ["vlanId"] = cx.Args.LongOption("--vlan"),
            ["uplink"] = cx.Args.Option("--uplink"),
        };
        if (cx.Args.All("--dns").Count > 0) body["dns"] = new JsonArray(cx.Args.All("--dns").Select(d => (JsonNode)d).ToArray());
        if (cx.Args.All("--security-group").Count > 0) body["securityGroups"] = new JsonArray(cx.Args.All("--security-group").Select(d => (JsonNode)d).ToArray());
        foreach (var key in body.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) body.Remove(key);
        var created = await cx.Api.PostAsync("api/v1/networks", body);
        return cx.Print(created, n => cx.Out.WriteLine($"created network {n["name"]} ({n["driver"]}, {n["cidr"]}, {n["size"]} addresses)"));
    }

    static async Task<int> DescribeNetworks(CliContext cx)
    {
        cx.Args.AllowOnly();
        JsonNode result;
        if (cx.Args.Positionals.Count == 0) result = (await cx.Api.GetAsync("api/v1/networks"))!;
        else
        {
            var array = new JsonArray();
            foreach (var name in cx.Args.Positionals) array.Add(await cx.Api.GetAsync($"api/v1/networks/{Uri.EscapeDataString(name)}"));
            result = array;
        }
        return cx.Print(result, node => cx.Table(node.AsArray(),
            ("name", n => n["name"]?.ToString()), ("kind", n => n["kind"]?.ToString()), ("driver", n => n["driver"]?.ToString()),
            ("cidr", n => n["cidr"]?.ToString()),
            ("ranges", n => string.Join(",", n["ranges"]!.AsArray().Select(r => $"{r!["first"]}-{r["last"]}"))),
            ("gateway", n => n["gateway"]?.ToString()), ("dns", n => string.Join(",", n["dns"]!.AsArray().Select(d => d!.ToString()))),
            ("used", n => n["used"]?.ToString()), ("held", n => n["held"]?.ToString()), ("free", n => n["free"]?.ToString()),
            ("vlan", n => n["vlanId"]?.ToString()), ("groups", n => string.Join(",", n["securityGroups"]!.AsArray().Select(g => g!.ToString())))));
    }

    static async Task<int> DescribeLeases(CliContext cx)
    {
        cx.Args.AllowOnly("--state");
        var network = cx.Args.Positional(0, "the network name");
        var state = cx.Args.Option("--state");
        var leases = await cx.Api.GetAsync($"api/v1/networks/{Uri.EscapeDataString(network)}/leases?limit=1000" + (state is null ? "" : "&state=" + Uri.EscapeDataString(state)));
        return cx.Print(leases, list => cx.Table(list.AsArray(),
            ("ip", l => l["ip"]?.ToString()), ("mac", l => l["mac"]?.ToString()), ("state", l => l["state"]?.ToString()),
            ("instance", l => l["instanceId"]?.ToString()), ("nic", l => l["nic"]?.ToString()), ("reason", l => l["reason"]?.ToString()),
            ("ports", l => string.Join(",", l["forwards"]!.AsArray().Select(f => $"{f!["hostAddress"]}:{f["hostPort"]}->{f["guestPort"]}")))));
    }

    static async Task<int> HoldAddress(CliContext cx)
    {
        cx.Args.AllowOnly();
        var network = cx.Args.Positional(0, "the network name");
        var ip = cx.Args.Positional(1, "the address to hold");
        var lease = await cx.Api.PostAsync($"api/v1/networks/{Uri.EscapeDataString(network)}/hold", new { ip });
        return cx.Print(lease, _ => cx.Out.WriteLine($"held {ip} on network {network}"));
    }

    static async Task<int> ReleaseAddress(CliContext cx)
    {
        cx.Args.AllowOnly();
        var network = cx.Args.Positional(0, "the network name");
        var ip = cx.Args.Positional(1, "the address to release");
        await cx.Api.PostAsync($"api/v1/networks/{Uri.EscapeDataString(network)}/release", new { ip });
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
        var created = await cx.Api.PostAsync("api/v1/security-groups", new { name, description = cx.Args.Option("--description") });
        return cx.Print(created, _ => cx.Out.WriteLine($"created security group {name}"));
    }

    static async Task<int> DescribeSecurityGroups(CliContext cx)
    {
        cx.Args.AllowOnly();
        JsonNode result;
        if (cx.Args.Positionals.Count == 0) result = (await cx.Api.GetAsync("api/v1/security-groups"))!;
        else
        {
            var array = new JsonArray();
            foreach (var name in cx.Args.Positionals) array.Add(await cx.Api.GetAsync($"api/v1/security-groups/{Uri.EscapeDataString(name)}"));
            result = array;
        }
        return cx.Print(result, node =>
        {
            foreach (var g in node.AsArray())
            {
                cx.Out.WriteLine($"{g!["name"]} (owner {g["owner"]}, networks {string.Join(",", g["networks"]!.AsArray().Select(n => n!.ToString()).DefaultIfEmpty("-"))})");
                cx.Table(g["rules"]!.AsArray(),
                    ("  id", r => "  " + r["id"]), ("direction", r => r["direction"]?.ToString()), ("protocol", r => r["protocol"]?.ToString()),
                    ("ports", r => r["ports"]?.ToString()), ("cidr", r => r["cidr"]?.ToString() ?? "any"), ("action", r => r["action"]?.ToString()));
            }
        });
    }

    static async Task<int> AddSecurityRule(CliContext cx)
    {
        cx.Args.AllowOnly("--direction", "--protocol", "--ports", "--cidr", "--action");
        var group = cx.Args.Positional(0, "the security group name");
        var direction = cx.Args.Option("--direction") ?? throw new UsageException("--direction is required (inbound or outbound).");
        var rule = await cx.Api.PostAsync($"api/v1/security-groups/{Uri.EscapeDataString(group)}/rules", new
        {
            direction, protocol = cx.Args.Option("--protocol"), ports = cx.Args.Option("--ports"), cidr = cx.Args.Option("--cidr"), action = cx.Args.Option("--action"),
        });
        return cx.Print(rule, r => cx.Out.WriteLine($"added rule {r["id"]} to {group}: {r["direction"]} {r["protocol"]} {r["ports"]} {r["cidr"] ?? "any"} {r["action"]}"));
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
