using System.Net.Http.Json;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Occi;

/// <summary>os_tpl follows the Marketplace and the site image policy: one mixin per valid, accepted machine image.</summary>
public class OcciPolicyTests
{
    const string Endorser = "occi-policy@example.org";

    [Test, CancelAfter(60_000)]
    public async Task Marketplace_images_are_os_templates_until_the_site_policy_blacklists_them()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Marketplace:WhitelistedCertificates:0"] = MetadataFactory.Thumbprint(MetadataFactory.Key(Endorser)),
        });
        using var admin = server.Client();
        var drafts = new[] { MetadataFactory.Draft(title: "kept appliance"), MetadataFactory.Draft(title: "banned appliance"),
            MetadataFactory.Draft(title: "old appliance", deprecated: "replaced") };
        foreach (var draft in drafts)
            Assert.That((int)(await admin.PostAsync("/api/v1/marketplace/metadata", MetadataFactory.Xml(MetadataFactory.Signed(draft, MetadataFactory.Key(Endorser))))).StatusCode,
                Is.EqualTo(201));
        var (kept, banned, deprecated) = (drafts[0].Identifier!, drafts[1].Identifier!, drafts[2].Identifier!);
        var occi = new OcciClient(admin, OcciRenderingKind.Plain);
        var scheme = $"scheme=\"{server.BaseAddress.ToString().TrimEnd('/')}/occi/os_tpl#\"";

        var before = (await occi.GetAsync("/-/")).Categories.ToList();
        Assert.That(before, Has.Some.StartsWith($"{kept}; {scheme}").And.Some.Contains("title=\"kept appliance ttylinux 9.7\""));
        Assert.That(before, Has.Some.StartsWith($"{banned}; {scheme}"));
        Assert.That(before, Has.None.StartsWith($"{deprecated}; "), "a deprecated entry is not valid, so not launchable");

        await (await admin.PutAsJsonAsync("/api/v1/policy", new { blacklistImages = new[] { banned } })).Json(200);
        var after = (await occi.GetAsync("/-/")).Categories.ToList();
        Assert.That(after, Has.Some.StartsWith($"{kept}; "));
        Assert.That(after, Has.None.StartsWith($"{banned}; "), "the site policy refuses it: no os_tpl");
        var refused = await occi.PostAsync("/compute/", "Category: compute; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; class=\"kind\"",
            $"Category: {banned}; {scheme}; class=\"mixin\"");
        Assert.That(refused.Status, Is.EqualTo(400));
        Assert.That(refused.Body, Does.Contain("Unknown os_tpl"));
    }

    /// <summary>The launchable list is cached between Marketplace changes: every change (upload, deprecation, policy) and every expiry shows at once.</summary>
    [Test, CancelAfter(60_000)]
    public async Task The_cached_os_templates_follow_uploads_deprecations_and_expiry_at_once()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Marketplace:WhitelistedCertificates:0"] = MetadataFactory.Thumbprint(MetadataFactory.Key(Endorser)),
        });
        using var admin = server.Client();
        var occi = new OcciClient(admin, OcciRenderingKind.Plain);
        async Task<List<string>> TermsAsync() => (await occi.GetAsync("/-/")).Categories.Select(c => c.Split(';')[0]).ToList();
        async Task UploadAsync(MetadataDraft draft) =>
            Assert.That((int)(await admin.PostAsync("/api/v1/marketplace/metadata", MetadataFactory.Xml(MetadataFactory.Signed(draft, MetadataFactory.Key(Endorser))))).StatusCode,
                Is.EqualTo(201));

        var first = MetadataFactory.Draft(title: "first appliance");
        await UploadAsync(first);
        Assert.That(await TermsAsync(), Has.Member(first.Identifier));
        Assert.That(await TermsAsync(), Has.Member(first.Identifier), "asked again (from the cache)");

        var second = MetadataFactory.Draft(title: "second appliance");
        await UploadAsync(second);
        Assert.That(await TermsAsync(), Has.Member(second.Identifier), "an upload shows at once");

        await (await admin.PostAsJsonAsync($"/api/v1/marketplace/metadata/{first.Identifier}/deprecate", new { reason = "replaced" })).Json(200);
        var afterDeprecation = await TermsAsync();
        Assert.That(afterDeprecation, Has.No.Member(first.Identifier), "a deprecation shows at once");
        Assert.That(afterDeprecation, Has.Member(second.Identifier));

        // Expiry changes an entry's status without any write: the cached answer holds only until the first entry it read expires.
        var shortLived = MetadataFactory.Draft(title: "short-lived appliance", valid: MetadataFactory.Second(DateTimeOffset.UtcNow.AddSeconds(3)));
        await UploadAsync(shortLived);
        Assert.That(await TermsAsync(), Has.Member(shortLived.Identifier));
        await Task.Delay(TimeSpan.FromSeconds(4));
        var afterExpiry = await TermsAsync();
        Assert.That(afterExpiry, Has.No.Member(shortLived.Identifier), "an expired entry is not launchable");
        Assert.That(afterExpiry, Has.Member(second.Identifier));
    }
}
