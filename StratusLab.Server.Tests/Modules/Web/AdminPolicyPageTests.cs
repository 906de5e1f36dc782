using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Web;

/// <summary>
/// The admin image-policy page edits the site lists through Marketplace's IPolicyAdministration, with the validation
/// PUT /api/v1/policy has (the same service): a bad value is shown beside its list and changes nothing.
/// </summary>
public class AdminPolicyPageTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await _server.CreateUserAsync("polly", "admin");
        await _server.CreateUserAsync("usher");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    static readonly string Image = new string('A', 26) + "b";
    static readonly string Checksum = new('c', 40);

    [Test]
    public async Task An_administrator_edits_the_site_lists_and_a_bad_value_is_refused_beside_its_list()
    {
        using var polly = new BrowserSession(_server);
        Assert.That((int)(await polly.SignInAsync("polly", "password-polly")).StatusCode, Is.EqualTo(302));
        var (_, page) = await polly.GetAsync("/ui/admin/policy");
        Assert.That(page, Does.Contain("id=\"policy-form\"").And.Contain("name=\"blacklistImages\""));

        var (saved, savedHtml) = await polly.PostFormAsync("/ui/admin/policy",
            [new("whitelistEndorsers", "good@example.org\n"), new("blacklistImages", Image), new("whitelistChecksums", Checksum.ToUpperInvariant())], "/ui/admin/policy");
        Assert.That((int)saved.StatusCode, Is.EqualTo(302), savedHtml);
        using var admin = _server.Client();
        var policy = await (await admin.GetAsync("/api/v1/policy")).Json(200);
        Assert.That(policy["site"]!["whitelistEndorsers"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { "good@example.org" }));
        Assert.That(policy["site"]!["blacklistImages"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { Image }));
        Assert.That(policy["site"]!["whitelistChecksums"]!.AsArray().Select(v => v!.GetValue<string>()), Is.EqualTo(new[] { Checksum }), "normalized as the API does");
        Assert.That(policy["updatedBy"]!.GetValue<string>(), Is.EqualTo("polly"));
        (_, page) = await polly.GetAsync("/ui/admin/policy");
        Assert.That(page, Does.Contain($">{Image}</textarea>"), "the form shows the lists in force");

        var (refused, refusedHtml) = await polly.PostFormAsync("/ui/admin/policy",
            [new("whitelistEndorsers", "<script>alert(1)</script>"), new("blacklistImages", "")], "/ui/admin/policy");
        Assert.That((int)refused.StatusCode, Is.EqualTo(400), refusedHtml);
        Assert.That(refusedHtml, Does.Contain("id=\"whitelistEndorsers-problem\"").And.Contain("is not an e-mail address"));
        Assert.That(refusedHtml, Does.Not.Contain("<script>alert(1)</script>").And.Contain("&lt;script&gt;alert(1)&lt;/script&gt;</textarea>"),
            "what was typed comes back, escaped");
        policy = await (await admin.GetAsync("/api/v1/policy")).Json(200);
        Assert.That(policy["site"]!["blacklistImages"]!.AsArray(), Has.Count.EqualTo(1), "the refused form changed nothing");

        var (forged, _) = await polly.PostFormAsync("/ui/admin/policy", [new("blacklistImages", "")], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403));
        using var usher = new BrowserSession(_server);
        Assert.That((int)(await usher.SignInAsync("usher", "password-usher")).StatusCode, Is.EqualTo(302));
        var (notAdmin, _) = await usher.PostFormAsync("/ui/admin/policy", [new("blacklistImages", "")], "/ui/instances");
        Assert.That((int)notAdmin.StatusCode, Is.EqualTo(403));
        policy = await (await admin.GetAsync("/api/v1/policy")).Json(200);
        Assert.That(policy["site"]!["blacklistImages"]!.AsArray(), Has.Count.EqualTo(1), "neither the forged nor the user's post changed anything");
    }
}
