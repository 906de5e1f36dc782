using System.Text;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

public class MetadataXmlTests
{
    public const string Xxe = """
        <?xml version="1.0"?>
        <!DOCTYPE rdf:RDF [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
        <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:dcterms="http://purl.org/dc/terms/" xml:base="http://mp.stratuslab.eu/">
          <rdf:Description rdf:about="#MMZu9WvwKIro-rtBQfDk4PsKO7_"><dcterms:title>&xxe;</dcterms:title></rdf:Description>
        </rdf:RDF>
        """;

    public const string BillionLaughs = """
        <?xml version="1.0"?>
        <!DOCTYPE lolz [
         <!ENTITY lol "lol">
         <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
         <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
         <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
         <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
        ]>
        <lolz>&lol9;</lolz>
        """;

    [TestCase(Xxe)]
    [TestCase(BillionLaughs)]
    [TestCase("<?xml version=\"1.0\"?><!DOCTYPE x SYSTEM \"http://127.0.0.1:1/evil.dtd\"><x/>")]
    public void Documents_with_a_DTD_are_refused_before_any_entity_is_read(string xml)
    {
        var e = Assert.Throws<MetadataException>(() => MetadataXml.Load(Encoding.UTF8.GetBytes(xml)))!;
        Assert.That(e.Kind, Is.EqualTo(Rejection.BadRequest));
        Assert.That(e.Detail, Does.Contain("DTD"));
    }

