using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;

namespace StratusLab.Server.Tests.Modules.Networking;

public class SecurityRuleTests
{
    [TestCase("inbound", null, null, null, null, "inbound all from anywhere: accept")]
    [TestCase("in", "TCP", "22", "10.0.0.0/8", "drop", "inbound tcp 22 from 10.0.0.0/8: drop")]
    [TestCase("outbound", "udp", "1000:2000", "192.0.2.7", null, "outbound udp 1000-2000 to 192.0.2.7/32: accept")]
    [TestCase("egress", "icmp", null, null, "accept", "outbound icmp to anywhere: accept")]
    public void Rules_are_read_as_users_write_them(string direction, string? protocol, string? ports, string? cidr, string? action, string expected) =>
        Assert.That(SecurityRule.Parse(direction, protocol, ports, cidr, action).ToString(), Is.EqualTo(expected));

    [TestCase("sideways", null, null, null, null, "direction")]
    [TestCase("inbound", "gre", null, null, null, "protocol")]
    [TestCase("inbound", "icmp", "22", null, null, "ports")]
    [TestCase("inbound", "tcp", "0", null, null, "ports")]
    [TestCase("inbound", "tcp", "2000-1000", null, null, "ports")]
    [TestCase("inbound", "tcp", "22,80", null, null, "ports")]
    [TestCase("inbound", "tcp", null, "10.0.0.1/8", null, "cidr")]
    [TestCase("inbound", "tcp", null, null, "reject", "action")]
    public void A_bad_rule_names_its_field(string direction, string? protocol, string? ports, string? cidr, string? action, string field) =>
        Assert.That(() => SecurityRule.Parse(direction, protocol, ports, cidr, action), Throws.InstanceOf<AddressRangeException>().With.Property("Field").EqualTo(field));
}
