using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Web;

/// <summary>The dashboard's page handlers over HTTP, without a browser: session, CSRF, authorization, escaping, live events.</summary>
public class WebPagesTests
{
    const string Trusted = "web-trusted@example.org";
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Marketplace:WhitelistedCertificates:0"] = MetadataFactory.Thumbprint(MetadataFactory.Key(Trusted)),
            ["Marketplace:Pages:Title"] = "Lab <Cloud>",
        });
        await _server.CreateUserAsync("alice");
        await _server.CreateUserAsync("bob");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    async Task<BrowserSession> SignedIn(string user)
    {
        var browser = new BrowserSession(_server);
        var response = await browser.SignInAsync(user, "password-" + user);
        Assert.That((int)response.StatusCode, Is.EqualTo(302), await response.Content.ReadAsStringAsync());
        return browser;
    }

    [Test]
    public async Task The_root_leads_to_the_dashboard_and_an_anonymous_visitor_to_the_sign_in_page()
    {
        using var browser = new BrowserSession(_server);
        var (root, _) = await browser.GetAsync("/");
        Assert.That((int)root.StatusCode, Is.EqualTo(302));
        Assert.That(root.Headers.Location!.ToString(), Is.EqualTo("/ui/instances"));
        var (page, _) = await browser.GetAsync("/ui/instances");
        Assert.That((int)page.StatusCode, Is.EqualTo(302));
        Assert.That(page.Headers.Location!.ToString(), Does.Contain("/ui/signin"));
        var (signin, html) = await browser.GetAsync("/ui/signin");
        Assert.That((int)signin.StatusCode, Is.EqualTo(200));
        Assert.That(html, Does.Contain("<label for=\"password\">Password</label>"));
        Assert.That(html, Does.Contain("Lab &lt;Cloud&gt;"), "the site title comes from Marketplace:Pages, escaped");
        Assert.That(html, Does.Contain("href=\"/marketplace/style.css\""), "one look with the Marketplace pages");
    }

    [Test]
    public async Task Signing_in_gives_an_http_only_same_site_session_cookie_and_signing_out_ends_it()
    {
        using var browser = new BrowserSession(_server);
        var response = await browser.SignInAsync("alice", "password-alice");
        Assert.That((int)response.StatusCode, Is.EqualTo(302));
        var setCookie = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("stratuslab.session="));
        Assert.That(setCookie, Does.Contain("httponly").IgnoreCase);
        Assert.That(setCookie, Does.Contain("samesite=strict").IgnoreCase);
        Assert.That(setCookie, Does.Not.Contain("secure").IgnoreCase, "served over plain HTTP here; Secure comes with TLS");
        var (page, html) = await browser.GetAsync("/ui/instances");
        Assert.That((int)page.StatusCode, Is.EqualTo(200), html);
        Assert.That(html, Does.Contain("alice"));

        var (signedOut, _) = await browser.PostFormAsync("/ui/signout", []);
        Assert.That((int)signedOut.StatusCode, Is.EqualTo(302));
        var (after, _) = await browser.GetAsync("/ui/instances");
        Assert.That((int)after.StatusCode, Is.EqualTo(302), "signed out: the dashboard asks to sign in again");
    }

    [Test]
    public async Task A_wrong_password_is_refused_with_the_form_again_and_no_session()
    {
        using var browser = new BrowserSession(_server);
        var response = await browser.SignInAsync("bob", "not-his-password");
        var html = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(401));
        Assert.That(html, Does.Contain("The user name or the password is wrong"));
        Assert.That(browser.Session, Is.Null);
    }

    [Test]
    public async Task The_sign_in_form_refuses_a_post_without_its_csrf_token()
    {
        using var browser = new BrowserSession(_server);
        var response = await browser.Http.PostAsync("/ui/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["user"] = "alice", ["password"] = "password-alice" }));
        Assert.That((int)response.StatusCode, Is.EqualTo(403));
        Assert.That(browser.Session, Is.Null);
    }

    [Test]
    public async Task A_forged_form_post_without_the_csrf_token_is_refused_and_changes_nothing()
    {
        using var browser = await SignedIn("alice");
        var tag = "forged-" + Guid.NewGuid().ToString("N")[..6];
        var (forged, html) = await browser.PostFormAsync("/ui/volumes", [new("size", "1"), new("tag", tag)], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403), html);
        Assert.That(html, Does.Contain("Nothing was changed"));
        var (_, list) = await browser.GetAsync("/ui/volumes");
        Assert.That(list, Does.Not.Contain(tag));

        var (real, _) = await browser.PostFormAsync("/ui/volumes", [new("size", "1"), new("tag", tag)], fromPage: "/ui/volumes");
        Assert.That((int)real.StatusCode, Is.EqualTo(302), "the same form with its token is accepted");
        (_, list) = await browser.GetAsync("/ui/volumes");
        Assert.That(list, Does.Contain(tag));
    }

    [Test]
    public async Task The_session_reaches_the_api_for_reads_but_writes_need_the_csrf_header_while_bearer_tokens_keep_working()
    {
        using var browser = await SignedIn("alice");
        Assert.That((int)(await browser.Http.GetAsync("/api/v1/volumes")).StatusCode, Is.EqualTo(200));
        var forged = await browser.Http.PostAsJsonAsync("/api/v1/volumes", new { size = 1, tag = "api-forged" });
        var problem = await forged.Problem(401);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("X-CSRF-Token"));

        var (_, page) = await browser.GetAsync("/ui/volumes");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/volumes") { Content = JsonContent.Create(new { size = 1, tag = "api-with-token" }) };
        request.Headers.Add("X-CSRF-Token", BrowserSession.CsrfOf(page));
        Assert.That((int)(await browser.Http.SendAsync(request)).StatusCode, Is.EqualTo(201));

        using var admin = _server.Client();
        var all = (await (await admin.GetAsync("/api/v1/volumes")).Json(200)).AsArray();
        Assert.That(all.Select(v => v!["tag"]?.GetValue<string>()), Does.Not.Contain("api-forged").And.Contain("api-with-token"));
    }

    [Test]
    public async Task Another_users_instance_page_is_not_found_and_their_list_does_not_show_it()
    {
        using var alice = await SignedIn("alice");
        var (launched, html) = await alice.PostFormAsync("/ui/instances", [new("name", "alices-vm"), new("count", "1")], fromPage: "/ui/instances/new");
        Assert.That((int)launched.StatusCode, Is.EqualTo(302), html);
        var path = launched.Headers.Location!.ToString();
        Assert.That(path, Does.Match("^/ui/instances/[0-9]+$"));
        var (own, ownHtml) = await alice.GetAsync(path);
        Assert.That((int)own.StatusCode, Is.EqualTo(200), ownHtml);
        Assert.That(ownHtml, Does.Contain("alices-vm"));

        using var bob = await SignedIn("bob");
        var (other, _) = await bob.GetAsync(path);
        Assert.That((int)other.StatusCode, Is.EqualTo(404));
        var (_, list) = await bob.GetAsync("/ui/instances?state=all");
        Assert.That(list, Does.Not.Contain("alices-vm"));
        var (act, _) = await bob.PostFormAsync(path + "/actions/terminate", []);
        Assert.That((int)act.StatusCode, Is.EqualTo(404), "bob cannot terminate it either");
        Assert.That((await alice.GetAsync(path)).Html, Does.Not.Contain("state-badge epilog").And.Not.Contain("state-badge done"));

        using var console = new ClientWebSocket();
        console.Options.Cookies = bob.Cookies;
        var ws = new Uri($"ws://{_server.BaseAddress.Authority}{path.Replace("/ui/", "/api/v1/")}/console/ws");
        var refused = Assert.ThrowsAsync<WebSocketException>(() => console.ConnectAsync(ws, CancellationToken.None));
        Assert.That(refused!.Message, Does.Contain("404"), "the console WebSocket refuses other users");
    }

    [Test]
    public async Task The_console_websocket_refuses_a_session_from_another_origin()
    {
        using var alice = await SignedIn("alice");
        var (launched, _) = await alice.PostFormAsync("/ui/instances", [new("name", "origin-vm")], fromPage: "/ui/instances/new");
        var id = launched.Headers.Location!.ToString().Split('/').Last();
        using var console = new ClientWebSocket();
        console.Options.Cookies = alice.Cookies;
        console.Options.SetRequestHeader("Origin", "http://evil.example");
        var refused = Assert.ThrowsAsync<WebSocketException>(() => console.ConnectAsync(new Uri($"ws://{_server.BaseAddress.Authority}/api/v1/instances/{id}/console/ws"), CancellationToken.None));
        Assert.That(refused!.Message, Does.Contain("401"));
    }

    [Test]
    public async Task The_launch_form_shows_the_apis_problem_beside_the_field_at_fault()
    {
        using var alice = await SignedIn("alice");
        var (bad, html) = await alice.PostFormAsync("/ui/instances", [new("name", "ok"), new("count", "0")], fromPage: "/ui/instances/new");
        Assert.That((int)bad.StatusCode, Is.EqualTo(400));
        Assert.That(html, Does.Match("id=\"count-problem\" role=\"alert\">[^<]*count"));
        Assert.That(html, Does.Contain("aria-describedby=\"count-problem\""));

        (bad, html) = await alice.PostFormAsync("/ui/instances", [new("name", "ok"), new("instanceType", "no-such-type")], fromPage: "/ui/instances/new");
        Assert.That((int)bad.StatusCode, Is.EqualTo(400).Or.EqualTo(422));
        Assert.That(html, Does.Contain("id=\"instanceType-problem\""));
    }

    [Test]
    public async Task Html_in_names_tags_descriptions_context_and_user_data_is_escaped_everywhere()
    {
        const string Evil = "<script>alert(1)</script>";
        using var admin = _server.Client();
        var draft = MetadataFactory.Draft(title: "T" + Evil, tags: ["x" + Evil], description: "D" + Evil);
        await (await admin.PostAsync("/api/v1/marketplace/metadata", MetadataFactory.Xml(MetadataFactory.Signed(draft, MetadataFactory.Key(Trusted))))).Json(201);

        using var alice = await SignedIn("alice");
        var (_, form) = await alice.GetAsync("/ui/instances/new?q=" + Uri.EscapeDataString(Evil));
        Assert.That(form, Does.Contain("Search the Marketplace"));
        var (_, search) = await alice.GetAsync("/ui/instances/new");
        Assert.That(search, Does.Contain(draft.Identifier), "the entry is offered in the appliance picker");
        Assert.That(search, Does.Contain("T&lt;script&gt;alert(1)&lt;/script&gt;"));
        Assert.That(search, Does.Contain("Site policy: accepted"));

        var (badName, nameHtml) = await alice.PostFormAsync("/ui/instances", [new("name", Evil)], fromPage: "/ui/instances/new");
        Assert.That((int)badName.StatusCode, Is.EqualTo(400));
        Assert.That(nameHtml, Does.Contain("&lt;script&gt;"), "the refused name is echoed escaped");

        var (launched, launchHtml) = await alice.PostFormAsync("/ui/instances",
            [new("name", "escaped"), new("context", "NOTE=" + Evil), new("userData", "#!/bin/sh\necho '" + Evil + "'")], fromPage: "/ui/instances/new");
        Assert.That((int)launched.StatusCode, Is.EqualTo(302), launchHtml);
        var (_, instance) = await alice.GetAsync(launched.Headers.Location!.ToString());
        Assert.That(instance, Does.Contain("NOTE=&lt;script&gt;"));

        var (refusedTag, volumes) = await alice.PostFormAsync("/ui/volumes", [new("size", "1"), new("tag", "v" + Evil)], fromPage: "/ui/volumes");
        Assert.That((int)refusedTag.StatusCode, Is.EqualTo(400), "Pdisk refuses markup in tags; the page says so beside the field");
        Assert.That(volumes, Does.Contain("id=\"tag-problem\"").And.Contain("v&lt;script&gt;alert(1)&lt;/script&gt;"));

        foreach (var page in new[] { form, search, nameHtml, instance, volumes })
            Assert.That(page, Does.Not.Contain(Evil), "no page carries the raw markup");
    }

    [Test]
    public async Task The_events_stream_tells_the_session_of_its_own_instances_live_and_not_of_others()
    {
        using var alice = await SignedIn("alice");
        using var bob = await SignedIn("bob");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stream = await bob.Http.GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.That(stream.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/event-stream"));
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cts.Token));
        await alice.PostFormAsync("/ui/instances", [new("name", "not-for-bob")], fromPage: "/ui/instances/new");
        var (launched, _) = await bob.PostFormAsync("/ui/instances", [new("name", "bobs-live")], fromPage: "/ui/instances/new");
        Assert.That((int)launched.StatusCode, Is.EqualTo(302));
        var seen = new List<string>();
        while (!cts.IsCancellationRequested)
        {
            var line = await reader.ReadLineAsync(cts.Token);
            if (line is null) break;
            if (!line.StartsWith("data: ")) continue;
            seen.Add(line);
            if (line.Contains("bobs-live") && line.Contains("\"RUNNING\"")) break;
        }
        Assert.That(seen, Has.Some.Contains("bobs-live").And.Some.Contains("\"RUNNING\""));
        Assert.That(seen, Has.None.Contains("not-for-bob"));
    }

    [Test]
    public async Task A_volume_attached_from_the_instance_page_is_listed_there_and_detaching_removes_it()
    {
        using var alice = await SignedIn("alice");
        using var token = _server.Client();
        var (launched, _) = await alice.PostFormAsync("/ui/instances", [new("name", "with-disk")], fromPage: "/ui/instances/new");
        var path = launched.Headers.Location!.ToString();
        var id = long.Parse(path.Split('/').Last());
        await InstanceApiTests.WaitAsync(token, id, "RUNNING");
        var tag = "disk-" + Guid.NewGuid().ToString("N")[..6];
        await alice.PostFormAsync("/ui/volumes", [new("size", "1"), new("tag", tag)], fromPage: "/ui/volumes");
        var (_, volumes) = await alice.GetAsync("/ui/volumes");
        var uuid = System.Text.RegularExpressions.Regex.Match(volumes, $"<td>{tag}<div class=\"id\">([0-9a-f-]+)</div>").Groups[1].Value;
        Assert.That(uuid, Is.Not.Empty, volumes);

        var (attached, html) = await alice.PostFormAsync(path + "/volumes", [new("volume", uuid)], fromPage: path);
        Assert.That((int)attached.StatusCode, Is.EqualTo(302), html);
        var (_, page) = await alice.GetAsync(path);
        Assert.That(page, Does.Contain("id=\"attached-volumes\"").And.Contain(tag));

        var (detached, _) = await alice.PostFormAsync($"{path}/volumes/{uuid}/detach", [], fromPage: path);
        Assert.That((int)detached.StatusCode, Is.EqualTo(302));
        (_, page) = await alice.GetAsync(path);
        Assert.That(page, Does.Not.Contain("id=\"attached-volumes\""));
    }

    [Test]
    public async Task An_action_the_state_does_not_allow_is_shown_on_the_instance_page_with_the_apis_conflict()
    {
        using var alice = await SignedIn("alice");
        using var token = _server.Client();
        var (launched, _) = await alice.PostFormAsync("/ui/instances", [new("name", "to-stop")], fromPage: "/ui/instances/new");
        var path = launched.Headers.Location!.ToString();
        await InstanceApiTests.WaitAsync(token, long.Parse(path.Split('/').Last()), "RUNNING");
        var (refused, html) = await alice.PostFormAsync(path + "/actions/start", [], fromPage: path);
        Assert.That((int)refused.StatusCode, Is.EqualTo(409), html);
        Assert.That(html, Does.Contain("role=\"alert\""));
        var (shut, _) = await alice.PostFormAsync(path + "/actions/shutdown", [], fromPage: path);
        Assert.That((int)shut.StatusCode, Is.EqualTo(302));
    }

    [Test]
    public async Task The_images_and_networks_pages_list_the_cache_the_networks_and_their_security_group_rules()
    {
        using var alice = await SignedIn("alice");
        var (images, imagesHtml) = await alice.GetAsync("/ui/images");
        Assert.That((int)images.StatusCode, Is.EqualTo(200), imagesHtml);
        var catalog = await _server.App.Services.GetRequiredService<StratusLab.Server.Modules.Images.Contracts.IImageCatalog>().ListAsync();
        Assert.That(catalog, Is.Not.Empty);
        foreach (var image in catalog)
            Assert.That(imagesHtml, Does.Contain($">{System.Net.WebUtility.HtmlEncode(image.Image)}</a>"));
        var (networks, networksHtml) = await alice.GetAsync("/ui/networks");
        Assert.That((int)networks.StatusCode, Is.EqualTo(200), networksHtml);
        Assert.That(networksHtml, Does.Contain("id=\"networks\"").And.Contain("default"));
        Assert.That(networksHtml, Does.Contain("<h2>Security groups</h2>"));
    }

    [TestCase("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;")]
    [TestCase("\" onmouseover=\"x", "&quot; onmouseover=&quot;x")]
    [TestCase("it's & <b>", "it&#x27;s &amp; &lt;b&gt;")]
    public void Every_hole_of_a_page_template_is_encoded_for_text_and_attributes(string value, string encoded)
    {
        var html = StratusLab.Server.Modules.Web.Html.H($"<a title=\"{value}\">{value}</a>");
        Assert.That(html.Value, Is.EqualTo($"<a title=\"{encoded}\">{encoded}</a>"));
        var trusted = StratusLab.Server.Modules.Web.Html.H($"<p>{html}</p>");
        Assert.That(trusted.Value, Is.EqualTo($"<p>{html.Value}</p>"), "markup already built is not encoded twice");
    }

    [Test]
    public async Task The_embedded_vendored_assets_are_served_with_an_etag()
    {
        using var browser = new BrowserSession(_server);
        foreach (var asset in new[] { "vendor/xterm/xterm.js", "vendor/xterm/xterm.css", "vendor/axe/axe.min.js", "vendor/novnc/core/rfb.js", "dashboard.js", "dashboard.css", "console.js" })
        {
            var response = await browser.Http.GetAsync("/ui/assets/" + asset);
            Assert.That((int)response.StatusCode, Is.EqualTo(200), asset);
            Assert.That(response.Headers.ETag, Is.Not.Null, asset);
            using var again = new HttpRequestMessage(HttpMethod.Get, "/ui/assets/" + asset);
            again.Headers.IfNoneMatch.Add(response.Headers.ETag!);
            Assert.That((int)(await browser.Http.SendAsync(again)).StatusCode, Is.EqualTo(304), asset);
        }
        Assert.That((int)(await browser.Http.GetAsync("/ui/assets/nothing.js")).StatusCode, Is.EqualTo(404));
    }
}
