using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using System.Text;
using System.Xml;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

public class MetadataSignatureTests
{
    const string Alice = "alice@example.org";
    const string Mallory = "mallory@example.org";

    static MetadataException Refused(TestDelegate action)
    {
        var e = Assert.Throws<MetadataException>(action)!;
        Assert.That(e.Detail, Is.Not.Empty);
        return e;
    }

    static void VerifyAll(byte[] xml)
    {
        var doc = MetadataXml.Load(xml);
        var signature = MetadataSignature.Verify(doc);
        var entry = MetadataXml.Parse(doc);
        MetadataSignature.CheckEndorser(entry.Endorser, signature.Certificate);
    }

    [TestCase(SignatureAlgorithm.RsaSha256, "rsa-sha256")]
    [TestCase(SignatureAlgorithm.RsaSha1, "rsa-sha1")]
    public void Sign_then_validate_round_trips(SignatureAlgorithm algorithm, string method)
    {
        var draft = MetadataFactory.Draft(title: "round trip", tags: ["base", "tiny"]);
        var created = MetadataFactory.Second(DateTimeOffset.UtcNow);
        var xml = MetadataFactory.Signed(draft, MetadataFactory.Key(Alice), created, algorithm);

        var doc = MetadataXml.Load(xml);
        var signature = MetadataSignature.Verify(doc);
        var entry = MetadataXml.Parse(doc);
        MetadataSignature.CheckEndorser(entry.Endorser, signature.Certificate);

        Assert.That(signature.SignatureMethod, Does.EndWith(method));
        Assert.That(entry.Identifier, Is.EqualTo(draft.Identifier));
        Assert.That(entry.Endorser.Email, Is.EqualTo(Alice));
        Assert.That(entry.Endorser.Subject, Does.StartWith("CN=Test endorser alice@example.org,O=StratusLab"));
        Assert.That(entry.Created, Is.EqualTo(created));
        Assert.That(entry.Tags, Is.EqualTo(new[] { "base", "tiny" }));
        Assert.That(entry.Checksums.Select(c => c.Algorithm), Is.EquivalentTo(new[] { "SHA-1", "SHA-256" }));
    }

    [Test]
    public void Signing_again_replaces_the_signature_and_the_endorsement()
    {
        var doc = MetadataFactory.SignedDocument(MetadataFactory.Draft(), MetadataFactory.Key(Alice));
        MetadataSignature.Sign(doc, MetadataFactory.Key(Mallory), null, DateTimeOffset.UtcNow);
        Assert.That(doc.GetElementsByTagName("Signature", MetadataNames.Dsig).Count, Is.EqualTo(1));
        Assert.That(doc.GetElementsByTagName("endorser", MetadataNames.SlReq).Count, Is.EqualTo(1));
        VerifyAll(MetadataXml.ToBytes(doc));
        Assert.That(MetadataXml.Parse(doc).Endorser.Email, Is.EqualTo(Mallory));
    }

    [TestCase("ttylinux", "ttylinuy")]
    [TestCase("<slterms:os-arch>x86_64", "<slterms:os-arch>x86_65")]
    [TestCase("http://example.org/images/", "http://evil.example/images/")]
    public void A_tampered_entry_is_refused(string original, string tampered)
    {
        var text = Encoding.UTF8.GetString(MetadataFactory.Signed(MetadataFactory.Draft(), MetadataFactory.Key(Alice)));
        Assert.That(text, Does.Contain(original));
        var e = Refused(() => VerifyAll(Encoding.UTF8.GetBytes(text.Replace(original, tampered))));
        Assert.That(e.Kind, Is.EqualTo(Rejection.Unprocessable));
        Assert.That(e.Detail, Does.Contain("does not verify"));
    }

    [Test]
    public void Changing_any_single_byte_of_the_signed_content_is_detected()
    {
        var xml = MetadataFactory.Signed(MetadataFactory.Draft(), MetadataFactory.Key(Alice));
        var text = Encoding.UTF8.GetString(xml);
        var start = text.IndexOf("<dcterms:title>", StringComparison.Ordinal) + "<dcterms:title>".Length;
        for (var i = start; i < start + 5; i++)
        {
            var copy = (byte[])xml.Clone();
            copy[i] ^= 0x01;
            Assert.That(() => VerifyAll(copy), Throws.InstanceOf<MetadataException>(), $"byte {i} flipped");
        }
    }

