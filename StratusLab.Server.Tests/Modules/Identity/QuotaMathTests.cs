using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Tests.Modules.Identity;

public class QuotaMathTests
{
    static readonly ResourceAmount Limits = new(Vms: 2, Cpus: 4, MemoryMiB: 1024, StorageGiB: 10);

    [TestCase(0, 0, 0, 0, 1, 1, 512, 0, "")]
    [TestCase(1, 3, 512, 0, 1, 1, 512, 0, "")]
    [TestCase(2, 0, 0, 0, 1, 0, 0, 0, "vms")]
    [TestCase(0, 4, 0, 0, 1, 1, 0, 0, "cpus")]
    [TestCase(0, 0, 1000, 0, 0, 0, 25, 0, "memoryMiB")]
    [TestCase(0, 0, 0, 10, 0, 0, 0, 1, "storageGiB")]
    [TestCase(2, 4, 1024, 10, 1, 1, 1, 1, "vms,cpus,memoryMiB,storageGiB")]
    [TestCase(2, 4, 1024, 10, 0, 0, 0, 0, "")]
    public void Excesses_name_every_limit_a_request_would_break(long uv, long uc, long um, long us, long rv, long rc, long rm, long rs, string expected)
    {
        var excesses = QuotaMath.Excesses(Limits, new ResourceAmount(uv, uc, um, us), new ResourceAmount(rv, rc, rm, rs));
        Assert.That(string.Join(",", excesses.Select(e => e.Resource)), Is.EqualTo(expected));
    }

    [Test]
    public void Unlimited_never_overflows()
    {
        var unlimited = new ResourceAmount(-1, -1, -1, -1);
        Assert.That(QuotaMath.Excesses(unlimited, new ResourceAmount(1000, 1000, 1 << 30, 1 << 20), new ResourceAmount(1, 1, 1, 1)), Is.Empty);
    }

    [Test]
    public void An_excess_says_used_requested_and_limit()
    {
        var excess = QuotaMath.Excesses(Limits, new ResourceAmount(2, 0, 0, 0), new ResourceAmount(1, 0, 0, 0)).Single();
        Assert.That(excess.ToString(), Is.EqualTo("vms: 2 used + 1 requested > limit 2"));
    }

    [Test]
    public void Releasing_more_than_used_stops_at_zero()
    {
        var usage = QuotaMath.Release(new ResourceAmount(1, 2, 100, 3), new ResourceAmount(2, 1, 200, 3));
        Assert.That(usage, Is.EqualTo(new ResourceAmount(0, 1, 0, 0)));
    }
}
