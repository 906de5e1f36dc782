using System.Globalization;
using System.Text.Json;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Networking.Drivers;

/// <summary>A network interface as 'ip -j link show' lists it.</summary>
internal sealed record LinkInfo(string Name, string? Master);

internal sealed partial class BridgeNetworkDriver
{
    /// <summary>The bridge with the gateway address, the VLAN link on the uplink, forwarding, the network's NAT rules.</summary>
    async Task EnsureNetworkAsync(NetworkSpec network, CancellationToken ct)
    {
        await EnsureBridgeAsync(network, ct);
        await EnsureNetworkRulesAsync(network, ct);
    }

    /// <summary>The network's links and sysctls, not its rules.</summary>
    async Task EnsureBridgeAsync(NetworkSpec network, CancellationToken ct)
    {
        if (network.Gateway is null) throw new InvalidOperationException($"bridge network '{network.Name}' has no gateway address for its bridge");
        var bridge = BridgeName(network.Id);
        var links = await LinksAsync(ct);
        if (links.All(l => l.Name != bridge))
        {
            List<string> add = ["link", "add", "name", bridge];
            if (network.Mtu is { } mtu) add.AddRange(["mtu", mtu.ToString(CultureInfo.InvariantCulture)]);
            add.AddRange(["type", "bridge"]);
            await IpAsync(add, ct);
            logger.LogInformation("Network {Name}: bridge {Bridge} created with {Gateway}/{Prefix}", network.Name, bridge, network.Gateway, network.Subnet.Prefix);
        }
        await IpAsync(["addr", "replace", $"{network.Gateway}/{network.Subnet.Prefix}", "dev", bridge], ct);
        await IpAsync(["link", "set", "dev", bridge, "up"], ct);
        if (network.VlanId is { } vlan)
        {
            var link = VlanName(network.Id);
            var uplink = network.Uplink ?? networking.VlanUplink;
            if (links.All(l => l.Name != link))
                await IpAsync(["link", "add", "link", uplink, "name", link, "type", "vlan", "id", vlan.ToString(CultureInfo.InvariantCulture)], ct);
            await IpAsync(["link", "set", "dev", link, "master", bridge, "up"], ct);
        }
        // NAT needs forwarding; guests reach the guest API on the loopback through the gateway, which needs route_localnet.
        await runner.RunAsync(new ToolCommand("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", $"net.ipv4.conf.{bridge}.route_localnet=1"]) { Timeout = TimeSpan.FromSeconds(15) }, ct);
    }

    async Task EnsureTapAsync(NetworkSpec network, NicSpec nic, CancellationToken ct)
    {
        var tap = TapName(nic.InstanceId, nic.Index);
        var link = (await LinksAsync(ct)).FirstOrDefault(l => l.Name == tap);
        if (link is null) await IpAsync(["tuntap", "add", "dev", tap, "mode", "tap"], ct);
        List<string> set = ["link", "set", "dev", tap, "master", BridgeName(network.Id)];
        if (network.Mtu is { } mtu) set.AddRange(["mtu", mtu.ToString(CultureInfo.InvariantCulture)]);
        set.Add("up");
        await IpAsync(set, ct);
    }

    async Task DeleteLinkAsync(string name, CancellationToken ct)
    {
        if ((await LinksAsync(ct)).Any(l => l.Name == name)) await IpAsync(["link", "del", "dev", name], ct);
    }

    async Task<IReadOnlyList<LinkInfo>> LinksAsync(CancellationToken ct) =>
        ParseLinks((await runner.RunAsync(new ToolCommand("ip", ["-j", "link", "show"]) { Timeout = TimeSpan.FromSeconds(15) }, ct)).StandardOutput);

    Task<ToolResult> IpAsync(IReadOnlyList<string> args, CancellationToken ct) =>
        runner.RunAsync(new ToolCommand("ip", args) { Timeout = TimeSpan.FromSeconds(15) }, ct);

    public async Task<string?> WhyUnusableAsync(Subnet subnet, CancellationToken ct)
    {
        var routes = await runner.RunAsync(new ToolCommand("ip", ["-j", "-4", "route", "show"]) { Timeout = TimeSpan.FromSeconds(15) }, ct);
        return HostRouteOverlap(routes.StandardOutput, subnet) is { } route
            ? $"{subnet} overlaps the host's route to {route.Destination} on {route.Device}; a bridge for it would cut the host off that network"
            : null;
    }

    /// <summary>The first route of 'ip -j -4 route show' (not the default route, not our bridges) that overlaps the subnet (pure).</summary>
    public static (string Destination, string Device)? HostRouteOverlap(string json, Subnet subnet)
    {
        if (string.IsNullOrWhiteSpace(json)) return null;
        using var doc = JsonDocument.Parse(json);
        foreach (var route in doc.RootElement.EnumerateArray())
        {
            var dst = route.TryGetProperty("dst", out var d) ? d.GetString() ?? "" : "";
            var dev = route.TryGetProperty("dev", out var v) ? v.GetString() ?? "" : "";
            if (dst is "default" or "" || dev.StartsWith(BridgePrefix, StringComparison.Ordinal)) continue;
            var cidr = dst.Contains('/') ? dst : dst + "/32";
            var slash = cidr.IndexOf('/');
            if (!Ipv4.TryParse(cidr[..slash], out var address) || !int.TryParse(cidr[(slash + 1)..], out var prefix) || prefix is < 0 or > 32) continue;
            if (new Subnet(address & Ipv4.MaskOf(prefix), prefix).Overlaps(subnet)) return (dst, dev);
        }
        return null;
    }

    /// <summary>Names and bridge masters from 'ip -j link show' (pure).</summary>
    public static IReadOnlyList<LinkInfo> ParseLinks(string json)
    {
        if (string.IsNullOrWhiteSpace(json)) return [];
        using var doc = JsonDocument.Parse(json);
        var list = new List<LinkInfo>();
        foreach (var link in doc.RootElement.EnumerateArray())
        {
            if (!link.TryGetProperty("ifname", out var name)) continue;
            list.Add(new LinkInfo(name.GetString()!, link.TryGetProperty("master", out var master) ? master.GetString() : null));
        }
        return list;
    }
}
