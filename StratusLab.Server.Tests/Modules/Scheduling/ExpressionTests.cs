using StratusLab.Server.Modules.Scheduling;
using StratusLab.Server.Modules.Scheduling.Expressions;

namespace StratusLab.Server.Tests.Modules.Scheduling;

public class ExpressionTests
{
    static readonly HostState Host = new("node-3", "qemu", true, Cpus: 8, MemoryMiB: 8192, AllocatedCpus: 2, AllocatedMemoryMiB: 4096, RunningVms: 3, CpuUsage: 37.5, MemoryUsedMiB: 5000);

    static Value Eval(string text) => Expr.Parse(text, HostState.AttributeNames).Evaluate(Host.Attributes());

    [TestCase("FREE_CPU", 6)]
    [TestCase("FREE_MEMORY", 4096)]
    [TestCase("- (RUNNING_VMS * 50 + FREE_CPU)", -156)]
    [TestCase("RUNNING_VMS * 50 + FREE_CPU / 2", 153)]
    [TestCase("2 * (3 + 4) - 1", 13)]
    [TestCase("-CPU_USAGE", -37.5)]
    [TestCase("FREE_MEMORY > 2048 & HYPERVISOR = \"qemu\"", 1)]
    [TestCase("FREE_MEMORY > 4096 & HYPERVISOR = \"qemu\"", 0)]
    [TestCase("FREE_MEMORY > 4096 | HYPERVISOR = \"qemu\"", 1)]
    [TestCase("HOSTNAME = \"node*\"", 1)]
    [TestCase("HOSTNAME = \"other*\"", 0)]
    [TestCase("HYPERVISOR != \"simulated\"", 1)]
    [TestCase("!(RUNNING_VMS >= 3)", 0)]
    [TestCase("free_cpu <= 6 && total_cpu = 8", 1)]
    [TestCase("FREE_CPU / 0", 0)]
    public void Expressions_evaluate_over_host_attributes(string text, double expected) =>
        Assert.That(Eval(text).Number, Is.EqualTo(expected));

    [TestCase("", 0, "empty")]
    [TestCase("FREE_CPU >", 10, "ends too early")]
    [TestCase("FREE_CPUS > 1", 0, "unknown attribute 'FREE_CPUS'")]
    [TestCase("(FREE_CPU > 1", 13, "is not closed")]
    [TestCase("FREE_CPU > 1)", 12, "unexpected ')'")]
    [TestCase("HYPERVISOR = \"qemu", 13, "string is not closed")]
    [TestCase("FREE_CPU == 1", 10, "unexpected '='")]
    [TestCase("FREE_CPU > 1; rm -rf /", 12, "unexpected ';'")]
    [TestCase("1.2.3", 0, "not a number")]
    public void Syntax_errors_point_at_their_column(string text, int position, string message)
    {
        var e = Assert.Throws<ExpressionException>(() => Expr.Parse(text, HostState.AttributeNames));
        Assert.That(e!.Position, Is.EqualTo(position));
        Assert.That(e.Message, Does.Contain(message));
    }
}
