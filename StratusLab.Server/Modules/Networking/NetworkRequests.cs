using System.Text.Json;
using System.Text.RegularExpressions;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Networking;

/// <summary>Validates network requests and applies them: nothing is written unless every check passed.</summary>
internal sealed partial class NetworkRequests(NetworkingStore store, InstanceNetworking networking, NetworkingOptions options)
{
    public static readonly string[] Kinds = ["public", "local", "private"];

    public async Task<long> CreateAsync(CreateNetworkRequest r, Caller caller)
    {
        var name = Validate.Name(r.Name, "name");
        var kind = r.Kind ?? "private";
        if (!Kinds.Contains(kind)) throw new InvalidInputException("kind", $"'kind' = '{Validate.Trim(kind)}' is not accepted; accepted values: public, local, private.");
        var driver = r.Driver ?? "user";
        if (!NetworkDriverNames.All.Contains(driver))
            throw new InvalidInputException("driver", $"'driver' = '{Validate.Trim(driver)}' is not accepted; accepted values: {string.Join(", ", NetworkDriverNames.All.Order())}.");

        var restricted = new List<string>();
        if (r.VlanId is not null) restricted.Add("vlanId");
        if (r.Uplink is not null) restricted.Add("uplink");
        if (kind == "public") restricted.Add("kind public");
        if (!caller.IsAdmin && restricted.Count > 0)
            throw new RestrictedAttributeException(restricted[0].Split(' ')[0],
                $"Only administrators may set {string.Join(", ", restricted)}; leave {(restricted.Count == 1 ? "it" : "them")} out, or ask an administrator.");

        var ranges = ParseRanges(r);
        var subnet = ranges[0].Subnet;
        var rangeField = r.Ranges is not null ? "ranges" : r.Cidr is not null ? "cidr" : r.Network is not null ? "network" : "first";
        if (AddressRange.WhyUnusable(ranges, []) is { } unusableRange) throw new InvalidInputException(rangeField, unusableRange);
        var size = ranges.Sum(x => x.Size);
        if (size > options.MaxRangeAddresses)
            throw new InvalidInputException(r.Ranges is null ? "cidr" : "ranges",
                $"The ranges hold {size} addresses; a network may have at most {options.MaxRangeAddresses} (Networking:MaxRangeAddresses). Give a smaller range, or split it into several networks.", unprocessable: true);

        var gateway = Address(r.Gateway, "gateway");
        if (gateway is null && driver == "user" && subnet.Prefix <= 30) gateway = subnet.Network + 2;
        if (gateway is null && driver == "bridge")
            throw new InvalidInputException("gateway", $"A bridge network needs 'gateway': the bridge's own address in {subnet}, which guests use as router, DHCP server and guest API address.", unprocessable: true);
        if (gateway is { } gw && !subnet.IsHostAddress(gw))
            throw new InvalidInputException("gateway", $"'gateway' = {Ipv4.Format(gw)} is outside the network {subnet} (or is its network or broadcast address); give a host address inside it ({Ipv4.Format(subnet.HostRange.First)}-{Ipv4.Format(subnet.HostRange.Last)}).", unprocessable: true);
        var dns = new List<uint>();
        foreach (var d in r.Dns ?? []) dns.Add(Address(d, "dns")!.Value);
        if (r.Dns is null && driver == "user" && subnet.Prefix <= 29) dns.Add(subnet.Network + 3);
        if (r.Mtu is { } mtu) Validate.Range(mtu, "mtu", 576, 9000);

        string? uplink = null;
        if (r.VlanId is { } vlan)
        {
            Validate.Range(vlan, "vlanId", 1, 4094);
            if (driver != "bridge") throw new InvalidInputException("vlanId", "'vlanId' applies to bridge networks only; set 'driver' to bridge.", unprocessable: true);
            uplink = r.Uplink ?? (options.VlanUplink.Length > 0 ? options.VlanUplink : null)
                ?? throw new InvalidInputException("uplink", "A VLAN network needs the host interface that carries the VLAN: give 'uplink' (such as eth1) or set Networking:VlanUplink.", unprocessable: true);
        }
        else if (r.Uplink is not null)
        {
            throw new InvalidInputException("uplink", "'uplink' is used with 'vlanId' only (the VLAN's host interface); to bridge a host interface directly, add it to the bridge yourself.", unprocessable: true);
        }
        if (uplink is not null && !InterfaceName().IsMatch(uplink))
            throw new InvalidInputException("uplink", $"'uplink' = '{Validate.Trim(uplink)}' is not an interface name (1-15 letters, digits, '.', '_' or '-').");

        var groupNames = r.SecurityGroups ?? ["default"];
        var held = new List<(uint, string)>();
        if (gateway is { } g && ranges.Any(x => x.Contains(g))) held.Add((g, "gateway"));
        var reserved = dns.ToList();
        // QEMU user-mode networking answers DNS on an address of its own (the first DNS inside the subnet, else .3): never lease it.
        if (driver == "user" && !dns.Any(subnet.IsHostAddress) && subnet.Prefix <= 29) reserved.Add(subnet.Network + 3);
        foreach (var d in reserved.Distinct().Where(d => ranges.Any(x => x.Contains(d)) && d != gateway)) held.Add((d, "dns"));
        if (AddressRange.WhyUnusable(ranges, held) is { } noGuest) throw new InvalidInputException(rangeField, noGuest);

        if (await networking.Driver(driver).WhyUnusableAsync(subnet, CancellationToken.None) is { } unusable)
            throw new ConflictException(unusable + "; choose another subnet.");

        return await store.WriteAsync(async (c, tx) =>
        {
            if (await store.FindNetworkAsync(name, c, tx) is not null)
                throw new ConflictException($"A network named '{name}' already exists; choose another name.");
            foreach (var other in await store.ListNetworksAsync(c, tx))
                if (other.Subnet.Overlaps(subnet))
                    throw new ConflictException($"{subnet} overlaps network '{other.Name}' ({other.Subnet}); give addresses outside it, or use that network.");
            var groups = new List<long>();
            foreach (var groupName in groupNames)
            {
                var group = await store.FindGroupAsync(groupName, c, tx);
                if (group is null || !AccessRules.Can(caller, new Ownership(group.OwnerId, group.GroupId, new Permissions((int)group.Permissions)), Operation.Use))
                    throw new InvalidInputException("securityGroups", $"Unknown security group '{Validate.Trim(groupName)}'; create it with POST /api/v1/security-groups, or leave 'securityGroups' out for 'default'.", unprocessable: true);
                if (!groups.Contains(group.Id)) groups.Add(group.Id);
            }
            var permissions = caller.IsAdmin ? Permissions.Public : Permissions.Private;
            return await store.InsertNetworkAsync(c, tx, new NewNetwork(name, kind, driver, caller.UserId, caller.PrimaryGroupId, permissions.Bits, subnet,
                gateway is null ? null : Ipv4.Format(gateway.Value), dns.Select(Ipv4.Format).ToList(), r.Mtu, r.VlanId, uplink, ranges, held, groups));
        });
    }

