namespace StratusLab.Server.Modules.Networking.Ranges;

/// <summary>A range of addresses a network gives out: First..Last (inclusive), inside one subnet.</summary>
internal sealed record AddressRange(Subnet Subnet, uint First, uint Last)
{
    public long Size => (long)Last - First + 1;

    public bool Contains(uint address) => address >= First && address <= Last;

    public bool Overlaps(AddressRange other) => First <= other.Last && other.First <= Last;

    /// <summary>Every address of the range, in order (lazily: a /16 is not materialised).</summary>
    public IEnumerable<uint> Addresses()
    {
        for (var a = (long)First; a <= Last; a++) yield return (uint)a;
    }

    public override string ToString() => First == Last ? Ipv4.Format(First) : $"{Ipv4.Format(First)}-{Ipv4.Format(Last)}";

    /// <summary>"10.1.0.0/24": every host address of the subnet (network and broadcast excluded below /31).</summary>
    public static AddressRange FromCidr(string cidr, string field = "cidr")
    {
        var subnet = Subnet.Parse(cidr, field);
        var (first, last) = subnet.HostRange;
        return new AddressRange(subnet, first, last);
    }

    /// <summary>First and last address; the subnet is the mask when given, else the smallest one holding both.</summary>
    public static AddressRange FromFirstLast(string first, string last, string? mask, string prefix = "")
    {
        var a = Address(first, prefix + "first");
        var b = Address(last, prefix + "last");
        if (b < a) throw new AddressRangeException(prefix + "last", $"'{prefix}last' = {last} comes before '{prefix}first' = {first}; give the lower address as first.");
        Subnet subnet;
        if (mask is null)
        {
            subnet = Subnet.Enclosing(a, b);
            // Two addresses that straddle the smallest enclosing subnet's edges would be its network/broadcast address.
            if (subnet.Prefix < 31 && (!subnet.IsHostAddress(a) || !subnet.IsHostAddress(b)))
                subnet = new Subnet(a & Ipv4.MaskOf(subnet.Prefix - 1), subnet.Prefix - 1);
        }
        else
        {
            var p = Prefix(mask, prefix + "mask");
            subnet = new Subnet(a & Ipv4.MaskOf(p), p);
            if (!subnet.Contains(b))
                throw new AddressRangeException(prefix + "last", $"'{prefix}last' = {last} is not in the same /{p} network as '{prefix}first' = {first} ({subnet}).");
        }
        if (!subnet.IsHostAddress(a)) throw new AddressRangeException(prefix + "first", $"'{prefix}first' = {first} is the network or broadcast address of {subnet}; start at {Ipv4.Format(subnet.HostRange.First)} or later.");
        if (!subnet.IsHostAddress(b)) throw new AddressRangeException(prefix + "last", $"'{prefix}last' = {last} is the network or broadcast address of {subnet}; end at {Ipv4.Format(subnet.HostRange.Last)} or earlier.");
        return new AddressRange(subnet, a, b);
    }

    /// <summary>Network address and mask, from an optional first address to the last host address.</summary>
    public static AddressRange FromNetworkMask(string network, string mask, string? first, string prefix = "")
    {
        var n = Address(network, prefix + "network");
        var p = Prefix(mask, prefix + "mask");
        var subnet = new Subnet(n & Ipv4.MaskOf(p), p);
        if (subnet.Network != n)
            throw new AddressRangeException(prefix + "network", $"'{prefix}network' = {network} has host bits set for mask /{p}; the network is {Ipv4.Format(subnet.Network)}.");
        var (low, high) = subnet.HostRange;
        if (first is not null)
        {
            var f = Address(first, prefix + "first");
            if (!subnet.IsHostAddress(f))
                throw new AddressRangeException(prefix + "first", $"'{prefix}first' = {first} is not a host address of {subnet} ({Ipv4.Format(low)}-{Ipv4.Format(high)}).");
            low = f;
        }
        return new AddressRange(subnet, low, high);
    }

