using System.Globalization;
using System.Text.RegularExpressions;

namespace StratusLab.Server.Modules.Networking.Ranges;

/// <summary>IPv4 addresses as 32-bit numbers: strict dotted-quad parsing and formatting (pure).</summary>
internal static partial class Ipv4
{
    /// <summary>Parses "a.b.c.d" only: no shorthand forms like "10.1" or "0x0a000001" that the system parser accepts.</summary>
    public static bool TryParse(string? text, out uint address)
    {
        address = 0;
        if (text is null || !DottedQuad().IsMatch(text)) return false;
        foreach (var part in text.Split('.'))
        {
            if (part.Length > 1 && part[0] == '0') return false;
            var octet = int.Parse(part, CultureInfo.InvariantCulture);
            if (octet > 255) return false;
            address = (address << 8) | (uint)octet;
        }
        return true;
    }

    public static string Format(uint address) =>
        string.Create(CultureInfo.InvariantCulture, $"{address >> 24}.{(address >> 16) & 0xff}.{(address >> 8) & 0xff}.{address & 0xff}");

    /// <summary>The netmask of a prefix length: 24 → 0xffffff00.</summary>
    public static uint MaskOf(int prefix) => prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);

    /// <summary>Parses a netmask given as "255.255.255.0", "24" or "/24"; false when it is not a contiguous mask.</summary>
    public static bool TryParseMask(string? text, out int prefix)
    {
        prefix = -1;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var t = text.Trim().TrimStart('/');
        if (t.All(char.IsAsciiDigit) && t.Length <= 2)
        {
            prefix = int.Parse(t, CultureInfo.InvariantCulture);
            return prefix <= 32;
        }
        if (!TryParse(t, out var mask)) return false;
        var ones = System.Numerics.BitOperations.PopCount(mask);
        if (MaskOf(ones) != mask) return false;
        prefix = ones;
        return true;
    }

    [GeneratedRegex(@"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")]
    private static partial Regex DottedQuad();
}

/// <summary>An IPv4 subnet: network address and prefix length.</summary>
internal sealed record Subnet(uint Network, int Prefix)
{
    public uint Mask => Ipv4.MaskOf(Prefix);
    public uint Broadcast => Network | ~Mask;
    public long Size => 1L << (32 - Prefix);
    public string MaskText => Ipv4.Format(Mask);

    public bool Contains(uint address) => (address & Mask) == Network;

    public bool Overlaps(Subnet other) => Contains(other.Network) || other.Contains(Network);

    /// <summary>The network and broadcast addresses cannot be given to a host, except in /31 and /32.</summary>
    public bool IsHostAddress(uint address) => Contains(address) && (Prefix >= 31 || (address != Network && address != Broadcast));

    /// <summary>The first and last addresses hosts may use.</summary>
    public (uint First, uint Last) HostRange => Prefix >= 31 ? (Network, Broadcast) : (Network + 1, Broadcast - 1);

    /// <summary>The smallest subnet holding both addresses.</summary>
    public static Subnet Enclosing(uint a, uint b)
    {
        var prefix = System.Numerics.BitOperations.LeadingZeroCount(a ^ b);
        return new Subnet(a & Ipv4.MaskOf(prefix), prefix);
    }

    /// <summary>Parses "10.1.0.0/24"; host bits must be zero.</summary>
    public static Subnet Parse(string text, string field)
    {
        var slash = text.IndexOf('/');
        if (slash <= 0 || !Ipv4.TryParse(text[..slash], out var address) || !int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) || prefix > 32)
            throw new AddressRangeException(field, $"'{field}' = '{Trim(text)}' is not an IPv4 network in CIDR notation like 10.1.0.0/24.");
        var subnet = new Subnet(address & Ipv4.MaskOf(prefix), prefix);
        if (subnet.Network != address)
            throw new AddressRangeException(field, $"'{field}' = '{text}' has host bits set; the network is {subnet}.");
        return subnet;
    }

    public override string ToString() => $"{Ipv4.Format(Network)}/{Prefix}";

    /// <summary>Address blocks no NIC can use, each with why (RFC 1122, 3927, 5771, 1112, 919), most specific first.</summary>
    static readonly (Subnet Block, string Why)[] NotUnicast =
    [
        (new(0x00000000, 8), "'this network' addresses (0.0.0.0/8), which a host uses only as a source while it has no address yet"),
        (new(0x7f000000, 8), "loopback addresses (127.0.0.0/8), which never leave a host"),
        (new(0xa9fe0000, 16), "link-local addresses (169.254.0.0/16), which hosts pick for themselves and routers never forward"),
        (new(0xe0000000, 4), "multicast addresses (224.0.0.0/4), which name groups of receivers, not one NIC"),
        (new(0xffffffff, 32), "the limited broadcast address 255.255.255.255, which means every host of the link"),
        (new(0xf0000000, 4), "reserved class E addresses (240.0.0.0/4), which hosts and routers refuse to use"),
    ];

    /// <summary>Why guests cannot have addresses of this subnet (it overlaps a non-unicast block), or null when they can (pure).</summary>
    public string? WhyNotUnicast()
    {
        foreach (var (block, why) in NotUnicast)
            if (Overlaps(block)) return block.Contains(Network) && Prefix >= block.Prefix ? $"{this} lies in {why}" : $"{this} includes {why}";
        return null;
    }

    internal static string Trim(string value) => value.Length > 40 ? value[..40] + "..." : value;
}

/// <summary>An input that is not a valid address, mask or range; <see cref="Field"/> names it.</summary>
internal sealed class AddressRangeException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