    [Test]
    public void A_DTD_hidden_in_UTF16_is_still_refused()
    {
        var bytes = Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes(Xxe.Replace("<?xml version=\"1.0\"?>", "<?xml version=\"1.0\" encoding=\"UTF-16\"?>"))).ToArray();
        var e = Assert.Throws<MetadataException>(() => MetadataXml.Load(bytes))!;
        Assert.That(e.Kind, Is.EqualTo(Rejection.BadRequest));
        Assert.That(e.Detail, Does.Contain("DTD"));
    }

    [TestCase("<rdf:RDF")]
    [TestCase("<a><b></a>")]
    [TestCase("not xml at all")]
    [TestCase("")]
    public void Malformed_XML_is_a_400_with_the_position(string xml)
    {
        var e = Assert.Throws<MetadataException>(() => MetadataXml.Load(Encoding.UTF8.GetBytes(xml)))!;
        Assert.That(e.Kind, Is.EqualTo(Rejection.BadRequest));
    }

    [Test]
    public void An_entry_over_the_cap_is_413()
    {
        var e = Assert.Throws<MetadataException>(() => MetadataXml.Load(new byte[5000], maxBytes: 4096))!;
        Assert.That(e.Kind, Is.EqualTo(Rejection.TooLarge));
    }

    static string SignedText() =>
        Encoding.UTF8.GetString(MetadataFactory.Signed(MetadataFactory.Draft(os: "ttylinux", arch: "i486"), MetadataFactory.Key("carol@example.org")));

    // Each case breaks one constraint of a valid entry; Parse must name it.
    [TestCase("<slterms:os>ttylinux</slterms:os>", "<slterms:os>ttylinux</slterms:os><slterms:os>debian</slterms:os>", "at most one")]
    [TestCase("<slterms:os-arch>i486</slterms:os-arch>", "<slterms:os-arch>i486</slterms:os-arch><slterms:os-arch>x86_64</slterms:os-arch>", "slterms:os-arch")]
    [TestCase("<dcterms:type>machine</dcterms:type>", "<dcterms:type>vm</dcterms:type>", "machine, disk")]
    [TestCase("<dcterms:type>machine</dcterms:type>", "", "dcterms:type")]
    [TestCase("rdf:about=\"#", "rdf:about=\"#X", "rdf:about")]
    [TestCase("xml:base=\"http://mp.stratuslab.eu/\"", "xml:base=\"http://example.org/\"", "xml:base")]
    [TestCase("<slreq:algorithm>SHA-1</slreq:algorithm>", "<slreq:algorithm>SHA-3</slreq:algorithm>", "not known")]
    [TestCase("<slreq:algorithm>SHA-1</slreq:algorithm>", "<slreq:algorithm>SHA-512</slreq:algorithm>", "hex digits")]
    [TestCase("<slreq:bytes>64</slreq:bytes>", "<slreq:bytes>-1</slreq:bytes>", "slreq:bytes")]
    [TestCase("<slreq:email>carol@example.org</slreq:email>", "<slreq:email>not-an-email</slreq:email>", "e-mail")]
    [TestCase("<dcterms:valid>", "<dcterms:valid>1999-01-01T00:00:00Z</dcterms:valid><dcterms:x>", "not after")]
    [TestCase("<dcterms:valid>", "<dcterms:valid>tomorrow</dcterms:valid><dcterms:x>", "not a date")]
    [TestCase("</rdf:Description>", "<slterms:inbound-port>70000</slterms:inbound-port></rdf:Description>", "port number")]
    [TestCase("</rdf:Description>", "<dcterms:title>second</dcterms:title></rdf:Description>", "dcterms:title")]
    [TestCase("</rdf:Description>", "<slterms:deprecated>a</slterms:deprecated><slterms:deprecated>b</slterms:deprecated></rdf:Description>", "slterms:deprecated")]
    [TestCase("</rdf:RDF>", "<rdf:Description rdf:about=\"#x\"/></rdf:RDF>", "exactly one rdf:Description")]
    public void A_broken_constraint_is_refused_naming_it(string original, string replacement, string expected)
    {
        var text = SignedText();
        Assert.That(text, Does.Contain(original));
        var index = text.IndexOf(original, StringComparison.Ordinal);
        var broken = text[..index] + replacement + text[(index + original.Length)..];
        if (replacement.Contains("<dcterms:x>"))
            broken = System.Text.RegularExpressions.Regex.Replace(broken, "<dcterms:x>[^<]*</dcterms:valid>", "");
        var doc = MetadataXml.Load(Encoding.UTF8.GetBytes(broken));
        var e = Assert.Throws<MetadataException>(() => MetadataXml.Parse(doc))!;
        Assert.That(e.Kind, Is.EqualTo(Rejection.Unprocessable));
        Assert.That(e.Detail, Does.Contain(expected));
    }

    [Test]
    public void An_identifier_that_does_not_match_its_checksum_is_refused()
    {
        var draft = MetadataFactory.Draft();
        var other = MetadataFactory.Draft();
        var doc = MetadataXml.Build(draft with { Identifier = other.Identifier });
        MetadataSignature.Sign(doc, MetadataFactory.Key("carol@example.org"), null, DateTimeOffset.UtcNow);
        var e = Assert.Throws<MetadataException>(() => MetadataXml.Parse(doc))!;
        Assert.That(e.Detail, Does.Contain("does not match the SHA-1"));
    }

    [Test]
    public void Build_writes_the_old_client_layout_that_parses_back()
    {
        var draft = MetadataFactory.Draft(title: "layout", tags: ["a", "b"]) with { InboundPorts = [22, 80], Kind = "linux", DisksBus = "virtio" };
        var doc = MetadataFactory.SignedDocument(draft, MetadataFactory.Key("carol@example.org"));
        var text = Encoding.UTF8.GetString(MetadataXml.ToBytes(doc));
        Assert.That(text, Does.StartWith("<?xml version=\"1.0\" encoding=\"utf-8\"?>").IgnoreCase);
        Assert.That(text, Does.Contain("xml:base=\"http://mp.stratuslab.eu/\"").And.Contain("<slreq:checksum rdf:parseType=\"Resource\">"));
        var entry = MetadataXml.Parse(doc);
        Assert.That(entry.InboundPorts, Is.EqualTo(new[] { 22, 80 }));
        Assert.That(entry.Kind, Is.EqualTo("linux"));
        Assert.That(entry.DisksBus, Is.EqualTo("virtio"));
        Assert.That(entry.Tags, Is.EqualTo(new[] { "a", "b" }));
    }
}