    /// <summary>
    /// A range from the fields users give: <c>cidr</c>, or <c>network</c> + <c>mask</c>, or <c>first</c> + <c>last</c>
    /// (with an optional <c>mask</c>); with cidr or network + mask, <c>first</c> and <c>last</c> narrow the range inside
    /// the subnet. <paramref name="prefix"/> prefixes field names in errors (e.g. "ranges[1].").
    /// </summary>
    public static AddressRange Parse(string? cidr, string? network, string? mask, string? first, string? last, string prefix = "")
    {
        AddressRange range;
        if (cidr is not null)
        {
            if (network is not null || mask is not null)
                throw new AddressRangeException(prefix + "cidr", $"Give either '{prefix}cidr' or '{prefix}network' + '{prefix}mask', not both.");
            range = FromCidr(cidr, prefix + "cidr");
        }
        else if (network is not null)
        {
            if (mask is null) throw new AddressRangeException(prefix + "mask", $"'{prefix}network' needs '{prefix}mask' (such as 255.255.255.0 or 24).");
            range = FromNetworkMask(network, mask, null, prefix);
        }
        else if (first is not null && last is not null)
        {
            return FromFirstLast(first, last, mask, prefix);
        }
        else
        {
            throw new AddressRangeException(prefix + "cidr",
                $"No address range given: give '{prefix}cidr' (10.1.0.0/24), or '{prefix}first' + '{prefix}last' (with an optional '{prefix}mask'), or '{prefix}network' + '{prefix}mask' (with an optional '{prefix}first').");
        }
        var subnet = range.Subnet;
        var low = range.First;
        var high = range.Last;
        if (first is not null)
        {
            low = Address(first, prefix + "first");
            if (!subnet.IsHostAddress(low))
                throw new AddressRangeException(prefix + "first", $"'{prefix}first' = {first} is not a host address of {subnet} ({range}).");
        }
        if (last is not null)
        {
            high = Address(last, prefix + "last");
            if (!subnet.IsHostAddress(high))
                throw new AddressRangeException(prefix + "last", $"'{prefix}last' = {last} is not a host address of {subnet} ({range}).");
        }
        if (high < low)
            throw new AddressRangeException(prefix + "last", $"'{prefix}last' = {Ipv4.Format(high)} comes before '{prefix}first' = {Ipv4.Format(low)}.");
        return new AddressRange(subnet, low, high);
    }

    /// <summary>
    /// Why a network with these ranges (one subnet) could never give a guest an address, or null (pure): the subnet is not
    /// unicast space, it is a /31 or /32 (no room for network, gateway, guest and broadcast addresses), or every address
    /// of the ranges is reserved (the gateway, a DNS server).
    /// </summary>
    public static string? WhyUnusable(IReadOnlyList<AddressRange> ranges, IReadOnlyList<(uint Address, string Role)> reserved)
    {
        var subnet = ranges[0].Subnet;
        if (subnet.WhyNotUnicast() is { } why)
            return $"{why}: no guest can have such an address (and dnsmasq cannot serve it). Give a unicast range, such as a private one in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16.";
        if (subnet.Prefix >= 31)
            return $"{subnet} is a /{subnet.Prefix}: it has no room for a network address, a gateway, a guest and a broadcast address. Give a /30 or larger, such as {new Subnet(subnet.Network & Ipv4.MaskOf(24), 24)}.";
        var taken = reserved.Where(r => ranges.Any(x => x.Contains(r.Address))).DistinctBy(r => r.Address).ToList();
        if (ranges.Sum(x => x.Size) <= taken.Count)
            return $"The range {string.Join(", ", ranges)} of {subnet} leaves no address for guests once {string.Join(" and ", taken.Select(t => $"the {(t.Role == "dns" ? "DNS server" : t.Role)} {Ipv4.Format(t.Address)}"))} {(taken.Count == 1 ? "is" : "are")} reserved. " +
                "Widen the range, or put the gateway and DNS servers outside it.";
        return null;
    }

    static uint Address(string? text, string field) =>
        Ipv4.TryParse(text, out var a) ? a : throw new AddressRangeException(field, $"'{field}' = '{Subnet.Trim(text ?? "")}' is not an IPv4 address like 10.1.0.5.");

    static int Prefix(string mask, string field) =>
        Ipv4.TryParseMask(mask, out var p) ? p : throw new AddressRangeException(field, $"'{field}' = '{Subnet.Trim(mask)}' is not a netmask; give 255.255.255.0 or a prefix length such as 24.");
}

/// <summary>MAC addresses of leases (pure).</summary>
internal static class Macs
{
    /// <summary>OpenNebula's rule: the locally administered prefix 02:00, then the four octets of the IPv4 address.</summary>
    public static string FromAddress(uint address) =>
        $"02:00:{address >> 24:x2}:{(address >> 16) & 0xff:x2}:{(address >> 8) & 0xff:x2}:{address & 0xff:x2}";

    /// <summary>Lower-case, colon-separated; null when it is not a unicast MAC address.</summary>
    public static string? Normalize(string text)
    {
        var t = text.Trim().ToLowerInvariant().Replace('-', ':');
        var parts = t.Split(':');
        if (parts.Length != 6 || parts.Any(p => p.Length != 2 || !p.All(char.IsAsciiHexDigit))) return null;
        // The least significant bit of the first octet marks multicast, which a NIC cannot have.
        return (Convert.ToByte(parts[0], 16) & 1) == 0 ? t : null;
    }
}
