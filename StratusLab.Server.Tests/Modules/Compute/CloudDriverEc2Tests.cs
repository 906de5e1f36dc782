using StratusLab.Server.Modules.Compute;
using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>The EC2 peer driver's pure choices: which of the peer's types an instance gets, and its launch's client token.</summary>
public class CloudDriverEc2Tests
{
    static readonly (string, long, long)[] Types =
    [
        ("m1.large", 2, 6144), ("t1.tiny", 1, 128), ("t1.micro", 1, 512), ("m1.small", 1, 1536), ("c1.medium", 2, 1536), ("m1.xlarge", 4, 8192),
    ];

    [TestCase(null, 1, 512, "t1.micro")]
    [TestCase(null, 1, 100, "t1.tiny")]
    [TestCase(null, 2, 1024, "c1.medium")]
    [TestCase(null, 2, 2048, "m1.large")]
    [TestCase("m1.small", 1, 512, "m1.small")]
    [TestCase("M1.SMALL", 1, 512, "m1.small")]
    [TestCase("t1.tiny", 1, 512, "t1.micro")]
    [TestCase("custom", 1, 1000, "m1.small")]
    [TestCase(null, 8, 512, null)]
    [TestCase(null, 1, 16384, null)]
    public void The_instance_gets_its_own_type_when_it_fits_else_the_peers_smallest_that_holds_it(string? wanted, long cpu, long memory, string? expected) =>
        Assert.That(CloudDriver.PickInstanceType(Types, wanted, cpu, memory), Is.EqualTo(expected));

    [Test]
    public void A_launch_keeps_its_client_token_across_retries_and_a_new_launch_after_the_remote_instance_is_gone_gets_a_new_one()
    {
        var created = DateTimeOffset.Parse("2026-11-29T13:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var first = new InstanceRow { Id = 7, CreatedAt = created };
        var token = CloudDriver.ClientToken(first);
        Assert.That(CloudDriver.ClientToken(new InstanceRow { Id = 7, CreatedAt = created }), Is.EqualTo(token), "a retry sends the same token");
        Assert.That(CloudDriver.ClientToken(new InstanceRow { Id = 8, CreatedAt = created }), Is.Not.EqualTo(token), "another instance, another token");
        Assert.That(CloudDriver.ClientToken(new InstanceRow { Id = 7, CreatedAt = created.AddSeconds(1) }), Is.Not.EqualTo(token),
            "an instance of the same id in another server (or after a reset) differs by its creation time");
        var after = CloudDriver.ClientToken(new InstanceRow { Id = 7, CreatedAt = created, RemoteId = "i-0123456789abcdef0" });
        Assert.That(after, Is.Not.EqualTo(token), "a launch after the remote instance is gone is a new launch");
        Assert.That(after.Length, Is.LessThanOrEqualTo(64), "EC2 client tokens are at most 64 characters");
    }
}
