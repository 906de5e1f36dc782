using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Tests.Platform;

/// <summary>Signature V4 against the worked example of AWS's documentation (IAM ListUsers, 2015-08-30).</summary>
public class SignatureV4Tests
{
    const string Secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    static readonly CredentialScope Scope = new("AKIDEXAMPLE", "20150830", "us-east-1", "iam");

    [Test]
    public void The_documented_example_request_gets_the_documented_signature()
    {
        var headers = new Dictionary<string, string>
        {
            ["content-type"] = "application/x-www-form-urlencoded; charset=utf-8",
            ["host"] = "iam.amazonaws.com",
            ["x-amz-date"] = "20150830T123600Z",
        };
        var canonical = SignatureV4.CanonicalRequest("GET", "/",
            [new("Action", "ListUsers"), new("Version", "2010-05-08")], headers, ["content-type", "host", "x-amz-date"],
            SignatureV4.PayloadHash([]));
        Assert.That(canonical, Is.EqualTo(
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n" +
            "content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n" +
            "content-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        var toSign = SignatureV4.StringToSign("20150830T123600Z", Scope, canonical);
        Assert.That(toSign, Is.EqualTo(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"));
        Assert.That(Convert.ToHexStringLower(SignatureV4.SigningKey(Secret, Scope)),
            Is.EqualTo("c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"));
        Assert.That(SignatureV4.Signature(SignatureV4.SigningKey(Secret, Scope), toSign),
            Is.EqualTo("5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"));
    }

    [Test]
    public void A_client_signing_the_documented_example_sends_the_documented_authorization_header()
    {
        var headers = new Dictionary<string, string>
        {
            ["host"] = "iam.amazonaws.com",
            ["x-amz-date"] = "20150830T123600Z",
            ["content-type"] = "application/x-www-form-urlencoded; charset=utf-8",
        };
        var header = SignatureV4.AuthorizationHeader(Secret, Scope, "20150830T123600Z", "GET", "/",
            [new("Version", "2010-05-08"), new("Action", "ListUsers")], headers, SignatureV4.PayloadHash([]));
        Assert.That(header, Is.EqualTo("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, " +
            "SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"));
        var (parts, problem) = SignatureV4.ParseHeader(header, "20150830T123600Z");
        Assert.That(problem, Is.Null, "the server's parser reads what the client sends");
        Assert.That(parts!.SignedHeaders, Is.EqualTo(new[] { "content-type", "host", "x-amz-date" }));
    }

    [TestCase("a b", "a%20b")]
    [TestCase("a+b=c/d~e_f.g-h", "a%2Bb%3Dc%2Fd~e_f.g-h")]
    [TestCase("é", "%C3%A9")]
    public void Values_are_encoded_as_rfc_3986_wants(string value, string expected) =>
        Assert.That(SignatureV4.UriEncode(value), Is.EqualTo(expected));

    [Test]
    public void The_canonical_query_is_sorted_by_encoded_name_then_value_and_leaves_out_the_signature() =>
        Assert.That(SignatureV4.CanonicalQuery([new("b", "2"), new("a", "z"), new("a", "y"), new("X-Amz-Signature", "ff"), new("A", "1")]),
            Is.EqualTo("A=1&a=y&a=z&b=2"));

    [TestCase("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", null)]
    [TestCase("AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/ec2, SignedHeaders=host, Signature=abc", "not of the form")]
    [TestCase("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc", "needs Credential")]
    [TestCase("AWS AK:abc", "must start with")]
    public void Authorization_headers_are_parsed_strictly(string header, string? problem)
    {
        var (parts, why) = SignatureV4.ParseHeader(header, "20150830T123600Z");
        if (problem is null) Assert.That(parts!.Credential.AccessKeyId, Is.EqualTo("AK"));
        else Assert.That(why, Does.Contain(problem));
    }
}
