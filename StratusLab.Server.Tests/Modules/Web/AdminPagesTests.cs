using System.Net.Http.Headers;
using System.Net.Http.Json;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Web;

/// <summary>
/// The dashboard's admin pages over HTTP: users and groups, tokens, quotas, hosts, the image policy and its audit. Each
/// works for an administrator through the same services as the API (checked through the API), and a user gets 403 and no link.
/// </summary>
public class AdminPagesTests
{
    TestServer _server = null!;
    string _aliceToken = "";

    static readonly string[] AdminPages = ["/ui/admin/users", "/ui/admin/tokens", "/ui/admin/quotas", "/ui/admin/hosts", "/ui/admin/policy"];

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        _aliceToken = await _server.CreateUserAsync("alice");
        await _server.CreateUserAsync("boss", "admin");
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
    public async Task A_user_sees_no_admin_link_and_every_admin_page_and_form_is_refused_with_403()
    {
        using var alice = await SignedIn("alice");
        var (_, home) = await alice.GetAsync("/ui/instances");
        Assert.That(home, Does.Not.Contain("/ui/admin"), "no Admin link for a user");
        foreach (var path in AdminPages)
        {
            var (response, html) = await alice.GetAsync(path);
            Assert.That((int)response.StatusCode, Is.EqualTo(403), path);
            Assert.That(html, Does.Contain("Only administrators").And.Not.Contain("<table"), path);
        }
        var (post, _) = await alice.PostFormAsync("/ui/admin/users", [new("name", "sneaky"), new("password", "password-sneaky")]);
        Assert.That((int)post.StatusCode, Is.EqualTo(403));
        using var admin = _server.Client();
        Assert.That((int)(await admin.GetAsync("/api/v1/users/sneaky")).StatusCode, Is.EqualTo(404), "the refused form created nothing");

        using var boss = await SignedIn("boss");
        (_, home) = await boss.GetAsync("/ui/instances");
        Assert.That(home, Does.Contain("href=\"/ui/admin/users\""), "an administrator has the Admin link");
        foreach (var path in AdminPages)
            Assert.That((int)(await boss.GetAsync(path)).Response.StatusCode, Is.EqualTo(200), path);
    }

