using System.Globalization;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Networking;

/// <summary>The Networking section: PAT ports, range limits, bridge tools and the default network.</summary>
internal sealed class NetworkingOptions : IValidatedOptions
{
    public int PatPortFirst { get; set; } = 15000;
    public int PatPortLast { get; set; } = 17000;
    /// <summary>Whether simulated VMs without real media get PAT ports too (bookkeeping only); off, they hold none.</summary>
    public bool SimulatedPorts { get; set; }
    public string PatGuestPorts { get; set; } = "22,80";
    public string PatAddress { get; set; } = "127.0.0.1";
    public int MaxRangeAddresses { get; set; } = 65536;
    public int MaxNicsPerInstance { get; set; } = 8;
    public string DnsmasqBinary { get; set; } = "";
    public string VlanUplink { get; set; } = "";

    /// <summary>The front-end's VXLAN address toward SSH nodes; empty: the source address of this machine's route to each node.</summary>
    public string VxlanLocalAddress { get; set; } = "";

    /// <summary>The first VXLAN network identifier given to a bridge network that spans SSH nodes (then the next free).</summary>
    public int VxlanFirstVni { get; set; } = 4096;

    /// <summary>The MTU of the links between the front-end and the nodes; guests of a bridge network get it less VXLAN's 50 bytes once SSH nodes exist.</summary>
    public int VxlanUnderlayMtu { get; set; } = 1500;
    public int ReconcileIntervalSeconds { get; set; } = 60;

    /// <summary>
    /// Bridge networks whose guests may reach each other through the host: groups of network names separated by ';', the
    /// names of a group by ',' (such as "lab-a,lab-b; web,db,cache"). Every other pair of the server's networks is kept apart.
    /// </summary>
    public string LinkedNetworks { get; set; } = "";

