using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

/// <summary>The site image policy over HTTP and through the contracts Compute uses (IImagePolicy, IMarketplaceCatalog).</summary>
public class PolicyApiTests
{
    const string Endorser = "policy-endorser@example.org";
    const string ConfigBlocked = "config-blocked@example.org";
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start() => _server = await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Marketplace:WhitelistedCertificates:0"] = MetadataFactory.Thumbprint(MetadataFactory.Key(Endorser)),
        ["Marketplace:WhitelistedCertificates:1"] = MetadataFactory.Thumbprint(MetadataFactory.Key(ConfigBlocked)),
        ["Policy:BlacklistEndorsers:0"] = ConfigBlocked,
    });

    [OneTimeTearDown] public async Task Stop() => await _server.DisposeAsync();

    [TearDown]
    public async Task ClearSitePolicy()
    {
        using var admin = _server.Client();
        await (await admin.PutAsJsonAsync("/api/v1/policy", new { })).Json(200);
    }

    IImagePolicy Policy => _server.App.Services.GetRequiredService<IImagePolicy>();
    IMarketplaceCatalog Catalog => _server.App.Services.GetRequiredService<IMarketplaceCatalog>();
    static readonly Caller Alice = new(4242, "alice", false, 1, []);

    async Task<MetadataDraft> Publish(string email = Endorser)
    {
        var draft = MetadataFactory.Draft();
        using var admin = _server.Client();
        await (await admin.PostAsync("/api/v1/marketplace/metadata", MetadataFactory.Xml(MetadataFactory.Signed(draft, MetadataFactory.Key(email))))).Json(201);
        return draft;
    }

    async Task<JsonNode> Check(string identifier)
    {
        using var admin = _server.Client();
        return await (await admin.PostAsJsonAsync("/api/v1/policy/check", new { identifier })).Json(200);
    }

    [Test]
    public async Task The_policy_endpoints_are_for_admins_only()
    {
        using var user = _server.Client(await _server.CreateUserAsync("p" + Guid.NewGuid().ToString("N")[..8]));
        await (await user.GetAsync("/api/v1/policy")).Problem(403);
        await (await user.PutAsJsonAsync("/api/v1/policy", new { })).Problem(403);
        await (await user.PostAsJsonAsync("/api/v1/policy/check", new { identifier = "MMZu9WvwKIro-rtBQfDk4PsKO7_" })).Problem(403);
        await (await user.GetAsync("/api/v1/policy/audit")).Problem(403);
        using var anonymous = _server.Client(token: null);
        await (await anonymous.GetAsync("/api/v1/policy")).Problem(401);
    }

    [TestCase("""{"blacklistEndorsers": ["not an email"]}""", "blacklistEndorsers")]
    [TestCase("""{"whitelistImages": ["short"]}""", "whitelistImages")]
    [TestCase("""{"blacklistChecksums": ["xyz"]}""", "blacklistChecksums")]
    [TestCase("""{"blacklist": []}""", "blacklist")]
    public async Task Bad_policy_lists_are_400_naming_the_field(string json, string field)
    {
        using var admin = _server.Client();
        var problem = await (await admin.PutAsync("/api/v1/policy", Http.RawJson(json))).Problem(400);
        Assert.That(problem["field"]?.GetValue<string>() ?? problem["detail"]!.GetValue<string>(), Does.Contain(field));
        await (await admin.PostAsJsonAsync("/api/v1/policy/check", new { identifier = "nope" })).Problem(400);
    }

    [Test]
    public async Task Config_rules_show_beside_the_sites_and_both_apply()
    {
        var blocked = await Publish(ConfigBlocked);
        var decision = await Check(blocked.Identifier);
        Assert.That(decision["accepted"]!.GetValue<bool>(), Is.False);
        Assert.That(decision["rule"]!.GetValue<string>(), Is.EqualTo("blacklist-endorser"));
        Assert.That(decision["source"]!.GetValue<string>(), Is.EqualTo("config"));

        using var admin = _server.Client();
        var view = await (await admin.PutAsJsonAsync("/api/v1/policy", new { blacklistImages = new[] { "MMZu9WvwKIro-rtBQfDk4PsKO7_" } })).Json(200);
        Assert.That(view["config"]!["blacklistEndorsers"]![0]!.GetValue<string>(), Is.EqualTo(ConfigBlocked));
        Assert.That(view["site"]!["blacklistImages"]![0]!.GetValue<string>(), Is.EqualTo("MMZu9WvwKIro-rtBQfDk4PsKO7_"));
        Assert.That(view["effective"]!["blacklistEndorsers"]!.AsArray(), Has.Count.EqualTo(1));
        Assert.That(view["updatedBy"]!.GetValue<string>(), Is.EqualTo("admin"));
    }

    [Test]
    public async Task A_policy_change_applies_to_an_image_that_was_accepted_before()
    {
        var draft = await Publish();
        var first = await Policy.CheckLaunchAsync(draft.Identifier, Alice);
        Assert.That(first.Accepted, Is.True, first.Reason);
        Assert.That(first.Rule, Is.EqualTo("default-allow"));
        Assert.That(first.Entry!.Sha1, Is.EqualTo(draft.Checksums[0].Value));
        Assert.That(first.Entry.Locations, Is.EqualTo(draft.Locations));

        using var admin = _server.Client();
        await (await admin.PutAsJsonAsync("/api/v1/policy", new { blacklistChecksums = new[] { draft.Checksums[1].Value.ToUpperInvariant() } })).Json(200);
        var second = await Policy.CheckLaunchAsync(draft.Identifier, Alice, "vm-17");
        Assert.That(second.Accepted, Is.False);
        Assert.That(second.Rule, Is.EqualTo("blacklist-checksum"));
        Assert.That(second.Source, Is.EqualTo("site"));

        var http = await Check(draft.Identifier);
        Assert.That(http["rule"]!.GetValue<string>(), Is.EqualTo("blacklist-checksum"));
        Assert.That(http["reason"]!.GetValue<string>(), Does.Contain("checksum blacklist"));
    }

    [Test]
    public async Task Every_launch_decision_is_audited_with_image_checksum_endorser_user_and_time()
    {
        var draft = await Publish();
        using var admin = _server.Client();
        await (await admin.PutAsJsonAsync("/api/v1/policy", new { whitelistEndorsers = new[] { "someone-else@example.org" } })).Json(200);
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        var refused = await Policy.CheckLaunchAsync(draft.Identifier, Alice, "vm-refused");
        Assert.That(refused.Accepted, Is.False);
        Assert.That(refused.Rule, Is.EqualTo("whitelist-endorser"));
        await (await admin.PutAsJsonAsync("/api/v1/policy", new { whitelistEndorsers = new[] { Endorser } })).Json(200);
        var accepted = await Policy.CheckLaunchAsync(draft.Identifier, Alice);
        Assert.That(accepted.Rule, Is.EqualTo("whitelist-endorser"));
        var unknown = await Policy.CheckLaunchAsync("AAAAAAAAAAAAAAAAAAAAAAAAAAA", Alice);
        Assert.That(unknown.Rule, Is.EqualTo("no-entry"));
        var malformed = await Policy.CheckLaunchAsync("../../etc/passwd", Alice);
        Assert.That(malformed.Rule, Is.EqualTo("invalid-identifier"));

        var audit = (await (await admin.GetAsync($"/api/v1/policy/audit?identifier={draft.Identifier}")).Json(200)).AsArray();
        Assert.That(audit, Has.Count.EqualTo(2));
        var record = audit.Single(a => !a!["accepted"]!.GetValue<bool>())!;
        Assert.That(record["identifier"]!.GetValue<string>(), Is.EqualTo(draft.Identifier));
        Assert.That(record["sha1"]!.GetValue<string>(), Is.EqualTo(draft.Checksums[0].Value));
        Assert.That(record["endorser"]!.GetValue<string>(), Is.EqualTo(Endorser));
        Assert.That(record["userName"]!.GetValue<string>(), Is.EqualTo("alice"));
        Assert.That(record["userId"]!.GetValue<long>(), Is.EqualTo(4242));
        Assert.That(record["instanceId"]!.GetValue<string>(), Is.EqualTo("vm-refused"));
        Assert.That(record["rule"]!.GetValue<string>(), Is.EqualTo("whitelist-endorser"));
        Assert.That(record["at"]!.GetValue<DateTimeOffset>(), Is.GreaterThan(before));

        var refusedOnly = (await (await admin.GetAsync("/api/v1/policy/audit?user=alice&accepted=false&limit=1000")).Json(200)).AsArray();
        Assert.That(refusedOnly.All(a => !a!["accepted"]!.GetValue<bool>()), Is.True);
        Assert.That(refusedOnly.Select(a => a!["rule"]!.GetValue<string>()), Is.SupersetOf(new[] { "whitelist-endorser", "no-entry", "invalid-identifier" }));
        var noEntry = refusedOnly.First(a => a!["rule"]!.GetValue<string>() == "no-entry")!;
        Assert.That(noEntry["sha1"]!.GetValue<string>(), Is.EqualTo(new string('0', 40)), "the checksum follows from the identifier even without an entry");
    }

    [Test]
    public async Task A_site_image_is_signed_with_the_site_key_published_once_and_allowed()
    {
        var dir = TempDir.Create("site-image");
        try
        {
            var path = Path.Combine(dir, "appliance.qcow2");
            await File.WriteAllBytesAsync(path, System.Security.Cryptography.RandomNumberGenerator.GetBytes(200_000));
            var digest = await ImageDigests.OfFileAsync(path);
            var info = new SiteImageInfo { Title = "StratusLab test appliance", Os = "linux", Tags = ["appliance"] };

            var entry = await Catalog.RegisterSiteImageAsync(path, info);
            Assert.That(entry.Identifier, Is.EqualTo(digest.Identifier));
            Assert.That(entry.Sha1, Is.EqualTo(digest.Sha1));
            Assert.That(entry.Bytes, Is.EqualTo(200_000));
            Assert.That(entry.Checksums.Select(c => c.Algorithm), Is.SupersetOf(new[] { "SHA-1", "SHA-256" }));
            Assert.That(entry.Endorser.Email, Is.EqualTo("site-admin@localhost"));
            Assert.That(entry.Locations.Single(), Is.EqualTo(new Uri(path).AbsoluteUri));
            Assert.That(entry.Status, Is.EqualTo(EntryStatus.Valid));

            var again = await Catalog.RegisterSiteImageAsync(path, info);
            Assert.That(again.Created, Is.EqualTo(entry.Created), "the same file gives the same entry");
            Assert.That(await Catalog.FindEntriesAsync(entry.Identifier), Has.Count.EqualTo(1));
            Assert.That((await Catalog.FindLatestValidAsync(entry.Identifier))!.Identifier, Is.EqualTo(entry.Identifier));
            Assert.That((await Policy.EvaluateAsync(entry.Identifier)).Accepted, Is.True);

            using var anonymous = _server.Client(token: null);
            var xml = await anonymous.GetByteArrayAsync($"/api/v1/marketplace/metadata/{entry.Identifier}/site-admin@localhost?format=xml");
            var signature = MetadataSignature.Verify(MetadataXml.Load(xml));
            Assert.That(MetadataSignature.CertificateEmail(signature.Certificate), Is.EqualTo("site-admin@localhost"));
            var keyFile = Path.Combine(_server.DataDir, "site-key.pem");
            Assert.That(File.GetUnixFileMode(keyFile), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            Assert.That(File.ReadAllText(keyFile), Does.Contain("PRIVATE KEY"));
            Assert.ThrowsAsync<FileNotFoundException>(() => Catalog.RegisterSiteImageAsync(Path.Combine(dir, "missing.qcow2"), info));
        }
        finally { TempDir.Delete(dir); }
    }
}