    [Test]
    public void An_entry_whose_certificate_was_swapped_for_another_is_refused()
    {
        var doc = MetadataFactory.SignedDocument(MetadataFactory.Draft(), MetadataFactory.Key(Alice));
        var certElement = (XmlElement)doc.GetElementsByTagName("X509Certificate", MetadataNames.Dsig)[0]!;
        certElement.InnerText = Convert.ToBase64String(MetadataFactory.Key(Mallory).RawData);
        var e = Refused(() => VerifyAll(MetadataXml.ToBytes(doc)));
        Assert.That(e.Detail, Does.Contain("does not verify"));
    }

    [Test]
    public void An_entry_signed_by_another_certificate_than_its_endorser_is_refused()
    {
        // Alice's endorsement, but signed (validly) with Mallory's key.
        var doc = MetadataFactory.SignedDocument(MetadataFactory.Draft(), MetadataFactory.Key(Alice));
        var old = doc.GetElementsByTagName("Signature", MetadataNames.Dsig)[0]!;
        old.ParentNode!.RemoveChild(old);
        var mallory = MetadataFactory.Key(Mallory);
        var signed = new SignedXml(doc) { SigningKey = mallory.GetRSAPrivateKey() };
        var reference = new Reference("") { DigestMethod = SignedXml.XmlDsigSHA256Url };
        reference.AddTransform(new XmlDsigEnvelopedSignatureTransform());
        signed.AddReference(reference);
        signed.SignedInfo!.SignatureMethod = SignedXml.XmlDsigRSASHA256Url;
        var keyInfo = new KeyInfo();
        keyInfo.AddClause(new KeyInfoX509Data(mallory));
        signed.KeyInfo = keyInfo;
        signed.ComputeSignature();
        doc.DocumentElement!.AppendChild(doc.ImportNode(signed.GetXml(), true));

        var e = Refused(() => VerifyAll(MetadataXml.ToBytes(doc)));
        Assert.That(e.Detail, Does.Contain(Alice).And.Contain(Mallory));
    }

    [Test]
    public void An_unsigned_entry_is_refused_with_what_to_do()
    {
        var doc = MetadataXml.Build(MetadataFactory.Draft());
        var e = Refused(() => MetadataSignature.Verify(doc));
        Assert.That(e.Detail, Does.Contain("not signed").And.Contain("sign-metadata"));
    }

    [Test]
    public void A_second_signature_is_refused()
    {
        var doc = MetadataFactory.SignedDocument(MetadataFactory.Draft(), MetadataFactory.Key(Alice));
        var copy = doc.GetElementsByTagName("Signature", MetadataNames.Dsig)[0]!.CloneNode(true);
        doc.DocumentElement!.AppendChild(copy);
        Assert.That(Refused(() => MetadataSignature.Verify(doc)).Detail, Does.Contain("2 signatures"));
    }

    [Test]
    public void A_signature_that_covers_only_part_of_the_entry_is_refused()
    {
        var text = Encoding.UTF8.GetString(MetadataFactory.Signed(MetadataFactory.Draft(), MetadataFactory.Key(Alice)));
        var doc = MetadataXml.Load(Encoding.UTF8.GetBytes(text.Replace("<Reference URI=\"\">", "<Reference URI=\"#x\">")));
        Assert.That(Refused(() => MetadataSignature.Verify(doc)).Detail, Does.Contain("URI=\"\""));
    }

    [Test]
    public void Signing_with_an_email_other_than_the_certificates_is_refused()
    {
        var doc = MetadataXml.Build(MetadataFactory.Draft());
        var e = Assert.Throws<MetadataException>(() => MetadataSignature.Sign(doc, MetadataFactory.Key(Alice), Mallory, DateTimeOffset.UtcNow))!;
        Assert.That(e.Detail, Does.Contain("differs"));
    }

    [Test]
    public void Keys_load_from_PKCS12_and_from_PEM()
    {
        var key = MetadataFactory.Key(Alice);
        var dir = TempDir.Create("keys");
        try
        {
            var p12 = Path.Combine(dir, "alice.p12");
            File.WriteAllBytes(p12, key.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12, "secret"));
            using var fromP12 = SigningKeys.LoadPkcs12(p12, "secret");
            Assert.That(fromP12.HasPrivateKey, Is.True);
            Assert.Throws<MetadataException>(() => SigningKeys.LoadPkcs12(p12, "wrong"));

            File.WriteAllText(Path.Combine(dir, "cert.pem"), key.ExportCertificatePem());
            File.WriteAllText(Path.Combine(dir, "key.pem"), key.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());
            using var fromPem = SigningKeys.LoadPem(Path.Combine(dir, "cert.pem"), Path.Combine(dir, "key.pem"), null);
            VerifyAll(MetadataXml.ToBytes(MetadataFactory.SignedDocument(MetadataFactory.Draft(), fromPem)));
        }
        finally { TempDir.Delete(dir); }
    }
}
