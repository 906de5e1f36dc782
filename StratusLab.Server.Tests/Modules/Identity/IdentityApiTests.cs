using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Identity;

public class IdentityApiTests
{
    TestServer _server = null!;

    [OneTimeSetUp] public async Task Start() => _server = await TestServer.StartAsync();
    [OneTimeTearDown] public async Task Stop() => await _server.DisposeAsync();

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    [Test]
    public async Task Health_needs_no_token()
    {
        using var anonymous = _server.Client(token: null);
        var health = await (await anonymous.GetAsync("/health")).Json(200);
        Assert.That(health["status"]!.GetValue<string>(), Is.EqualTo("ok"));
    }

    [Test]
    public async Task The_admin_can_create_a_user_who_then_sees_only_themselves()
    {
        var name = Unique("alice");
        var token = await _server.CreateUserAsync(name);
        using var alice = _server.Client(token);
        var users = (await (await alice.GetAsync("/api/v1/users")).Json(200)).AsArray();
        Assert.That(users.Select(u => u!["name"]!.GetValue<string>()), Is.EqualTo(new[] { name }));
        await (await alice.GetAsync("/api/v1/users/admin")).Problem(404);
    }

    [Test]
    public async Task Without_a_token_every_api_call_is_401_problem_json()
    {
        using var anonymous = _server.Client(token: null);
        var problem = await (await anonymous.GetAsync("/api/v1/users")).Problem(401);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("Bearer"));
        await (await anonymous.PostAsJsonAsync("/api/v1/tokens", new { })).Problem(401);
    }

    [Test]
    public async Task A_made_up_token_is_401()
    {
        using var bad = _server.Client("slt_notARealTokenAtAll");
        await (await bad.GetAsync("/api/v1/users")).Problem(401);
    }

    [Test]
    public async Task A_revoked_token_stops_working_at_once()
    {
        var token = await _server.CreateUserAsync(Unique("bob"));
        using var bob = _server.Client(token);
        var list = (await (await bob.GetAsync("/api/v1/tokens")).Json(200)).AsArray();
        Assert.That(list, Has.Count.EqualTo(1));
        Assert.That(list[0]!.ToJsonString(), Does.Not.Contain(token), "lists never show the secret");
        await (await bob.DeleteAsync($"/api/v1/tokens/{list[0]!["id"]}")).Json(204);
        await (await bob.GetAsync("/api/v1/users")).Problem(401);
    }

    [Test]
    public async Task An_expired_token_is_401()
    {
        var name = Unique("carol");
        await _server.CreateUserAsync(name);
        using var admin = _server.Client();
        var created = await (await admin.PostAsJsonAsync("/api/v1/tokens", new { user = name, expiresAt = DateTimeOffset.UtcNow.AddSeconds(1) })).Json(201);
        using var carol = _server.Client(created["token"]!.GetValue<string>());
        await (await carol.GetAsync("/api/v1/users")).Json(200);
        await Task.Delay(1500);
        await (await carol.GetAsync("/api/v1/users")).Problem(401);
        var listed = (await (await admin.GetAsync($"/api/v1/tokens?user={name}")).Json(200)).AsArray();
        Assert.That(listed.Select(t => t!["state"]!.GetValue<string>()), Has.Member("expired"));
    }

    [Test]
    public async Task A_token_expiring_in_the_past_is_refused_naming_the_field()
    {
        using var admin = _server.Client();
        var problem = await (await admin.PostAsJsonAsync("/api/v1/tokens", new { expiresAt = "2001-01-01T00:00:00Z" })).Problem(400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("expiresAt"));
    }

    [Test]
    public async Task A_password_gets_a_first_token_with_basic_auth()
    {
        var name = Unique("dave");
        await _server.CreateUserAsync(name);
        using var basic = _server.Client(token: null);
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{name}:password-{name}")));
        var created = await (await basic.PostAsJsonAsync("/api/v1/tokens", new { name = "laptop" })).Json(201);
        Assert.That(created["token"]!.GetValue<string>(), Does.StartWith("slt_"));
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{name}:wrong-password")));
        await (await basic.GetAsync("/api/v1/users")).Problem(401);
    }

    [Test]
    public async Task A_user_cannot_create_users_raise_their_role_or_their_quota()
    {
        var name = Unique("eve");
        using var eve = _server.Client(await _server.CreateUserAsync(name));
        await (await eve.PostAsJsonAsync("/api/v1/users", new { name = Unique("x") })).Problem(403);
        await (await eve.PutAsJsonAsync($"/api/v1/users/{name}", new { role = "admin" })).Problem(403);
        await (await eve.PostAsJsonAsync($"/api/v1/quotas/{name}", new { vms = 1000 })).Problem(403);
        await (await eve.PostAsJsonAsync("/api/v1/tokens", new { user = "admin" })).Problem(403);
        var me = await (await eve.GetAsync($"/api/v1/users/{name}")).Json(200);
        Assert.That(me["role"]!.GetValue<string>(), Is.EqualTo("user"));
    }

    [Test]
    public async Task A_user_may_change_their_own_password()
    {
        var name = Unique("fay");
        using var fay = _server.Client(await _server.CreateUserAsync(name));
        await (await fay.PutAsJsonAsync($"/api/v1/users/{name}", new { password = "a-new-password" })).Json(200);
        await (await fay.PutAsJsonAsync($"/api/v1/users/{name}", new { password = "short" })).Problem(400);
    }

    [Test]
    public async Task Another_users_objects_are_404_not_403()
    {
        var owner = Unique("gil");
        using var gil = _server.Client(await _server.CreateUserAsync(owner));
        using var hal = _server.Client(await _server.CreateUserAsync(Unique("hal")));
        var gilsToken = (await (await gil.GetAsync("/api/v1/tokens")).Json(200)).AsArray()[0]!["id"]!.GetValue<string>();
        await (await hal.DeleteAsync($"/api/v1/tokens/{gilsToken}")).Problem(404);
        await (await hal.GetAsync($"/api/v1/quotas/{owner}")).Problem(404);
        await (await hal.GetAsync($"/api/v1/users/{owner}")).Problem(404);
        await (await hal.GetAsync($"/api/v1/tokens?user={owner}")).Problem(404);
    }

    [TestCase("""{"name": 42}""", "name")]
    [TestCase("""{"name": "ok-name", "role": 3}""", "role")]
    [TestCase("""{"name": "ok-name", "colour": "red"}""", "colour")]
    [TestCase("""{"password": "longenough"}""", "name")]
    [TestCase("""{"name": "bad name;rm -rf"}""", "name")]
    [TestCase("""{"name": "../etc"}""", "name")]
    [TestCase("""{"name": "ok-name2", "role": "superuser"}""", "role")]
    [TestCase("""{"name": "ok-name3", "groups": ["no-such-group"]}""", "groups")]
    public async Task Bad_user_input_is_400_naming_the_field(string json, string field)
    {
        using var admin = _server.Client();
        var problem = await (await admin.PostAsync("/api/v1/users", Http.RawJson(json))).Problem(400);
        Assert.That(problem["field"]?.GetValue<string>() ?? problem["detail"]!.GetValue<string>(), Does.Contain(field));
    }

    [Test]
    public async Task Malformed_json_is_400_never_500()
    {
        using var admin = _server.Client();
        await (await admin.PostAsync("/api/v1/users", Http.RawJson("{\"name\": "))).Problem(400);
        await (await admin.PostAsync("/api/v1/users", Http.RawJson("[1,2,3]"))).Problem(400);
        await (await admin.PostAsync("/api/v1/users", new StringContent("name=x", Encoding.UTF8, "text/plain"))).Problem(415);
    }

    [Test]
    public async Task An_oversize_body_is_413()
    {
        using var admin = _server.Client();
        var huge = "{\"name\": \"" + new string('a', 2 * 1024 * 1024) + "\"}";
        var response = await admin.PostAsync("/api/v1/users", Http.RawJson(huge));
        await response.Problem(413);
    }

    [Test]
    public async Task A_duplicate_user_name_is_a_conflict()
    {
        var name = Unique("ivy");
        await _server.CreateUserAsync(name);
        using var admin = _server.Client();
        await (await admin.PostAsJsonAsync("/api/v1/users", new { name = name.ToUpperInvariant() })).Problem(409);
    }

    [Test]
    public async Task Quotas_use_the_site_default_until_an_admin_sets_them()
    {
        var name = Unique("jon");
        using var jon = _server.Client(await _server.CreateUserAsync(name));
        var quota = await (await jon.GetAsync($"/api/v1/quotas/{name}")).Json(200);
        Assert.That(quota["limits"]!["vms"]!.GetValue<long>(), Is.EqualTo(20));
        Assert.That(quota["usage"]!["vms"]!.GetValue<long>(), Is.EqualTo(0));
        using var admin = _server.Client();
        var set = await (await admin.PostAsJsonAsync($"/api/v1/quotas/{name}", new { vms = 3, cpus = -1 })).Json(200);
        Assert.That(set["limits"]!["vms"]!.GetValue<long>(), Is.EqualTo(3));
        Assert.That(set["limits"]!["cpus"]!.GetValue<long>(), Is.EqualTo(-1));
        await (await admin.PostAsJsonAsync($"/api/v1/quotas/{name}", new { vms = -5 })).Problem(400);
        await (await admin.PostAsJsonAsync("/api/v1/quotas/nobody-here", new { vms = 1 })).Problem(404);
    }

    [Test]
    public async Task The_last_admin_cannot_be_demoted_or_delete_themselves()
    {
        using var admin = _server.Client();
        await (await admin.DeleteAsync("/api/v1/users/admin")).Problem(409);
    }

    [Test]
    public async Task Groups_can_be_created_joined_and_only_deleted_when_empty()
    {
        using var admin = _server.Client();
        var group = Unique("physics");
        await (await admin.PostAsJsonAsync("/api/v1/groups", new { name = group })).Json(201);
        var user = Unique("kim");
        await (await admin.PostAsJsonAsync("/api/v1/users", new { name = user, groups = new[] { group } })).Json(201);
        await (await admin.DeleteAsync($"/api/v1/groups/{group}")).Problem(409);
        await (await admin.PutAsJsonAsync($"/api/v1/users/{user}", new { groups = Array.Empty<string>() })).Json(200);
        await (await admin.DeleteAsync($"/api/v1/groups/{group}")).Json(204);
        await (await admin.DeleteAsync("/api/v1/groups/users")).Problem(409);
    }

    [Test]
    public async Task Paging_limits_are_checked()
    {
        using var admin = _server.Client();
        var one = (await (await admin.GetAsync("/api/v1/users?limit=1")).Json(200)).AsArray();
        Assert.That(one, Has.Count.EqualTo(1));
        var problem = await (await admin.GetAsync("/api/v1/users?limit=0")).Problem(400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("limit"));
        await (await admin.GetAsync("/api/v1/users?limit=abc")).Problem(400);
    }

    [Test]
    public async Task Unknown_paths_and_methods_are_problem_json()
    {
        using var admin = _server.Client();
        await (await admin.GetAsync("/api/v1/nothing-here")).Problem(404);
        await (await admin.PatchAsync("/api/v1/users", Http.RawJson("{}"))).Problem(405);
    }

    [Test]
    public async Task Openapi_docs_and_metrics_are_served_from_the_binary()
    {
        using var anonymous = _server.Client(token: null);
        var openapi = await (await anonymous.GetAsync("/openapi/v1.json")).Json(200);
        Assert.That(openapi["paths"]!.AsObject().Select(p => p.Key), Has.Member("/api/v1/users"));
        var docs = await anonymous.GetAsync("/docs/index.html");
        Assert.That((int)docs.StatusCode, Is.EqualTo(200));
        Assert.That(await docs.Content.ReadAsStringAsync(), Does.Contain("swagger").IgnoreCase.And.Not.Contain("cdn"));
        await anonymous.GetAsync("/health");
        var metrics = await (await anonymous.GetAsync("/metrics")).Content.ReadAsStringAsync();
        Assert.That(metrics, Does.Contain("http_server_request_duration"));
    }
}
