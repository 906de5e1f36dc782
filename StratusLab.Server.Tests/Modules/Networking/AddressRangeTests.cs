using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Networking.Ranges;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>Address ranges in their three forms, iteration, masks and MAC derivation (pure).</summary>
public class AddressRangeTests
{
    static uint Ip(string text) => Ipv4.TryParse(text, out var a) ? a : throw new ArgumentException(text);

    [TestCase("10.0.0.0", true)]
    [TestCase("255.255.255.255", true)]
    [TestCase("10.1.2.3", true)]
    [TestCase("10.1", false)]
    [TestCase("10.1.2.256", false)]
    [TestCase("010.1.2.3", false)]
    [TestCase("0x0a.1.2.3", false)]
    [TestCase("10.1.2.3 ", false)]
    [TestCase("", false)]
    public void Addresses_are_dotted_quads_only(string text, bool valid) => Assert.That(Ipv4.TryParse(text, out _), Is.EqualTo(valid));

    [TestCase("255.255.255.0", 24)]
    [TestCase("24", 24)]
    [TestCase("/16", 16)]
    [TestCase("255.255.255.252", 30)]
    [TestCase("0.0.0.0", 0)]
    [TestCase("255.255.255.255", 32)]
    [TestCase("255.0.255.0", -1)]
    [TestCase("33", -1)]
    [TestCase("mask", -1)]
    public void Masks_are_dotted_or_prefix_lengths_and_contiguous(string text, int prefix)
    {
        var ok = Ipv4.TryParseMask(text, out var parsed);
        Assert.That(ok ? parsed : -1, Is.EqualTo(prefix));
    }

    [TestCase("10.1.0.0/24", "10.1.0.1", "10.1.0.254", 254)]
    [TestCase("10.1.0.0/16", "10.1.0.1", "10.1.255.254", 65534)]
    [TestCase("192.168.7.8/30", "192.168.7.9", "192.168.7.10", 2)]
    [TestCase("192.168.7.8/31", "192.168.7.8", "192.168.7.9", 2)]
    [TestCase("192.168.7.8/32", "192.168.7.8", "192.168.7.8", 1)]
    public void A_cidr_gives_every_host_address_of_the_subnet(string cidr, string first, string last, long size)
    {
        var range = AddressRange.FromCidr(cidr);
        Assert.That((Ipv4.Format(range.First), Ipv4.Format(range.Last), range.Size), Is.EqualTo((first, last, size)));
        Assert.That(range.Subnet.ToString(), Is.EqualTo(cidr));
    }

    [TestCase("10.1.0.5/24", "host bits set; the network is 10.1.0.0/24")]
    [TestCase("10.1.0.0", "CIDR notation")]
    [TestCase("10.1.0.0/33", "CIDR notation")]
    [TestCase("10.1.0/24", "CIDR notation")]
    public void A_bad_cidr_says_what_is_wrong(string cidr, string message) =>
        Assert.That(() => AddressRange.FromCidr(cidr), Throws.InstanceOf<AddressRangeException>().With.Message.Contain(message).And.Property("Field").EqualTo("cidr"));

    [TestCase("10.1.0.10", "10.1.0.50", null, "10.1.0.0/26")]
    [TestCase("10.1.0.10", "10.1.0.63", null, "10.1.0.0/25")]
    [TestCase("10.1.0.10", "10.1.0.50", "255.255.255.0", "10.1.0.0/24")]
    [TestCase("10.1.0.10", "10.1.0.10", "24", "10.1.0.0/24")]
    [TestCase("10.1.1.1", "10.1.2.200", "16", "10.1.0.0/16")]
    public void First_and_last_take_the_mask_or_the_smallest_subnet_holding_them(string first, string last, string? mask, string subnet)
    {
        var range = AddressRange.FromFirstLast(first, last, mask);
        Assert.That(range.Subnet.ToString(), Is.EqualTo(subnet));
        Assert.That((Ipv4.Format(range.First), Ipv4.Format(range.Last)), Is.EqualTo((first, last)));
    }