    /// <summary>The groups of <see cref="LinkedNetworks"/>, each a list of distinct names (validated at start-up).</summary>
    public IReadOnlyList<IReadOnlyList<string>> LinkGroups => LinkedNetworks.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(g => (IReadOnlyList<string>)g.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.OrdinalIgnoreCase).ToList())
        .ToList();

    /// <summary>The names of the networks linked with <paramref name="network"/> (network names are case-insensitive).</summary>
    public IReadOnlyList<string> LinkedTo(string network) => LinkGroups
        .Where(g => g.Contains(network, StringComparer.OrdinalIgnoreCase))
        .SelectMany(g => g).Where(n => !string.Equals(n, network, StringComparison.OrdinalIgnoreCase))
        .Distinct(StringComparer.OrdinalIgnoreCase).ToList();
    public DefaultNetworkOptions DefaultNetwork { get; set; } = new();

    /// <summary>The guest ports every VM gets forwarded, parsed from <see cref="PatGuestPorts"/> (validated at start-up).</summary>
    public IReadOnlyList<int> GuestPorts => PatGuestPorts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToList();

    public IEnumerable<string> Problems()
    {
        var problems = new List<string>();
        static bool IsAddress(string text) => Ranges.Ipv4.TryParse(text, out _);
        if (PatPortFirst is < 1024 or > 65535) problems.Add($"Networking:PatPortFirst = {PatPortFirst} is out of range; accepted values: 1024..65535.");
        if (PatPortLast is < 1024 or > 65535) problems.Add($"Networking:PatPortLast = {PatPortLast} is out of range; accepted values: 1024..65535.");
        if (PatPortLast < PatPortFirst)
            problems.Add($"Networking:PatPortLast = {PatPortLast} is below Networking:PatPortFirst = {PatPortFirst}; accepted values: a last port >= the first.");
        var ports = PatGuestPorts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (ports.Any(p => !int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v is < 1 or > 65535) || ports.Distinct().Count() != ports.Length)
            problems.Add($"Networking:PatGuestPorts = '{PatGuestPorts}' is not accepted; accepted values: distinct guest ports 1..65535 separated by commas, such as 22,80 (empty: none).");
        if (!IsAddress(PatAddress))
            problems.Add($"Networking:PatAddress = '{PatAddress}' is not accepted; accepted values: an IPv4 address of this host (127.0.0.1 keeps PAT ports local; 0.0.0.0 opens them on every address).");
        if (MaxRangeAddresses is < 1 or > (1 << 24)) problems.Add($"Networking:MaxRangeAddresses = {MaxRangeAddresses} is out of range; accepted values: 1..16777216.");
        if (MaxNicsPerInstance is < 1 or > 16) problems.Add($"Networking:MaxNicsPerInstance = {MaxNicsPerInstance} is out of range; accepted values: 1..16.");
        if (ReconcileIntervalSeconds is < 5 or > 86_400) problems.Add($"Networking:ReconcileIntervalSeconds = {ReconcileIntervalSeconds} is out of range; accepted values: 5..86400.");
        if (VxlanLocalAddress.Length > 0 && !Ranges.Ipv4.TryParse(VxlanLocalAddress, out _))
            problems.Add($"Networking:VxlanLocalAddress = '{VxlanLocalAddress}' is not accepted; accepted values: empty (the route's source), or an IPv4 address of this machine.");
        if (VxlanFirstVni is < 1 or > 16_000_000)
            problems.Add($"Networking:VxlanFirstVni = {VxlanFirstVni} is not accepted; accepted values: 1..16000000 (VNIs are 24 bits).");
        if (VxlanUnderlayMtu is < 618 or > 65535)
            problems.Add($"Networking:VxlanUnderlayMtu = {VxlanUnderlayMtu} is not accepted; accepted values: 618..65535 (the guests get 50 bytes less, at least 568).");
        if (VlanUplink.Length > 0 && !System.Text.RegularExpressions.Regex.IsMatch(VlanUplink, "^[A-Za-z0-9_.-]{1,15}$"))
            problems.Add($"Networking:VlanUplink = '{VlanUplink}' is not accepted; accepted values: empty, or a network interface name such as eth1.");
        if (LinkGroups.Any(g => g.Count < 2 || g.Any(n => !System.Text.RegularExpressions.Regex.IsMatch(n, "^[A-Za-z][A-Za-z0-9._-]{0,62}$"))))
            problems.Add($"Networking:LinkedNetworks = '{LinkedNetworks}' is not accepted; accepted values: empty, or groups of two or more network names separated by ';', the names of a group by ',' (such as lab-a,lab-b;web,db).");
        var d = DefaultNetwork;
        if (d.Driver is not ("user" or "bridge")) problems.Add($"Networking:DefaultNetwork:Driver = '{d.Driver}' is not accepted; accepted values: user, bridge.");
        try
        {
            var (network, mask) = (d.Cidr.Split('/')[0], d.Cidr.Contains('/') ? d.Cidr.Split('/')[1] : "");
            if (Ranges.AddressRange.WhyUnusable([Ranges.AddressRange.FromNetworkMask(network, mask, null)], []) is { } unusable)
                problems.Add($"Networking:DefaultNetwork:Cidr = '{d.Cidr}' is not accepted: {unusable}");
            var range = Ranges.AddressRange.FromNetworkMask(network, mask, d.First.Length == 0 ? null : d.First);
            if (!range.Subnet.IsHostAddress((Ranges.Ipv4.TryParse(d.Gateway, out var gateway) ? gateway : 0)))
                problems.Add($"Networking:DefaultNetwork:Gateway = '{d.Gateway}' is not accepted; accepted values: an address inside Networking:DefaultNetwork:Cidr ({range.Subnet}).");
            foreach (var dns in d.Dns.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                if (!IsAddress(dns)) problems.Add($"Networking:DefaultNetwork:Dns = '{d.Dns}' is not accepted; accepted values: IPv4 addresses separated by commas.");
        }
        catch (Ranges.AddressRangeException e)
        {
            problems.Add($"Networking:DefaultNetwork:{(e.Field == "first" ? "First" : "Cidr")} is not accepted: {e.Message} Accepted values: Cidr a network such as 10.0.2.0/24, First an address inside it or empty.");
        }
        return problems;
    }
}

/// <summary>Networking:DefaultNetwork: the network every user gets unless they ask for another.</summary>
internal sealed class DefaultNetworkOptions
{
    public string Driver { get; set; } = "user";
    public string Cidr { get; set; } = "10.0.2.0/24";
    public string Gateway { get; set; } = "10.0.2.2";
    public string Dns { get; set; } = "10.0.2.3";
    public string First { get; set; } = "10.0.2.15";
}
