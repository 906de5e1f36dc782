using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>How leases become QEMU NICs (BuildArguments is pure).</summary>
public class NicArgumentsTests
{
    static VmSpec Spec(params VmNic[] nics) => new(42, "web", "/data/instances/42", 1, 128, [], null, nics, []);

    static string Line(VmSpec spec) => string.Join(' ', QemuDriver.BuildArguments(spec, "tcg", QemuPaths.For(spec.Directory)));

    [Test]
    public void A_user_mode_nic_gets_its_lease_as_slirps_dhcp_address_and_forwards_to_it()
    {
        var nic = new VmNic("02:00:0a:00:02:11", [new PortForward(22, "127.0.0.1", 15000), new PortForward(80, "127.0.0.1", 15001)])
        {
            Cidr = "10.0.2.0/24", Host = "10.0.2.2", Dns = "10.0.2.3", GuestIp = "10.0.2.17",
        };
        Assert.That(Line(Spec(nic)), Does.Contain(
            "-netdev user,id=net0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,dhcpstart=10.0.2.17," +
            "hostfwd=tcp:127.0.0.1:15000-10.0.2.17:22,hostfwd=tcp:127.0.0.1:15001-10.0.2.17:80 " +
            "-device virtio-net-pci,netdev=net0,mac=02:00:0a:00:02:11"));
    }

    [Test]
    public void A_bridge_nic_opens_the_tap_the_driver_made_and_sets_the_mtu()
    {
        var nic = new VmNic("02:00:0a:4d:00:05", []) { Tap = "sltap-42-0", Mtu = 1400 };
        Assert.That(Line(Spec(nic)), Does.Contain(
            "-netdev tap,id=net0,ifname=sltap-42-0,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=02:00:0a:4d:00:05,host_mtu=1400"));
    }

    [TestCase(1)]
    [TestCase(3)]
    public void Several_nics_come_in_order_with_their_own_netdev(int count)
    {
        var nics = Enumerable.Range(0, count).Select(i => new VmNic($"02:00:0a:00:00:{i + 1:x2}", []) { Tap = $"sltap-42-{i}" }).ToArray();
        var line = Line(Spec(nics));
        for (var i = 0; i < count; i++)
            Assert.That(line, Does.Contain($"-netdev tap,id=net{i},ifname=sltap-42-{i},script=no,downscript=no -device virtio-net-pci,netdev=net{i},mac=02:00:0a:00:00:{i + 1:x2}"));
        Assert.That(line, Does.Not.Contain($"id=net{count},"));
    }

    [Test]
    public void A_nic_without_a_lease_layout_keeps_qemus_defaults()
    {
        var nic = new VmNic("52:54:00:00:00:2a", [new PortForward(22, "127.0.0.1", 15000)]);
        Assert.That(Line(Spec(nic)), Does.Contain("-netdev user,id=net0,hostfwd=tcp:127.0.0.1:15000-:22 -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:2a"));
    }
}
