using System.Globalization;
using StratusLab.Server.Modules.Networking.Ranges;

namespace StratusLab.Server.Modules.Networking.Firewall;

/// <summary>
/// One security group rule (pure). <see cref="Direction"/> inbound (to the VM; <see cref="Cidr"/> is the source) or outbound
/// (from the VM; <see cref="Cidr"/> is the destination); <see cref="Protocol"/> all, tcp, udp or icmp; ports for tcp and udp;
/// <see cref="Action"/> accept or drop.
/// </summary>
internal sealed record SecurityRule(string Direction, string Action, string Protocol, int? PortFirst, int? PortLast, string? Cidr)
{
    public static readonly string[] Directions = ["inbound", "outbound"];
    public static readonly string[] Actions = ["accept", "drop"];
    public static readonly string[] Protocols = ["all", "tcp", "udp", "icmp"];

    /// <summary>Validates the parts of a rule as users write them; throws <see cref="AddressRangeException"/> naming the field.</summary>
    public static SecurityRule Parse(string? direction, string? protocol, string? ports, string? cidr, string? action)
    {
        var d = (direction ?? "").Trim().ToLowerInvariant() switch
        {
            "inbound" or "in" or "ingress" => "inbound",
            "outbound" or "out" or "egress" => "outbound",
            _ => throw new AddressRangeException("direction", $"'direction' = '{direction}' is not accepted; accepted values: inbound, outbound."),
        };
        var p = (protocol ?? "all").Trim().ToLowerInvariant();
        if (!Protocols.Contains(p)) throw new AddressRangeException("protocol", $"'protocol' = '{protocol}' is not accepted; accepted values: {string.Join(", ", Protocols)}.");
        var a = (action ?? "accept").Trim().ToLowerInvariant();
        if (!Actions.Contains(a)) throw new AddressRangeException("action", $"'action' = '{action}' is not accepted; accepted values: accept, drop.");
        int? first = null, last = null;
        if (!string.IsNullOrWhiteSpace(ports))
        {
            if (p is not ("tcp" or "udp"))
                throw new AddressRangeException("ports", $"'ports' applies to tcp and udp only; this rule's protocol is {p}.");
            var parts = ports.Split('-', ':');
            if (parts.Length > 2 || !parts.All(x => int.TryParse(x.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v is >= 1 and <= 65535))
                throw new AddressRangeException("ports", $"'ports' = '{ports}' is not accepted; give a port (22) or a range (1000-2000) within 1..65535.");
            first = int.Parse(parts[0].Trim(), CultureInfo.InvariantCulture);
            last = int.Parse(parts[^1].Trim(), CultureInfo.InvariantCulture);
            if (last < first) throw new AddressRangeException("ports", $"'ports' = '{ports}' ends before it starts; give the lower port first.");
        }
        string? c = null;
        if (!string.IsNullOrWhiteSpace(cidr))
        {
            var t = cidr.Trim();
            if (Ipv4.TryParse(t, out var single)) t = Ipv4.Format(single) + "/32";
            c = Subnet.Parse(t, "cidr").ToString();
        }
        return new SecurityRule(d, a, p, first, last, c);
    }

    public string PortsText => PortFirst is null ? "" : PortFirst == PortLast ? $"{PortFirst}" : $"{PortFirst}-{PortLast}";

    public override string ToString() =>
        $"{Direction} {Protocol}{(PortFirst is null ? "" : " " + PortsText)} {(Direction == "inbound" ? "from" : "to")} {Cidr ?? "anywhere"}: {Action}";
}
