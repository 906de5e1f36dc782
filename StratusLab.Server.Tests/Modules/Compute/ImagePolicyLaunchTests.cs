using System.Net.Http.Json;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>The site image policy applies at every launch: at admission and again in PROLOG.</summary>
public class ImagePolicyLaunchTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _identifier = "";

    [SetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await TestImages.RegisterDefaultAsync(_server, "policed");
        _admin = _server.Client();
        var images = (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray();
        _identifier = images.Single(i => i!["names"]!.AsArray().Any(n => n!.GetValue<string>() == "policed"))!["identifier"]!.GetValue<string>();
        Assert.That(_identifier, Has.Length.EqualTo(27), "every registered image gets a site-signed Marketplace entry");
    }

    [TearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    [Test]
    public async Task A_blacklisted_image_is_refused_at_once_with_the_rule_audited_and_nothing_created()
    {
        var user = "pol" + Guid.NewGuid().ToString("N")[..6];
        using var http = _server.Client(await _server.CreateUserAsync(user));
        await (await _admin.PutAsJsonAsync("/api/v1/policy", new { blacklistImages = new[] { _identifier } })).Json(200);
        var problem = await (await http.PostAsJsonAsync("/api/v1/instances", new { image = "policed" })).Problem(403);
        Assert.That(problem["rule"]!.GetValue<string>(), Is.EqualTo("blacklist-image"));
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("image"));
        Assert.That((await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Is.Empty);
        Assert.That((await (await http.GetAsync($"/api/v1/quotas/{user}")).Json(200))["usage"]!["vms"]!.GetValue<long>(), Is.EqualTo(0));
        var audit = (await (await _admin.GetAsync($"/api/v1/policy/audit?identifier={_identifier}")).Json(200)).AsArray();
        var record = audit.Single(a => a!["userName"]!.GetValue<string>() == user)!;
        Assert.That(record["accepted"]!.GetValue<bool>(), Is.False);
        Assert.That(record["rule"]!.GetValue<string>(), Is.EqualTo("blacklist-image"));
        Assert.That(record["sha1"]!.GetValue<string>(), Has.Length.EqualTo(40));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_policy_change_after_admission_fails_the_launch_in_PROLOG_and_frees_everything()
    {
        // Keep the instance PENDING (no enabled host) while the policy changes.
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().Single()!["name"]!.GetValue<string>();
        await (await _admin.PostAsync($"/api/v1/hosts/{local}/disable", null)).Json(200);
        var id = (await InstanceApiTests.CreateAsync(_admin, new { image = "policed" }))["id"]!.GetValue<long>();
        await (await _admin.PutAsJsonAsync("/api/v1/policy", new { blacklistImages = new[] { _identifier } })).Json(200);
        await (await _admin.PostAsync($"/api/v1/hosts/{local}/enable", null)).Json(200);
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 20);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("blacklist-image"));
        var host = await (await _admin.GetAsync($"/api/v1/hosts/{local}")).Json(200);
        Assert.That(host["runningVms"]!.GetValue<long>(), Is.EqualTo(0), "the host capacity was given back");
        Assert.That((await (await _admin.GetAsync("/api/v1/quotas/admin")).Json(200))["usage"]!["vms"]!.GetValue<long>(), Is.EqualTo(0));
        var audit = (await (await _admin.GetAsync($"/api/v1/policy/audit?identifier={_identifier}")).Json(200)).AsArray();
        Assert.That(audit.Any(a => a!["instanceId"]?.GetValue<string>() == id.ToString() && !a["accepted"]!.GetValue<bool>()), Is.True);
    }

    [Test, CancelAfter(60_000)]
    public async Task An_accepted_launch_is_audited_with_its_instance()
    {
        var id = (await InstanceApiTests.CreateAsync(_admin, new { image = "policed" }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        var audit = (await (await _admin.GetAsync($"/api/v1/policy/audit?identifier={_identifier}&accepted=true")).Json(200)).AsArray();
        Assert.That(audit.Any(a => a!["instanceId"]?.GetValue<string>() == id.ToString() && a["userName"]!.GetValue<string>() == "admin"), Is.True);
    }
}