    [TestCase("10.1.0.50", "10.1.0.10", null, "last", "comes before")]
    [TestCase("10.1.0.10", "10.1.1.10", "24", "last", "not in the same /24")]
    [TestCase("10.1.0.0", "10.1.0.10", "24", "first", "network or broadcast")]
    [TestCase("10.1.0.10", "10.1.0.255", "24", "last", "network or broadcast")]
    [TestCase("10.1.0.x", "10.1.0.10", null, "first", "not an IPv4 address")]
    [TestCase("10.1.0.1", "10.1.0.10", "255.0.255.0", "mask", "not a netmask")]
    public void Bad_first_and_last_name_the_field(string first, string last, string? mask, string field, string message) =>
        Assert.That(() => AddressRange.FromFirstLast(first, last, mask),
            Throws.InstanceOf<AddressRangeException>().With.Message.Contain(message).And.Property("Field").EqualTo(field));

    [TestCase("10.2.0.0", "255.255.255.0", null, "10.2.0.1", "10.2.0.254")]
    [TestCase("10.2.0.0", "24", "10.2.0.100", "10.2.0.100", "10.2.0.254")]
    [TestCase("10.0.2.0", "24", "10.0.2.15", "10.0.2.15", "10.0.2.254")]
    public void Network_and_mask_run_from_the_first_address_to_the_last_host(string network, string mask, string? first, string from, string to)
    {
        var range = AddressRange.FromNetworkMask(network, mask, first);
        Assert.That((Ipv4.Format(range.First), Ipv4.Format(range.Last)), Is.EqualTo((from, to)));
    }

    [TestCase("10.2.0.1", "24", null, "network", "host bits set")]
    [TestCase("10.2.0.0", "24", "10.3.0.5", "first", "not a host address")]
    [TestCase("10.2.0.0", "24", "10.2.0.255", "first", "not a host address")]
    public void Bad_network_and_mask_name_the_field(string network, string mask, string? first, string field, string message) =>
        Assert.That(() => AddressRange.FromNetworkMask(network, mask, first),
            Throws.InstanceOf<AddressRangeException>().With.Message.Contain(message).And.Property("Field").EqualTo(field));

    [TestCase("10.3.0.0/24", null, null, "10.3.0.100", "10.3.0.199", "10.3.0.100-10.3.0.199")]
    [TestCase(null, "10.3.0.0", "24", "10.3.0.100", null, "10.3.0.100-10.3.0.254")]
    [TestCase(null, null, null, "10.3.0.5", "10.3.0.9", "10.3.0.5-10.3.0.9")]
    [TestCase("10.3.0.0/24", null, null, null, null, "10.3.0.1-10.3.0.254")]
    public void The_general_form_narrows_a_subnet_with_first_and_last(string? cidr, string? network, string? mask, string? first, string? last, string expected) =>
        Assert.That(AddressRange.Parse(cidr, network, mask, first, last).ToString(), Is.EqualTo(expected));

    [TestCase("10.3.0.0/24", "10.3.0.0", "24", null, null, "cidr")]
    [TestCase(null, null, null, "10.3.0.5", null, "cidr")]
    [TestCase("10.3.0.0/24", null, null, "10.4.0.1", null, "first")]
    [TestCase("10.3.0.0/24", null, null, "10.3.0.9", "10.3.0.5", "last")]
    public void The_general_form_refuses_mixed_or_missing_fields(string? cidr, string? network, string? mask, string? first, string? last, string field) =>
        Assert.That(() => AddressRange.Parse(cidr, network, mask, first, last, "ranges[2]."),
            Throws.InstanceOf<AddressRangeException>().With.Property("Field").EqualTo("ranges[2]." + field));

