using System.Text;
using StratusLab.Server.Modules.Marketplace.Metadata;

namespace StratusLab.Server.Tests.Modules.Marketplace;

public class ImageIdentifierTests
{
    // Expected values computed independently (Python big integers) and, for the first, taken from StratusLab's own test entries.
    [TestCase("c319bbd5afc0a22ba3eaed0507c39383ec28eeff", "MMZu9WvwKIro-rtBQfDk4PsKO7_")]
    [TestCase("da39a3ee5e6b4b0d3255bfef95601890afd80709", "No5o-5ea0sNMlW_75VgGJCv2AcJ")]
    [TestCase("a9993e364706816aba3e25717850c26c9cd0d89d", "KmZPjZHBoFquj4lcXhQwmyc0Nid")]
    [TestCase("2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", "C_U4cZ6LSj87YSe4bt25zkbk-sS")]
    [TestCase("0000000000000000000000000000000000000000", "AAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [TestCase("ffffffffffffffffffffffffffffffffffffffff", "P__________________________")]
    public void A_SHA1_encodes_to_the_StratusLab_identifier_and_back(string sha1, string identifier)
    {
        Assert.That(ImageIdentifier.FromSha1Hex(sha1), Is.EqualTo(identifier));
        Assert.That(ImageIdentifier.ToSha1Hex(identifier), Is.EqualTo(sha1));
    }

    [TestCase("", "No5o-5ea0sNMlW_75VgGJCv2AcJ")]
    [TestCase("abc", "KmZPjZHBoFquj4lcXhQwmyc0Nid")]
    [TestCase("The quick brown fox jumps over the lazy dog", "C_U4cZ6LSj87YSe4bt25zkbk-sS")]
    [TestCase("data for SHA1 digest", "Nyuwnr8SOXWilAOWhWTELpytQKS")]
    public void The_identifier_of_content_is_its_SHA1_encoded(string content, string identifier)
    {
        using var stream = new MemoryStream(Encoding.ASCII.GetBytes(content));
        Assert.That(ImageIdentifier.Of(stream), Is.EqualTo(identifier));
    }

    [Test]
    public void A_SHA1_with_a_leading_zero_written_out_is_the_same_checksum()
    {
        Assert.That(ImageIdentifier.NormalizeSha1Hex("0c319bbd5afc0a22ba3eaed0507c39383ec28eeff"), Is.EqualTo("c319bbd5afc0a22ba3eaed0507c39383ec28eeff"));
        Assert.That(ImageIdentifier.NormalizeSha1Hex("1"), Is.EqualTo(new string('0', 39) + "1"));
        Assert.Throws<FormatException>(() => ImageIdentifier.NormalizeSha1Hex("1" + new string('0', 40)));
        Assert.Throws<FormatException>(() => ImageIdentifier.NormalizeSha1Hex("xyz"));
    }

    [TestCase("A")]
    [TestCase("AAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [TestCase("AAAAAAAAAAAAAAAAAA:AAAAAAAA")]
    [TestCase("QAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [TestCase("MMZu9WvwKIro-rtBQfDk4PsKO7=")]
    public void Malformed_identifiers_are_refused(string identifier)
    {
        Assert.That(ImageIdentifier.IsWellFormed(identifier), Is.False);
        Assert.Throws<FormatException>(() => ImageIdentifier.ToSha1Hex(identifier));
    }

    [Test]
    public async Task An_image_digest_gives_bytes_checksums_and_identifier_in_one_pass()
    {
        using var stream = new MemoryStream(Encoding.ASCII.GetBytes("abc"));
        var digest = await ImageDigests.OfStreamAsync(stream);
        Assert.That(digest.Bytes, Is.EqualTo(3));
        Assert.That(digest.Sha1, Is.EqualTo("a9993e364706816aba3e25717850c26c9cd0d89d"));
        Assert.That(digest.Sha256, Is.EqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        Assert.That(digest.Md5, Is.EqualTo("900150983cd24fb0d6963f7d28e17f72"));
        Assert.That(digest.Identifier, Is.EqualTo("KmZPjZHBoFquj4lcXhQwmyc0Nid"));
    }
}
