using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Web;

/// <summary>
/// The dashboard's volumes page (create from a URL, upload a file: streamed into Pdisk) and networks page (leases, held
/// addresses, security-group rules) over HTTP: each change checked through the REST API, refusals shown beside the form,
/// forged posts refused, other users' things not reachable, HTML escaped.
/// </summary>
public class VolumeAndNetworkPagesTests
{
    TestServer _server = null!;
    FileHttpServer _files = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        _files = await FileHttpServer.StartAsync();
        await _server.CreateUserAsync("vera");
        await _server.CreateUserAsync("walt");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _files.DisposeAsync();
        await _server.DisposeAsync();
    }

    async Task<BrowserSession> SignedIn(string user)
    {
        var browser = new BrowserSession(_server);
        var response = await browser.SignInAsync(user, "password-" + user);
        Assert.That((int)response.StatusCode, Is.EqualTo(302), await response.Content.ReadAsStringAsync());
        return browser;
    }

    async Task<JsonArray> VolumesOf(string user)
    {
        using var admin = _server.Client();
        return (await (await admin.GetAsync($"/api/v1/volumes?owner={user}")).Json(200)).AsArray();
    }

    [Test]
    public async Task A_volume_is_created_from_a_url_and_shown_and_a_bad_url_is_refused_beside_the_field()
    {
        using var vera = await SignedIn("vera");
        var (data, _) = Volumes.DiskBytes(2);
        var url = _files.Serve("web-" + Guid.NewGuid().ToString("N")[..6] + ".img", data);
        var (made, html) = await vera.PostFormAsync("/ui/volumes/from-url", [new("url", url.ToString()), new("tag", "from-url")], "/ui/volumes");
        Assert.That((int)made.StatusCode, Is.EqualTo(302), html);
        var location = made.Headers.Location!.ToString();
        Assert.That(location, Does.StartWith("/ui/volumes?created="));
        var volume = (await VolumesOf("vera")).Single(v => v!["tag"]?.GetValue<string>() == "from-url")!;
        Assert.That(volume["bytes"]!.GetValue<long>(), Is.EqualTo(data.Length), "the whole image was downloaded");
        var (_, page) = await vera.GetAsync(location);
        Assert.That(page, Does.Contain("id=\"created\"").And.Contain(volume["uuid"]!.GetValue<string>()), "the page shows the new volume");

        var (refused, refusedHtml) = await vera.PostFormAsync("/ui/volumes/from-url", [new("url", "ftp://example.org/x.img"), new("tag", "")], "/ui/volumes");
        Assert.That((int)refused.StatusCode, Is.EqualTo(400), refusedHtml);
        Assert.That(refusedHtml, Does.Contain("id=\"url-problem\"").And.Contain("is not an http(s) URL"));
        Assert.That(refusedHtml, Does.Contain("value=\"ftp://example.org/x.img\""), "the form keeps what was typed");
        var (badTag, badTagHtml) = await vera.PostFormAsync("/ui/volumes/from-url", [new("url", url.ToString()), new("tag", "<script>alert(1)</script>")], "/ui/volumes");
        Assert.That((int)badTag.StatusCode, Is.EqualTo(400));
        Assert.That(badTagHtml, Does.Contain("id=\"url-tag-problem\"").And.Not.Contain("<script>alert(1)</script>"), "the typed tag comes back escaped");
        Assert.That(badTagHtml, Does.Contain("&lt;script&gt;alert(1)&lt;/script&gt;"));
        Assert.That((await VolumesOf("vera")).Count, Is.EqualTo(1), "the refusals kept nothing");
    }

    [Test]
    public async Task An_uploaded_file_becomes_a_volume_streamed_through_pdisk_and_a_forged_upload_is_refused()
    {
        using var walt = await SignedIn("walt");
        var (_, page) = await walt.GetAsync("/ui/volumes");
        Assert.That(page, Does.Contain("id=\"upload\"").And.Contain("id=\"upload-progress\""));
        var (data, sha1) = Volumes.DiskBytes(3, seed: 7);

        // The refusal comes before the body is read: with Expect: 100-continue the client waits for it instead of
        // writing 3 MiB into a connection the server closes (a broken pipe on a loaded machine), as browsers and curl do.
        using var forgedRequest = new HttpRequestMessage(HttpMethod.Post, "/ui/volumes/upload?tag=forged") { Content = new ByteArrayContent(data) };
        forgedRequest.Headers.ExpectContinue = true;
        var forged = await walt.Http.SendAsync(forgedRequest);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403));
        Assert.That(await VolumesOf("walt"), Is.Empty, "the forged upload kept nothing");

        using var request = new HttpRequestMessage(HttpMethod.Post, "/ui/volumes/upload?tag=uploaded") { Content = new ByteArrayContent(data) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Headers.Add("X-CSRF-Token", BrowserSession.CsrfOf(page));
        var uploaded = await (await walt.Http.SendAsync(request)).Json(201);
        var uuid = uploaded["uuid"]!.GetValue<string>();
        Assert.That(uploaded["bytes"]!.GetValue<long>(), Is.EqualTo(data.Length));
        Assert.That(uploaded["href"]!.GetValue<string>(), Is.EqualTo($"/ui/volumes?created={uuid}"));
        var volume = (await VolumesOf("walt")).Single()!;
        Assert.That(volume["uuid"]!.GetValue<string>(), Is.EqualTo(uuid));
        Assert.That(volume["bytes"]!.GetValue<long>(), Is.EqualTo(data.Length), "the bytes arrived whole");
        await using (var content = await _server.Client().GetStreamAsync($"/api/v1/volumes/{uuid}/content"))
        await using (var gunzip = new System.IO.Compression.GZipStream(content, System.IO.Compression.CompressionMode.Decompress))
            Assert.That(Convert.ToHexStringLower(await System.Security.Cryptography.SHA1.HashDataAsync(gunzip)), Is.EqualTo(sha1), "the same bytes come back");
        Assert.That(volume["tag"]!.GetValue<string>(), Is.EqualTo("uploaded"));

        using var bad = new HttpRequestMessage(HttpMethod.Post, "/ui/volumes/upload?tag=" + Uri.EscapeDataString("<b>no</b>")) { Content = new ByteArrayContent(data) };
        bad.Headers.Add("X-CSRF-Token", BrowserSession.CsrfOf(page));
        var problem = await (await walt.Http.SendAsync(bad)).Problem(400);
        Assert.That(problem["field"]?.GetValue<string>(), Is.EqualTo("tag"), problem.ToJsonString());
        Assert.That((await VolumesOf("walt")).Count, Is.EqualTo(1));

        using var vera = await SignedIn("vera");
        var (_, veraPage) = await vera.GetAsync("/ui/volumes");
        Assert.That(veraPage, Does.Not.Contain(uuid), "another user's private volume is not listed");
        var (other, _) = await vera.PostFormAsync($"/ui/volumes/{uuid}/delete", [], "/ui/volumes");
        Assert.That((int)other.StatusCode, Is.EqualTo(404));
    }

    [Test]
    public async Task An_administrator_puts_a_volume_in_quarantine_and_releases_it_and_a_user_cannot()
    {
        var token = await _server.CreateUserAsync("quinn");
        using var quinn = _server.Client(token);
        var volume = await (await quinn.PostAsJsonAsync("/api/v1/volumes", new { size = 1, tag = "to-quarantine" })).Json(201);
        var uuid = volume["uuid"]!.GetValue<string>();
        using var owner = await SignedIn("quinn");
        var (_, ownerPage) = await owner.GetAsync("/ui/volumes");
        Assert.That(ownerPage, Does.Not.Contain($"action=\"/ui/volumes/{uuid}/quarantine\""), "a user has no quarantine button");
        var (refused, _) = await owner.PostFormAsync($"/ui/volumes/{uuid}/quarantine", [], "/ui/volumes");
        Assert.That((int)refused.StatusCode, Is.EqualTo(403));

        await _server.CreateUserAsync("quartermaster", "admin");
        using var boss = await SignedIn("quartermaster");
        var (_, page) = await boss.GetAsync("/ui/volumes");
        Assert.That(page, Does.Contain($"action=\"/ui/volumes/{uuid}/quarantine\"").And.Contain("id=\"no-quarantine\""));
        var (forged, _) = await boss.PostFormAsync($"/ui/volumes/{uuid}/quarantine", [], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403));
        using var admin = _server.Client();
        Assert.That((await (await admin.GetAsync($"/api/v1/volumes/{uuid}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("READY"), "the forged post changed nothing");

        var (done, html) = await boss.PostFormAsync($"/ui/volumes/{uuid}/quarantine", [], "/ui/volumes");
        Assert.That((int)done.StatusCode, Is.EqualTo(302), html);
        Assert.That((await (await admin.GetAsync($"/api/v1/volumes/{uuid}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("QUARANTINED"));
        (_, page) = await boss.GetAsync("/ui/volumes");
        Assert.That(page, Does.Contain("id=\"quarantine\"").And.Contain($"action=\"/ui/volumes/{uuid}/release\""));
        var (again, againHtml) = await boss.PostFormAsync($"/ui/volumes/{uuid}/quarantine", [], "/ui/volumes");
        Assert.That((int)again.StatusCode, Is.EqualTo(409), againHtml);

        (done, html) = await boss.PostFormAsync($"/ui/volumes/{uuid}/release", [], "/ui/volumes");
        Assert.That((int)done.StatusCode, Is.EqualTo(302), html);
        Assert.That((await (await admin.GetAsync($"/api/v1/volumes/{uuid}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("READY"), "usable again");
        var released = await (await admin.PostAsync($"/api/v1/volumes/{uuid}/release", null)).Problem(409);
        Assert.That(released["detail"]!.GetValue<string>(), Does.Contain("not in quarantine"));
        await (await quinn.PostAsync($"/api/v1/volumes/{uuid}/quarantine", null)).Problem(403);
    }

    [Test]
    public async Task Addresses_are_held_and_released_and_leases_listed_on_the_networks_page()
    {
        using var admin = _server.Client();
        var net = await (await admin.PostAsJsonAsync("/api/v1/networks", new { name = "lab" + Guid.NewGuid().ToString("N")[..4], kind = "private", driver = "user", cidr = "10.77.0.0/24" })).Json(201);
        var name = net["name"]!.GetValue<string>();
        await _server.CreateUserAsync("boss" + name, "admin");
        using var boss = await SignedIn("boss" + name);
        var (_, page) = await boss.GetAsync("/ui/networks");
        Assert.That(page, Does.Contain($"id=\"leases-{name}\"").And.Contain($"action=\"/ui/networks/{name}/hold\""));

        var (held, heldHtml) = await boss.PostFormAsync($"/ui/networks/{name}/hold", [new("ip", "10.77.0.50")], "/ui/networks");
        Assert.That((int)held.StatusCode, Is.EqualTo(302), heldHtml);
        var leases = (await (await admin.GetAsync($"/api/v1/networks/{name}/leases?state=held")).Json(200)).AsArray();
        Assert.That(leases.Select(l => l!["ip"]!.GetValue<string>()), Does.Contain("10.77.0.50"), "the API sees the held address");
        (_, page) = await boss.GetAsync("/ui/networks");
        Assert.That(page, Does.Contain("data-ip=\"10.77.0.50\"").And.Contain("aria-label=\"Release 10.77.0.50 on " + name + "\""));

        var (outside, outsideHtml) = await boss.PostFormAsync($"/ui/networks/{name}/hold", [new("ip", "192.0.2.1")], "/ui/networks");
        Assert.That((int)outside.StatusCode, Is.EqualTo(422), outsideHtml);
        Assert.That(outsideHtml, Does.Contain($"id=\"hold-{name}-problem\""), "the refusal is beside the hold form");

        var (forged, _) = await boss.PostFormAsync($"/ui/networks/{name}/release", [new("ip", "10.77.0.50")], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403));
        var (released, releasedHtml) = await boss.PostFormAsync($"/ui/networks/{name}/release", [new("ip", "10.77.0.50")], "/ui/networks");
        Assert.That((int)released.StatusCode, Is.EqualTo(302), releasedHtml);
        Assert.That((await (await admin.GetAsync($"/api/v1/networks/{name}/leases?state=held")).Json(200)).AsArray()
            .Select(l => l!["ip"]!.GetValue<string>()), Does.Not.Contain("10.77.0.50"));

        // Another user's private network: not shown to vera, and not found when she posts to it; its owner may hold there.
        var ownerToken = await _server.CreateUserAsync("netowner" + name);
        using var netOwner = _server.Client(ownerToken);
        var own = (await (await netOwner.PostAsJsonAsync("/api/v1/networks", new { name = "own" + name, kind = "private", driver = "user", cidr = "10.78.0.0/24" })).Json(201))["name"]!.GetValue<string>();
        using var vera = await SignedIn("vera");
        var (_, veraPage) = await vera.GetAsync("/ui/networks");
        Assert.That(veraPage, Does.Not.Contain($"id=\"leases-{own}\""), "a user does not see another user's private network");
        var (notHers, _) = await vera.PostFormAsync($"/ui/networks/{own}/hold", [new("ip", "10.78.0.51")], "/ui/networks");
        Assert.That((int)notHers.StatusCode, Is.EqualTo(404));
        using var ownerPage = await SignedIn("netowner" + name);
        var (byOwner, byOwnerHtml) = await ownerPage.PostFormAsync($"/ui/networks/{own}/hold", [new("ip", "10.78.0.51")], "/ui/networks");
        Assert.That((int)byOwner.StatusCode, Is.EqualTo(302), byOwnerHtml);
    }

    [Test]
    public async Task Security_group_rules_are_added_and_deleted_on_the_networks_page_and_html_is_escaped()
    {
        var token = await _server.CreateUserAsync("sgowner" + Guid.NewGuid().ToString("N")[..4]);
        using var owner = _server.Client(token);
        var me = (await (await owner.GetAsync("/api/v1/users")).Json(200)).AsArray().Single()!["name"]!.GetValue<string>();
        var group = "web-" + Guid.NewGuid().ToString("N")[..6];
        await (await owner.PostAsJsonAsync("/api/v1/security-groups", new { name = group, description = "<script>alert('sg')</script>" })).Json(201);
        using var browser = await SignedIn(me);
        var (_, page) = await browser.GetAsync("/ui/networks");
        Assert.That(page, Does.Contain($"id=\"group-{group}\"").And.Not.Contain("<script>alert('sg')</script>"));
        Assert.That(page, Does.Contain("&lt;script&gt;alert(&#x27;sg&#x27;)&lt;/script&gt;"));

        var (added, addedHtml) = await browser.PostFormAsync($"/ui/security-groups/{group}/rules",
            [new("direction", "inbound"), new("protocol", "tcp"), new("ports", "8000-8080"), new("cidr", "10.0.0.0/8"), new("action", "accept")], "/ui/networks");
        Assert.That((int)added.StatusCode, Is.EqualTo(302), addedHtml);
        var rules = (await (await owner.GetAsync($"/api/v1/security-groups/{group}")).Json(200))["rules"]!.AsArray();
        Assert.That(rules, Has.Count.EqualTo(1));
        var id = rules[0]!["id"]!.GetValue<long>();
        Assert.That(rules[0]!["ports"]?.GetValue<string>(), Is.EqualTo("8000-8080"));

        var (bad, badHtml) = await browser.PostFormAsync($"/ui/security-groups/{group}/rules", [new("direction", "sideways")], "/ui/networks");
        Assert.That((int)bad.StatusCode, Is.EqualTo(400), badHtml);
        Assert.That(badHtml, Does.Contain($"id=\"rule-{group}-problem\"").And.Contain("inbound, outbound"));

        using var walt = await SignedIn("walt");
        var (notHis, _) = await walt.PostFormAsync($"/ui/security-groups/{group}/rules/{id}/delete", [], "/ui/networks");
        Assert.That((int)notHis.StatusCode, Is.EqualTo(404), "another user's group is not found");
        var (forged, _) = await browser.PostFormAsync($"/ui/security-groups/{group}/rules/{id}/delete", [], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403));
        Assert.That((await (await owner.GetAsync($"/api/v1/security-groups/{group}")).Json(200))["rules"]!.AsArray(), Has.Count.EqualTo(1), "nothing changed");

        var (deleted, deletedHtml) = await browser.PostFormAsync($"/ui/security-groups/{group}/rules/{id}/delete", [], "/ui/networks");
        Assert.That((int)deleted.StatusCode, Is.EqualTo(302), deletedHtml);
        Assert.That((await (await owner.GetAsync($"/api/v1/security-groups/{group}")).Json(200))["rules"]!.AsArray(), Is.Empty);
    }
}