    [Test]
    public void Iteration_is_in_order_and_lazy_even_on_a_slash_8()
    {
        var small = AddressRange.FromFirstLast("10.4.0.254", "10.4.1.2", "16");
        Assert.That(small.Addresses().Select(Ipv4.Format), Is.EqualTo(new[] { "10.4.0.254", "10.4.0.255", "10.4.1.0", "10.4.1.1", "10.4.1.2" }));
        var huge = AddressRange.FromCidr("10.0.0.0/8");
        Assert.That(huge.Size, Is.EqualTo(16_777_214));
        Assert.That(huge.Addresses().Take(2).Select(Ipv4.Format), Is.EqualTo(new[] { "10.0.0.1", "10.0.0.2" }));
        Assert.That(AddressRange.FromCidr("255.255.255.254/31").Addresses().Count(), Is.EqualTo(2), "iteration stops at the top of the address space");
    }

    [TestCase("10.0.0.10", "10.0.0.20", "10.0.0.20", "10.0.0.30", true)]
    [TestCase("10.0.0.10", "10.0.0.20", "10.0.0.21", "10.0.0.30", false)]
    [TestCase("10.0.0.10", "10.0.0.20", "10.0.0.1", "10.0.0.10", true)]
    [TestCase("10.0.0.10", "10.0.0.20", "10.0.0.12", "10.0.0.13", true)]
    public void Ranges_overlap_when_they_share_an_address(string a1, string a2, string b1, string b2, bool overlap)
    {
        var a = AddressRange.FromFirstLast(a1, a2, "24");
        var b = AddressRange.FromFirstLast(b1, b2, "24");
        Assert.That((a.Overlaps(b), b.Overlaps(a)), Is.EqualTo((overlap, overlap)));
    }

    [TestCase("10.0.0.0/16", "10.0.200.0/24", true)]
    [TestCase("10.0.0.0/24", "10.0.1.0/24", false)]
    [TestCase("0.0.0.0/0", "192.168.0.0/16", true)]
    public void Subnets_overlap_when_one_holds_the_other(string a, string b, bool overlap) =>
        Assert.That(Subnet.Parse(a, "a").Overlaps(Subnet.Parse(b, "b")), Is.EqualTo(overlap));

    [TestCase("224.1.0.0/24", "224.1.0.0/24 lies in multicast addresses (224.0.0.0/4)")]
    [TestCase("239.255.255.0/24", "239.255.255.0/24 lies in multicast addresses (224.0.0.0/4)")]
    [TestCase("127.1.0.0/24", "127.1.0.0/24 lies in loopback addresses (127.0.0.0/8)")]
    [TestCase("0.0.0.0/24", "0.0.0.0/24 lies in 'this network' addresses (0.0.0.0/8)")]
    [TestCase("169.254.10.0/24", "169.254.10.0/24 lies in link-local addresses (169.254.0.0/16)")]
    [TestCase("255.255.255.255/32", "255.255.255.255/32 lies in the limited broadcast address 255.255.255.255")]
    [TestCase("255.255.255.0/24", "255.255.255.0/24 includes the limited broadcast address 255.255.255.255")]
    [TestCase("240.0.0.0/24", "240.0.0.0/24 lies in reserved class E addresses (240.0.0.0/4)")]
    [TestCase("250.10.0.0/16", "250.10.0.0/16 lies in reserved class E addresses (240.0.0.0/4)")]
    [TestCase("192.0.0.0/2", "192.0.0.0/2 includes multicast addresses (224.0.0.0/4)")]
    [TestCase("169.254.0.0/15", "169.254.0.0/15 includes link-local addresses (169.254.0.0/16)")]
    [TestCase("10.0.0.0/8", null)]
    [TestCase("1.0.0.0/24", null)]
    [TestCase("126.255.255.0/24", null)]
    [TestCase("128.0.0.0/24", null)]
    [TestCase("169.253.0.0/16", null)]
    [TestCase("223.255.255.0/24", null)]
    public void Only_unicast_space_can_hold_guests(string cidr, string? why) =>
        Assert.That(Subnet.Parse(cidr, "cidr").WhyNotUnicast(), why is null ? Is.Null : Does.StartWith(why));

