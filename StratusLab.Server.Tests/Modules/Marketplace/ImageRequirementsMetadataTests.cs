using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

/// <summary>What an image needs (slterms:min-memory, min-cpu, min-disk, default-user, context-method, os) survives build, sign and verify.</summary>
public class ImageRequirementsMetadataTests
{
    const string Alice = "alice@example.org";

    [Test]
    public void Requirements_built_into_an_entry_come_back_from_its_signed_XML()
    {
        var draft = MetadataFactory.Draft(title: "cloud-init guest") with
        {
            Os = "debian", MinMemoryMiB = 512, MinCpu = 2, MinDiskGiB = 3, DefaultUser = "debian", ContextMethod = "nocloud",
        };

        var verified = MetadataFiles.Verify(MetadataFiles.Sign(MetadataFiles.Build(draft), MetadataFactory.Key(Alice), null, DateTimeOffset.UtcNow).Xml);

        Assert.That(ImageRequirements.Of(verified.Entry), Is.EqualTo(new ImageRequirements(512, 2, 3, "debian", "nocloud", "debian")));
    }

    [Test]
    public void Requirements_set_at_signing_replace_the_built_ones_and_are_checked()
    {
        var xml = MetadataFiles.Build(MetadataFactory.Draft() with { MinMemoryMiB = 128 });

        var signed = MetadataFiles.Sign(xml, MetadataFactory.Key(Alice), null, DateTimeOffset.UtcNow,
            terms: new Dictionary<string, string> { ["min-memory"] = "1024", ["default-user"] = "alma", ["os"] = "almalinux" });
        Assert.That(signed.Entry.MinMemoryMiB, Is.EqualTo(1024));
        Assert.That(signed.Entry.DefaultUser, Is.EqualTo("alma"));
        Assert.That(signed.Entry.Os, Is.EqualTo("almalinux"));

        var e = Assert.Throws<MetadataException>(() => MetadataFiles.Sign(xml, MetadataFactory.Key(Alice), null, DateTimeOffset.UtcNow,
            terms: new Dictionary<string, string> { ["min-memory"] = "lots" }))!;
        Assert.That(e.Message, Does.Contain("slterms:min-memory 'lots'"));
        e = Assert.Throws<MetadataException>(() => MetadataFiles.Sign(xml, MetadataFactory.Key(Alice), null, DateTimeOffset.UtcNow,
            terms: new Dictionary<string, string> { ["context-method"] = "floppy" }))!;
        Assert.That(e.Message, Does.Contain("opennebula, nocloud"));
    }
}
