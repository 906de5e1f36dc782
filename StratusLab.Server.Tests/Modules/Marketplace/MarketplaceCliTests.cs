using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

/// <summary>The metadata commands end to end: build, sign, validate, upload, search, show, policy, deprecate.</summary>
public class MarketplaceCliTests
{
    const string Email = "cli-endorser@example.org";
    TestServer _server = null!;
    string _dir = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _dir = TempDir.Create("cli");
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Marketplace:WhitelistedCertificates:0"] = MetadataFactory.Thumbprint(MetadataFactory.Key(Email)),
        });
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _server.DisposeAsync();
        TempDir.Delete(_dir);
    }

    async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var all = args.Concat(["--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken]).ToArray();
        var code = await ClientCli.RunAsync(all, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public async Task An_image_goes_from_file_to_signed_entry_to_search_to_deprecation()
    {
        var image = Path.Combine(_dir, "tiny.qcow2");
        await File.WriteAllBytesAsync(image, System.Security.Cryptography.RandomNumberGenerator.GetBytes(4096));
        var p12 = Path.Combine(_dir, "key.p12");
        File.WriteAllBytes(p12, MetadataFactory.Key(Email).Export(X509ContentType.Pkcs12, "pw"));

        var built = await Run("build-metadata", image, "--title", "Tiny CLI image", "--os", "cirros", "--os-arch", "x86_64", "--tag", "cli", "--location", "http://example.org/tiny.qcow2", "--json");
        Assert.That(built.Code, Is.EqualTo(0), built.Err);
        var identifier = JsonNode.Parse(built.Out)!["identifier"]!.GetValue<string>();
        var entry = image + ".xml";
        Assert.That(File.ReadAllText(entry), Does.Contain("<dcterms:format>qcow2</dcterms:format>"));

        var unsigned = await Run("validate-metadata", entry);
        Assert.That(unsigned.Code, Is.EqualTo(1));
        Assert.That(unsigned.Err, Does.Contain("not signed"));

        var signed = await Run("sign-metadata", entry, "--p12", p12, "--password", "pw");
        Assert.That(signed.Code, Is.EqualTo(0), signed.Err);
        Assert.That(signed.Out, Does.Contain(Email));
        var valid = await Run("validate-metadata", entry);
        Assert.That(valid.Code, Is.EqualTo(0), valid.Err);
        Assert.That(valid.Out, Does.StartWith($"valid: {identifier}"));

        var tampered = Path.Combine(_dir, "tampered.xml");
        File.WriteAllText(tampered, File.ReadAllText(entry).Replace("cirros", "cirrus"));
        var refused = await Run("validate-metadata", tampered);
        Assert.That(refused.Code, Is.EqualTo(1));
        Assert.That(refused.Err, Does.Contain("does not verify"));
        var rejected = await Run("upload-metadata", tampered);
        Assert.That(rejected.Code, Is.EqualTo(1));
        Assert.That(rejected.Err, Does.Contain("verify").And.Not.Contain("422"), "the server's reason, without the HTTP code");

        var uploaded = await Run("upload-metadata", entry);
        Assert.That(uploaded.Code, Is.EqualTo(0), uploaded.Err);
        Assert.That(uploaded.Out, Does.Contain($"published {identifier}"));

        var search = await Run("search-image", "tiny", "cli", "--os", "cirros");
        Assert.That(search.Out, Does.Contain(identifier).And.Contain("Tiny CLI image"));
        var shown = await Run("show-image", identifier);
        Assert.That(shown.Out, Does.Contain("http://example.org/tiny.qcow2"));
        var xml = await Run("show-image", identifier, "--format", "xml");
        Assert.That(xml.Out, Does.Contain("<Signature"));
        Assert.That((await Run("list-images", "--json")).Out, Does.Contain(identifier));

        var policy = await Run("policy-image", identifier);
        Assert.That(policy.Code, Is.EqualTo(0), policy.Err);
        Assert.That(policy.Out, Does.StartWith("ACCEPTED by rule default-allow"));

        var deprecated = await Run("deprecate-metadata", identifier, "--reason", "superseded by tiny-2", "--p12", p12, "--password", "pw");
        Assert.That(deprecated.Code, Is.EqualTo(0), deprecated.Err);
        var after = await Run("policy-image", identifier);
        Assert.That(after.Code, Is.EqualTo(1));
        Assert.That(after.Out, Does.StartWith("REFUSED by rule deprecated").And.Contain("superseded by tiny-2"));
        Assert.That((await Run("search-image", "--status", "deprecated", "--os", "cirros")).Out, Does.Contain(identifier));
    }

    [Test]
    public async Task Signing_takes_a_PEM_key_and_the_policy_commands_set_and_show_lists()
    {
        var image = Path.Combine(_dir, "pem.img.gz");
        await File.WriteAllBytesAsync(image, System.Security.Cryptography.RandomNumberGenerator.GetBytes(1000));
        var key = MetadataFactory.Key(Email);
        File.WriteAllText(Path.Combine(_dir, "cert.pem"), key.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_dir, "key.pem"), key.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());
        var output = Path.Combine(_dir, "pem-entry.xml");
        Assert.That((await Run("build-metadata", image, "-o", output)).Code, Is.EqualTo(0));
        Assert.That(File.ReadAllText(output), Does.Contain("<dcterms:compression>gz</dcterms:compression>").And.Contain("<dcterms:format>raw</dcterms:format>"));
        var signed = await Run("sign-metadata", output, "--cert", Path.Combine(_dir, "cert.pem"), "--private-key", Path.Combine(_dir, "key.pem"), "--algorithm", "rsa-sha1");
        Assert.That(signed.Code, Is.EqualTo(0), signed.Err);
        Assert.That((await Run("validate-metadata", output)).Out, Does.Contain("rsa-sha1"));
        Assert.That((await Run("sign-metadata", output)).Code, Is.EqualTo(2), "a key is required");

        var set = await Run("policy-set", "--blacklist-endorser", "evil@example.org", "--whitelist-image", "MMZu9WvwKIro-rtBQfDk4PsKO7_");
        Assert.That(set.Code, Is.EqualTo(0), set.Err);
        Assert.That((await Run("policy-show")).Out, Does.Contain("blacklistEndorsers: evil@example.org (site)"));
        Assert.That((await Run("policy-set", "--blacklist-image", "bad")).Err, Does.Contain("not an image identifier"));
        Assert.That((await Run("policy-set")).Code, Is.EqualTo(0));
        Assert.That((await Run("policy-audit")).Code, Is.EqualTo(0));
    }
}