    [TestCase("224.1.0.0/24", null, null, null, "224.1.0.0/24 lies in multicast addresses")]
    [TestCase("10.5.0.0/32", null, null, null, "10.5.0.0/32 is a /32: it has no room")]
    [TestCase("10.5.0.0/31", null, null, null, "10.5.0.0/31 is a /31: it has no room")]
    [TestCase("10.5.0.0/30", "10.5.0.1", null, null, null)]
    [TestCase("10.5.0.0/30", "10.5.0.1", "10.5.0.2", null, "The range 10.5.0.1-10.5.0.2 of 10.5.0.0/30 leaves no address for guests once the gateway 10.5.0.1 and the DNS server 10.5.0.2 are reserved")]
    [TestCase("10.5.0.0/24", "10.5.0.1", null, "10.5.0.1-10.5.0.1", "The range 10.5.0.1 of 10.5.0.0/24 leaves no address for guests once the gateway 10.5.0.1 is reserved")]
    [TestCase("10.5.0.0/24", "10.5.0.1", "10.5.0.1", "10.5.0.1-10.5.0.2", null)]
    [TestCase("10.5.0.0/24", "10.5.0.99", null, "10.5.0.10-10.5.0.10", null)]
    public void A_network_must_leave_a_guest_an_address(string cidr, string? gateway, string? dns, string? range, string? why)
    {
        var subnet = Subnet.Parse(cidr, "cidr");
        var ranges = new List<AddressRange>();
        if (range is null) ranges.Add(new AddressRange(subnet, subnet.HostRange.First, subnet.HostRange.Last));
        else ranges.Add(new AddressRange(subnet, Ip(range.Split('-')[0]), Ip(range.Split('-')[1])));
        var reserved = new List<(uint, string)>();
        if (gateway is not null) reserved.Add((Ip(gateway), "gateway"));
        if (dns is not null) reserved.Add((Ip(dns), "dns"));
        var found = AddressRange.WhyUnusable(ranges, reserved);
        Assert.That(found, why is null ? Is.Null : Does.StartWith(why));
        if (found is not null) Assert.That(found, Does.Contain("Give").Or.Contain("Widen"), "it says what to do");
    }

    [TestCase("10.0.0.5", "02:00:0a:00:00:05")]
    [TestCase("192.168.1.254", "02:00:c0:a8:01:fe")]
    [TestCase("0.0.0.0", "02:00:00:00:00:00")]
    [TestCase("255.255.255.255", "02:00:ff:ff:ff:ff")]
    public void A_lease_mac_is_02_00_then_the_address_as_OpenNebula_does(string ip, string mac) =>
        Assert.That(Macs.FromAddress(Ip(ip)), Is.EqualTo(mac));

    [TestCase("02:00:0A:00:00:05", "02:00:0a:00:00:05")]
    [TestCase("02-00-0a-00-00-05", "02:00:0a:00:00:05")]
    [TestCase("01:00:5e:00:00:01", null)]
    [TestCase("02:00:0a:00:00", null)]
    public void Macs_are_normalised_and_multicast_ones_refused(string text, string? expected) => Assert.That(Macs.Normalize(text), Is.EqualTo(expected));

    [TestCase(new long[] { 10, 20 }, 15, "15-20,10-14")]
    [TestCase(new long[] { 10, 20, 30, 40 }, 35, "35-40,10-20,30-34")]
    [TestCase(new long[] { 10, 20, 30, 40 }, 25, "30-40,10-20")]
    [TestCase(new long[] { 10, 20, 30, 40 }, 99, "10-20,30-40")]
    [TestCase(new long[] { 10, 20 }, 10, "10-20")]
    public void The_allocator_searches_from_its_cursor_and_wraps_around_once(long[] bounds, long cursor, string segments)
    {
        var ranges = Enumerable.Range(0, bounds.Length / 2).Select(i => new RangeRow(1, bounds[2 * i], bounds[2 * i + 1])).ToList();
        Assert.That(string.Join(",", NetworkingStore.Segments(ranges, cursor).Select(s => $"{s.From}-{s.To}")), Is.EqualTo(segments));
    }
}
