using StratusLab.Server.Modules.Scheduling;
using StratusLab.Server.Modules.Scheduling.Expressions;

namespace StratusLab.Server.Tests.Modules.Scheduling;

/// <summary>Peer clouds (driver cloud) in the pure placement choice: only by requirements naming them, or as burst targets.</summary>
public class PeerPlacementTests
{
    static HostState Local(long freeCpu = 8) => new("local", "qemu", true, 8, 8192, 8 - freeCpu, 0, 0, 0, 0);

    static HostState Peer(string name = "peer1", bool burst = false, string state = "OK") =>
        new(name, "cloud", true, 64, 65536, 0, 0, 0, 0, 0, state, state == "OK" ? null : "refused") { Burst = burst };

    static PlacementRequest Request(string? requirements = null) =>
        new(1, 1, 512, requirements is null ? null : Expr.Parse(requirements, HostState.AttributeNames), requirements, Policy.Parse("striping"));

    [Test]
    public void A_peer_is_not_used_while_a_local_host_has_room_even_as_a_burst_target() =>
        Assert.That(Placement.Choose(Request(), [Local(), Peer(burst: true)]).Host, Is.EqualTo("local"));

    [Test]
    public void A_full_site_bursts_to_a_burst_target_only()
    {
        Assert.That(Placement.Choose(Request(), [Local(freeCpu: 0), Peer("peer1"), Peer("peer2", burst: true)]).Host, Is.EqualTo("peer2"));
        var none = Placement.Choose(Request(), [Local(freeCpu: 0), Peer("peer1")]);
        Assert.That(none.Host, Is.Null);
        Assert.That(none.Message, Does.Contain("local: needs 1 CPU, 0 free").And.Contain("peer1: a peer cloud, used only when the requirements name it"));
    }

    [TestCase("NAME = \"peer1\"", "peer1")]
    [TestCase("HYPERVISOR = \"cloud\"", "peer1")]
    [TestCase("FREE_CPU > 4", "local")]
    public void Requirements_naming_a_peer_choose_it_over_a_local_host_with_room(string requirements, string expected) =>
        Assert.That(Placement.Choose(Request(requirements), [Local(), Peer()]).Host, Is.EqualTo(expected));

    [Test]
    public void A_peer_in_ERROR_takes_nothing_and_says_why()
    {
        var decision = Placement.Choose(Request("NAME = \"peer1\""), [Local(), Peer(state: "ERROR")]);
        Assert.That(decision.Host, Is.Null);
        Assert.That(decision.Message, Does.Contain("peer1: in state ERROR (refused)"));
        Assert.That(Placement.Choose(Request(), [Local(freeCpu: 0), Peer(burst: true, state: "ERROR")]).Host, Is.Null);
    }
}