    /// <summary>The request's ranges, validated: one subnet, no overlaps.</summary>
    static IReadOnlyList<AddressRange> ParseRanges(CreateNetworkRequest r)
    {
        var topLevel = r.Cidr ?? r.First ?? r.Last ?? r.Network ?? r.Mask;
        if (r.Ranges is not null && topLevel is not null)
            throw new InvalidInputException("ranges", "Give the range either at the top level (cidr, first, last, network, mask) or in 'ranges', not both.");
        var requests = r.Ranges ?? [new RangeRequest(r.Cidr, r.First, r.Last, r.Network, r.Mask)];
        if (requests.Count == 0) throw new InvalidInputException("ranges", "'ranges' is empty; give at least one range.");
        if (requests.Count > 64) throw new InvalidInputException("ranges", "'ranges' has more than 64 ranges.");
        var list = new List<AddressRange>();
        try
        {
            for (var i = 0; i < requests.Count; i++)
            {
                var q = requests[i];
                list.Add(AddressRange.Parse(q.Cidr, q.Network, q.Mask, q.First, q.Last, r.Ranges is null ? "" : $"ranges[{i}]."));
            }
        }
        catch (AddressRangeException e)
        {
            throw new InvalidInputException(e.Field, e.Message);
        }
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i].Subnet != list[0].Subnet)
                throw new InvalidInputException($"ranges[{i}]", $"Range {list[i]} is in {list[i].Subnet} but the first range is in {list[0].Subnet}; the ranges of one network share one subnet (create another network for {list[i].Subnet}).");
            for (var j = 0; j < i; j++)
                if (list[i].Overlaps(list[j]))
                    throw new InvalidInputException($"ranges[{i}]", $"Range {list[i]} overlaps range {list[j]}; give ranges that do not share addresses.");
        }
        return list.OrderBy(x => x.First).ToList();
    }

    static uint? Address(string? text, string field)
    {
        if (text is null) return null;
        return Ipv4.TryParse(text.Trim(), out var a) ? a : throw new InvalidInputException(field, $"'{field}' = '{Validate.Trim(text)}' is not an IPv4 address like 10.1.0.1.");
    }

    public async Task DeleteAsync(NetworkRow network, Caller caller)
    {
        if (string.Equals(network.Name, InstanceNetworking.DefaultNetworkName, StringComparison.OrdinalIgnoreCase))
            throw new ConflictException($"'{network.Name}' is the default network (instances that name no network use it) and cannot be deleted.");
        RequireManage(network, caller);
        await store.WriteAsync(async (c, tx) =>
        {
            var users = await store.InstancesUsingAsync(c, tx, network.Id);
            if (users.Count > 0)
                throw new ConflictException($"Network '{network.Name}' still has leases in use by instance(s) {string.Join(", ", users)}; terminate them first.");
            await store.DeleteNetworkAsync(c, tx, network.Id);
        });
        await networking.TearDownAsync(network, CancellationToken.None);
    }

    /// <summary>Reserves an address so that no VM gets it.</summary>
    public async Task<LeaseRow> HoldAsync(NetworkRow network, string ip, Caller caller)
    {
        RequireManage(network, caller);
        var address = await InRangeAsync(network, ip);
        var (lease, held) = await store.HoldAsync(network.Id, address, "held by " + caller.Name);
        if (held) return lease;
        throw new ConflictException(lease.State == "used"
            ? $"{ip} is in use by instance {lease.InstanceId} (NIC {lease.Nic}); it cannot be held until that instance ends."
            : $"{ip} is already held ({lease.Reason}); nothing to do.");
    }

    /// <summary>Gives a held address back to the pool.</summary>
    public async Task ReleaseAsync(NetworkRow network, string ip, Caller caller)
    {
        RequireManage(network, caller);
        var address = await InRangeAsync(network, ip);
        var (lease, released) = await store.ReleaseHeldAsync(network.Id, address);
        if (released) return;
        if (lease is null)
            throw new ConflictException($"{ip} is not held (it is free); only held addresses can be released.");
        if (lease.State == "used")
            throw new ConflictException($"{ip} is in use by instance {lease.InstanceId} (NIC {lease.Nic}), not held; its lease ends with the instance.");
        throw new ConflictException($"{ip} is the network's {(lease.Reason == "gateway" ? "gateway" : "DNS server")} address; it stays reserved.");
    }

    async Task<uint> InRangeAsync(NetworkRow network, string ip)
    {
        if (!Ipv4.TryParse(ip?.Trim(), out var address))
            throw new InvalidInputException("ip", $"'ip' = '{Validate.Trim(ip ?? "")}' is not an IPv4 address like 10.1.0.5.");
        var ranges = await store.RangesAsync(network.Id);
        if (!ranges.Any(r => address >= r.First && address <= r.Last))
            throw new InvalidInputException("ip", $"{ip} is not in an address range of network '{network.Name}' ({string.Join(", ", ranges.Select(r => new AddressRange(network.Subnet, (uint)r.First, (uint)r.Last)))}).", unprocessable: true);
        return address;
    }

    static void RequireManage(NetworkRow network, Caller caller)
    {
        if (!AccessRules.Can(caller, InstanceNetworking.OwnershipOf(network), Operation.Manage))
            throw new ForbiddenException($"Only administrators and the owner of network '{network.Name}' may change it.");
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,15}$")]
    private static partial Regex InterfaceName();
}
