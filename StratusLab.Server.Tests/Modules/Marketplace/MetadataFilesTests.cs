using System.Text;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

/// <summary>The offline contract the CLI uses: build, sign, verify and deprecate entries without a server.</summary>
public class MetadataFilesTests
{
    const string Alice = "alice@example.org";

    [Test]
    public void A_built_entry_signed_through_the_contract_verifies_with_the_signer_as_endorser()
    {
        var draft = MetadataFactory.Draft(title: "contract round trip");
        var created = MetadataFactory.Second(DateTimeOffset.UtcNow);

        var signed = MetadataFiles.Sign(MetadataFiles.Build(draft), MetadataFactory.Key(Alice), null, created, SignatureAlgorithm.RsaSha1);
        var verified = MetadataFiles.Verify(signed.Xml);

        Assert.That(signed.Entry.Identifier, Is.EqualTo(draft.Identifier));
        Assert.That(verified.Entry.Endorser.Email, Is.EqualTo(Alice));
        Assert.That(verified.Entry.Created, Is.EqualTo(created));
        Assert.That(verified.SignatureMethod, Does.EndWith("rsa-sha1"));
        Assert.That(verified.CertificateSha256, Is.EqualTo(MetadataFactory.Thumbprint(MetadataFactory.Key(Alice)).ToLowerInvariant()));
    }

    [Test]
    public void A_deprecation_is_signed_strictly_after_the_entry_it_replaces_even_when_the_clock_is_behind()
    {
        var created = MetadataFactory.Second(DateTimeOffset.UtcNow.AddMinutes(5));
        var original = MetadataFactory.Signed(MetadataFactory.Draft(), MetadataFactory.Key(Alice), created);

        var deprecated = MetadataFiles.Verify(MetadataFiles.Deprecate(original, "broken kernel", MetadataFactory.Key(Alice), Alice, DateTimeOffset.UtcNow));

        Assert.That(deprecated.Entry.Deprecated, Is.EqualTo("broken kernel"));
        Assert.That(deprecated.Entry.Created, Is.EqualTo(created.AddSeconds(1)));
    }

    [Test]
    public void A_tampered_entry_is_refused_as_unprocessable_metadata()
    {
        var xml = Encoding.UTF8.GetString(MetadataFactory.Signed(MetadataFactory.Draft(title: "honest"), MetadataFactory.Key(Alice)));

        var e = Assert.Throws<MetadataException>(() => MetadataFiles.Verify(Encoding.UTF8.GetBytes(xml.Replace("honest", "forged"))))!;

        Assert.That(e.Kind, Is.EqualTo(Rejection.Unprocessable));
        Assert.That(e.Field, Is.EqualTo("metadata"));
    }

    [Test]
    public async Task An_image_digest_names_the_image_by_its_SHA1()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, Encoding.ASCII.GetBytes("abc"));
            var digest = await MetadataFiles.DigestAsync(path);
            Assert.That(digest.Bytes, Is.EqualTo(3));
            Assert.That(digest.Sha1, Is.EqualTo("a9993e364706816aba3e25717850c26c9cd0d89d"));
            Assert.That(digest.Identifier, Is.EqualTo(ImageIdentifiers.FromSha1Hex(digest.Sha1)));
        }
        finally { File.Delete(path); }
    }
}
