using StratusLab.Server.Modules.Scheduling;
using StratusLab.Server.Modules.Scheduling.Expressions;

namespace StratusLab.Server.Tests.Modules.Scheduling;

public class PlacementTests
{
    static HostState H(string name, int vms = 0, long freeCpu = 8, double load = 0, bool enabled = true, string driver = "simulated") =>
        new(name, driver, enabled, 8, 8192, 8 - freeCpu, vms * 512, vms, load, 0);

    static PlacementRequest Request(string policy, string? requirements = null, long cpu = 1, long memory = 512) =>
        new(1, cpu, memory, requirements is null ? null : Expr.Parse(requirements, HostState.AttributeNames), requirements, Policy.Parse(policy));

    [TestCase("packing", "b")]
    [TestCase("striping", "c")]
    [TestCase("load-aware", "a")]
    [TestCase("rank:FREE_CPU", "c")]
    [TestCase("rank:- (RUNNING_VMS * 50 + FREE_CPU)", "c")]
    [TestCase("rank:RUNNING_VMS * 50 + FREE_CPU", "b")]
    public void Each_policy_chooses_its_host(string policy, string expected)
    {
        HostState[] hosts = [H("a", vms: 1, freeCpu: 6, load: 5), H("b", vms: 3, freeCpu: 4, load: 90), H("c", vms: 0, freeCpu: 8, load: 40)];
        Assert.That(Placement.Choose(Request(policy), hosts).Host, Is.EqualTo(expected));
    }

    [Test]
    public void Ties_go_to_the_first_host_by_name() =>
        Assert.That(Placement.Choose(Request("packing"), [H("n2"), H("n1"), H("n3")]).Host, Is.EqualTo("n1"));

    [Test]
    public void Requirements_exclude_hosts_and_say_so()
    {
        var decision = Placement.Choose(Request("packing", "HYPERVISOR = \"qemu\""), [H("a"), H("b", driver: "qemu")]);
        Assert.That(decision.Host, Is.EqualTo("b"));
        var none = Placement.Choose(Request("packing", "FREE_MEMORY > 100000"), [H("a")]);
        Assert.That(none.Host, Is.Null);
        Assert.That(none.Message, Is.EqualTo("a: requirement FREE_MEMORY > 100000 is false"));
    }

    [Test]
    public void Every_rejected_host_is_named_with_the_reason()
    {
        var decision = Placement.Choose(Request("packing", cpu: 4, memory: 2048),
            [H("host-1", freeCpu: 2), H("host-2", vms: 14), H("host-3", enabled: false)]);
        Assert.That(decision.Host, Is.Null);
        Assert.That(decision.Message, Is.EqualTo("host-1: needs 4 CPU, 2 free; host-2: needs 2048 MiB, 1024 free; host-3: disabled"));
    }

    [TestCase("spread")]
    [TestCase("rank:")]
    [TestCase("rank:FOO")]
    public void Unknown_policies_are_refused(string policy) =>
        Assert.That(() => Policy.Parse(policy), Throws.InstanceOf<ArgumentException>().Or.InstanceOf<ExpressionException>());
}
