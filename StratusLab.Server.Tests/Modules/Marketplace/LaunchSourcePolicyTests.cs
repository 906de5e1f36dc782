using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

/// <summary>The site's switch for URL images and boot volumes: checked at admission and in PROLOG, audited like Marketplace images.</summary>
public class LaunchSourcePolicyTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start() => _server = await TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Policy:UrlImages"] = "admins-only",
        ["Policy:VolumeImages"] = "deny",
    });

    [OneTimeTearDown] public async Task Stop() => await _server.DisposeAsync();

    async Task<JsonArray> AuditAsync(string identifier)
    {
        using var admin = _server.Client();
        return (await (await admin.GetAsync($"/api/v1/policy/audit?identifier={Uri.EscapeDataString(identifier)}")).Json(200)).AsArray();
    }

    [Test, CancelAfter(120_000)]
    public async Task A_url_image_under_admins_only_is_refused_to_a_user_and_launched_for_an_admin_both_audited()
    {
        var url = $"http://127.0.0.1:9/{Guid.NewGuid():N}.qcow2";
        var name = "u" + Guid.NewGuid().ToString("N")[..8];
        using var user = _server.Client(await _server.CreateUserAsync(name));
        var refused = await (await user.PostAsJsonAsync("/api/v1/instances", new { image = url, instanceType = "m1.small" })).Problem(403);
        Assert.That(refused["rule"]!.GetValue<string>(), Is.EqualTo("url-images-admins-only"));
        Assert.That(refused["detail"]!.GetValue<string>(), Does.Contain("Policy:UrlImages").And.Contain("only administrators").And.Contain("Marketplace image"));
        using (var admin = _server.Client())
            Assert.That((await (await admin.GetAsync($"/api/v1/instances?limit=1000")).Json(200)).AsArray().Any(i => i!["image"]?.GetValue<string>() == url), Is.False,
                "a refusal leaves no instance behind");

        using var adminClient = _server.Client();
        var created = await InstanceApiTests.CreateAsync(adminClient, new { image = url, instanceType = "m1.small" });
        var id = created["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(adminClient, id, "RUNNING");
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());

        var audit = await AuditAsync(url);
        var userRecord = audit.Single(r => r!["userName"]!.GetValue<string>() == name)!;
        Assert.That(userRecord["accepted"]!.GetValue<bool>(), Is.False);
        Assert.That(userRecord["rule"]!.GetValue<string>(), Is.EqualTo("url-images-admins-only"));
        Assert.That(userRecord["source"]!.GetValue<string>(), Is.EqualTo("config"));
        var prolog = audit.Single(r => r!["instanceId"]?.GetValue<string>() == id.ToString(System.Globalization.CultureInfo.InvariantCulture))!;
        Assert.That(prolog["accepted"]!.GetValue<bool>(), Is.True, "PROLOG checks the launch again and records it with the instance");
        Assert.That(prolog["userName"]!.GetValue<string>(), Is.EqualTo("admin"));
    }

    [Test, CancelAfter(120_000)]
    public async Task A_volume_as_boot_disk_under_deny_is_refused_even_to_an_admin_and_audited()
    {
        using var admin = _server.Client();
        var volume = await (await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1, tag = "boot" })).Json(201);
        var uuid = volume["uuid"]!.GetValue<string>();
        var refused = await (await admin.PostAsJsonAsync("/api/v1/instances", new { image = uuid, instanceType = "m1.small" })).Problem(403);
        Assert.That(refused["rule"]!.GetValue<string>(), Is.EqualTo("volume-images-deny"));
        Assert.That(refused["detail"]!.GetValue<string>(), Does.Contain("Policy:VolumeImages").And.Contain("'deny'"));
        var record = (await AuditAsync(uuid)).Single()!;
        Assert.That(record["accepted"]!.GetValue<bool>(), Is.False);
        Assert.That(record["rule"]!.GetValue<string>(), Is.EqualTo("volume-images-deny"));
        var policy = await (await admin.GetAsync("/api/v1/policy")).Json(200);
        Assert.That(policy["urlImages"]!.GetValue<string>(), Is.EqualTo("admins-only"));
        Assert.That(policy["volumeImages"]!.GetValue<string>(), Is.EqualTo("deny"));
    }

    [Test, CancelAfter(120_000)]
    public async Task An_unknown_switch_value_stops_start_up_naming_the_key()
    {
        var e = Assert.ThrowsAsync<StratusLab.Server.Platform.Configuration.ConfigurationException>(async () =>
            await TestServer.StartAsync(new Dictionary<string, string?> { ["Policy:UrlImages"] = "sometimes" }));
        Assert.That(e!.Message, Does.Contain("Policy:UrlImages = 'sometimes' is not accepted").And.Contain("admins-only"));
    }
}