    [Test]
    public async Task An_admin_creates_a_user_and_a_group_from_the_users_page_and_the_user_can_sign_in()
    {
        using var boss = await SignedIn("boss");
        var group = "lab-" + Guid.NewGuid().ToString("N")[..6];
        var (created, html) = await boss.PostFormAsync("/ui/admin/groups", [new("name", group)], "/ui/admin/users");
        Assert.That((int)created.StatusCode, Is.EqualTo(302), html);
        var user = "newbie" + Guid.NewGuid().ToString("N")[..6];
        (created, html) = await boss.PostFormAsync("/ui/admin/users",
            [new("name", user), new("password", "password-" + user), new("role", "user"), new("groups", group)], "/ui/admin/users");
        Assert.That((int)created.StatusCode, Is.EqualTo(302), html);

        var (_, page) = await boss.GetAsync("/ui/admin/users");
        Assert.That(page, Does.Contain($"data-user=\"{user}\"").And.Contain($"<td>{group}</td>"));
        using var admin = _server.Client();
        var view = await (await admin.GetAsync($"/api/v1/users/{user}")).Json(200);
        Assert.That(view["groups"]!.AsArray().Select(g => g!.GetValue<string>()), Does.Contain(group), "the API sees what the page made");
        using var newbie = new BrowserSession(_server);
        Assert.That((int)(await newbie.SignInAsync(user, "password-" + user)).StatusCode, Is.EqualTo(302), "the new user signs in with the password set on the page");

        var (again, refusal) = await boss.PostFormAsync("/ui/admin/users", [new("name", user), new("password", "password-x1")], "/ui/admin/users");
        Assert.That((int)again.StatusCode, Is.EqualTo(409));
        Assert.That(refusal, Does.Contain($"A user named &#x27;{user}&#x27; already exists"));
        var (shortPassword, tooShort) = await boss.PostFormAsync("/ui/admin/users", [new("name", user + "b"), new("password", "short")], "/ui/admin/users");
        Assert.That((int)shortPassword.StatusCode, Is.EqualTo(400));
        Assert.That(tooShort, Does.Contain("8 to 1024 characters"));
        Assert.That((int)(await admin.GetAsync($"/api/v1/users/{user}b")).StatusCode, Is.EqualTo(404), "a refused form creates nothing");

        var (forged, _) = await boss.PostFormAsync("/ui/admin/groups", [new("name", group + "f")], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403), "an admin form without its CSRF token is refused");
        var groups = (await (await admin.GetAsync("/api/v1/groups")).Json(200)).AsArray().Select(g => g!["name"]!.GetValue<string>());
        Assert.That(groups, Does.Contain(group).And.Not.Contain(group + "f"));
    }

    [Test]
    public async Task An_admin_revokes_a_users_token_on_the_tokens_page_and_the_token_stops_working()
    {
        var token = await _server.CreateUserAsync("tokenuser" + Guid.NewGuid().ToString("N")[..6]);
        using var api = _server.Client(token);
        var me = (await (await api.GetAsync("/api/v1/users")).Json(200)).AsArray().Single()!["name"]!.GetValue<string>();
        var id = (await (await api.GetAsync("/api/v1/tokens")).Json(200)).AsArray().Single()!["id"]!.GetValue<string>();

        using var boss = await SignedIn("boss");
        var (_, page) = await boss.GetAsync($"/ui/admin/tokens?user={me}");
        Assert.That(page, Does.Contain($"data-token=\"{id}\"").And.Contain("Revoke"));
        var (revoked, html) = await boss.PostFormAsync($"/ui/admin/tokens/{id}/revoke", [], $"/ui/admin/tokens?user={me}");
        Assert.That((int)revoked.StatusCode, Is.EqualTo(302), html);
        Assert.That((int)(await api.GetAsync("/api/v1/instances")).StatusCode, Is.EqualTo(401), "the revoked token no longer authenticates");
        (_, page) = await boss.GetAsync($"/ui/admin/tokens?user={me}");
        Assert.That(page, Does.Contain("<td>revoked</td>"));
        var (unknown, missing) = await boss.GetAsync("/ui/admin/tokens?user=nobody-here");
        Assert.That((int)unknown.StatusCode, Is.EqualTo(404), missing);
    }

    [Test]
    public async Task An_admin_sets_a_quota_on_the_quotas_page_and_sees_usage_against_it()
    {
        using var alice = _server.Client(_aliceToken);
        var volume = await alice.PostAsJsonAsync("/api/v1/volumes", new { size = 2, tag = "quota-disk" });
        Assert.That((int)volume.StatusCode, Is.EqualTo(201), await volume.Content.ReadAsStringAsync());

        using var boss = await SignedIn("boss");
        var (set, html) = await boss.PostFormAsync("/ui/admin/quotas",
            [new("user", "alice"), new("vms", "3"), new("cpus", ""), new("memoryMiB", "-1"), new("storageGiB", "10")], "/ui/admin/quotas");
        Assert.That((int)set.StatusCode, Is.EqualTo(302), html);
        using var admin = _server.Client();
        var quota = await (await admin.GetAsync("/api/v1/quotas/alice")).Json(200);
        Assert.That(quota["limits"]!["vms"]!.GetValue<long>(), Is.EqualTo(3));
        Assert.That(quota["limits"]!["memoryMiB"]!.GetValue<long>(), Is.EqualTo(-1));
        Assert.That(quota["limits"]!["storageGiB"]!.GetValue<long>(), Is.EqualTo(10));

        var (_, page) = await boss.GetAsync("/ui/admin/quotas");
        var row = page[page.IndexOf("data-user=\"alice\"", StringComparison.Ordinal)..];
        row = row[..row.IndexOf("</tr>", StringComparison.Ordinal)];
        Assert.That(row, Does.Contain("<meter min=\"0\" max=\"10\" value=\"2\"").And.Contain("2 of 10 GiB"), "storage used against its limit, as a bar");
        Assert.That(row, Does.Contain("0 of 3").And.Contain("(no limit)"));

        var (bad, problem) = await boss.PostFormAsync("/ui/admin/quotas", [new("user", "alice"), new("vms", "many")], "/ui/admin/quotas");
        Assert.That((int)bad.StatusCode, Is.EqualTo(400));
        Assert.That(problem, Does.Contain("&#x27;vms&#x27; = &#x27;many&#x27; is not a whole number"));
        var (negative, _) = await boss.PostFormAsync("/ui/admin/quotas", [new("user", "alice"), new("vms", "-5")], "/ui/admin/quotas");
        Assert.That((int)negative.StatusCode, Is.EqualTo(400), "the service's own check applies");
        quota = await (await admin.GetAsync("/api/v1/quotas/alice")).Json(200);
        Assert.That(quota["limits"]!["vms"]!.GetValue<long>(), Is.EqualTo(3), "a refused form changes nothing");
    }

    [Test]
    public async Task An_admin_adds_a_simulated_host_drains_it_and_returns_it_to_placement()
    {
        using var boss = await SignedIn("boss");
        var name = "sim-" + Guid.NewGuid().ToString("N")[..6];
        var (added, html) = await boss.PostFormAsync("/ui/admin/hosts", [new("name", name), new("cpus", "8"), new("memoryMiB", "16384")], "/ui/admin/hosts");
        Assert.That((int)added.StatusCode, Is.EqualTo(302), html);
        var (_, page) = await boss.GetAsync("/ui/admin/hosts");
        Assert.That(page, Does.Contain($"data-host=\"{name}\"").And.Contain("0 of 8").And.Contain("0 of 16384 MiB"));
        using var admin = _server.Client();
        Assert.That((await (await admin.GetAsync($"/api/v1/hosts/{name}")).Json(200))["driver"]!.GetValue<string>(), Is.EqualTo("simulated"));

        var (drained, _) = await boss.PostFormAsync($"/ui/admin/hosts/{name}/drain", [], "/ui/admin/hosts");
        Assert.That((int)drained.StatusCode, Is.EqualTo(302));
        Assert.That((await (await admin.GetAsync($"/api/v1/hosts/{name}")).Json(200))["enabled"]!.GetValue<bool>(), Is.False);
        (_, page) = await boss.GetAsync("/ui/admin/hosts");
        Assert.That(page, Does.Contain($"Undrain {name}"));
        var (undrained, _) = await boss.PostFormAsync($"/ui/admin/hosts/{name}/undrain", [], "/ui/admin/hosts");
        Assert.That((int)undrained.StatusCode, Is.EqualTo(302));
        Assert.That((await (await admin.GetAsync($"/api/v1/hosts/{name}")).Json(200))["enabled"]!.GetValue<bool>(), Is.True);

        var (taken, refusal) = await boss.PostFormAsync("/ui/admin/hosts", [new("name", name), new("cpus", "8"), new("memoryMiB", "16384")], "/ui/admin/hosts");
        Assert.That((int)taken.StatusCode, Is.EqualTo(409));
        Assert.That(refusal, Does.Contain("already exists"));
        var (unknown, _) = await boss.PostFormAsync("/ui/admin/hosts/no-such-host/drain", [], "/ui/admin/hosts");
        Assert.That((int)unknown.StatusCode, Is.EqualTo(404));
    }

    [Test]
    public async Task The_policy_page_shows_the_lists_in_force_and_a_refused_launch_in_the_audit_trail()
    {
        await TestImages.RegisterDefaultAsync(_server, "audited-web");
        using var admin = _server.Client();
        var images = (await (await admin.GetAsync("/api/v1/images")).Json(200)).AsArray();
        var identifier = images.Single(i => i!["names"]!.AsArray().Any(n => n!.GetValue<string>() == "audited-web"))!["identifier"]!.GetValue<string>();
        await (await admin.PutAsJsonAsync("/api/v1/policy", new { blacklistImages = new[] { identifier } })).Json(200);
        using var alice = _server.Client(_aliceToken);
        await (await alice.PostAsJsonAsync("/api/v1/instances", new { image = "audited-web" })).Problem(403);

        using var boss = await SignedIn("boss");
        var (_, page) = await boss.GetAsync("/ui/admin/policy");
        Assert.That(page, Does.Contain($"<dt>Blacklisted images</dt><dd>{identifier}</dd>"));
        var (_, filtered) = await boss.GetAsync($"/ui/admin/policy?user=alice&decision=refused&identifier={identifier}");
        var table = filtered[filtered.IndexOf("id=\"audit\"", StringComparison.Ordinal)..];
        Assert.That(table, Does.Contain("<td>alice</td>").And.Contain("blacklist-image").And.Contain("refused"));
        var (_, accepted) = await boss.GetAsync($"/ui/admin/policy?user=alice&decision=accepted&identifier={identifier}");
        Assert.That(accepted, Does.Contain("No launch decision matches."));
    }

    [Test]
    public async Task A_session_follows_the_users_role_at_each_request_and_ends_when_the_user_is_deleted()
    {
        var name = "carol" + Guid.NewGuid().ToString("N")[..6];
        await _server.CreateUserAsync(name, "admin");
        using var carol = await SignedIn(name);
        Assert.That((int)(await carol.GetAsync("/ui/admin/users")).Response.StatusCode, Is.EqualTo(200));

        using var admin = _server.Client();
        await (await admin.PutAsJsonAsync($"/api/v1/users/{name}", new { role = "user" })).Json(200);
        var (demoted, html) = await carol.GetAsync("/ui/admin/users");
        Assert.That((int)demoted.StatusCode, Is.EqualTo(403), "the demotion applies at the session's next request");
        var (_, home) = await carol.GetAsync("/ui/instances");
        Assert.That(home, Does.Not.Contain("/ui/admin").And.Not.Contain("(admin)"));
        var (_, csrfPage) = await carol.GetAsync("/ui/instances");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/hosts") { Content = JsonContent.Create(new { name = "by-demoted", driver = "simulated", cpus = 1, memoryMiB = 128 }) };
        request.Headers.Add("X-CSRF-Token", BrowserSession.CsrfOf(csrfPage));
        Assert.That((int)(await carol.Http.SendAsync(request)).StatusCode, Is.EqualTo(403), "nor does the API take the session as an admin's");

        await (await admin.PutAsJsonAsync($"/api/v1/users/{name}", new { role = "admin" })).Json(200);
        Assert.That((int)(await carol.GetAsync("/ui/admin/users")).Response.StatusCode, Is.EqualTo(200), "a promotion applies at once too");

        await (await admin.PutAsJsonAsync($"/api/v1/users/{name}", new { role = "user" })).Json(200);
        var tokens = (await (await admin.GetAsync($"/api/v1/tokens?user={name}")).Json(200)).AsArray();
        foreach (var t in tokens) await admin.DeleteAsync($"/api/v1/tokens/{t!["id"]!.GetValue<string>()}");
        Assert.That((int)(await admin.DeleteAsync($"/api/v1/users/{name}")).StatusCode, Is.EqualTo(204));
        var (gone, _) = await carol.GetAsync("/ui/instances");
        Assert.That((int)gone.StatusCode, Is.EqualTo(302));
        Assert.That(gone.Headers.Location!.ToString(), Does.Contain("/ui/signin"), "a deleted user's session ends");
        Assert.That((int)(await carol.Http.GetAsync("/api/v1/instances")).StatusCode, Is.EqualTo(401));
    }
}

/// <summary>The dashboard session's idle timeout, with a short one configured (Web:IdleTimeoutSeconds).</summary>
public class WebSessionTimeoutTests
{
    [Test, CancelAfter(120_000)]
    public async Task A_session_in_use_stays_signed_in_and_one_idle_past_the_timeout_is_signed_out()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Web:IdleTimeoutSeconds"] = "10" });
        await server.CreateUserAsync("idler");
        using var browser = new BrowserSession(server);
        Assert.That((int)(await browser.SignInAsync("idler", "password-idler")).StatusCode, Is.EqualTo(302));
        // Used every 3 s for 15 s, past the 10 s timeout: each use slides it.
        for (var i = 0; i < 5; i++)
        {
            await Task.Delay(3000);
            var (used, _) = await browser.GetAsync("/ui/volumes");
            Assert.That((int)used.StatusCode, Is.EqualTo(200), $"a session in use stays signed in (request {i + 1})");
        }
        await Task.Delay(13_000);
        var (idle, _) = await browser.GetAsync("/ui/volumes");
        Assert.That((int)idle.StatusCode, Is.EqualTo(302), "a session idle past the timeout is signed out");
        Assert.That(idle.Headers.Location!.ToString(), Does.Contain("/ui/signin"));
    }
}
