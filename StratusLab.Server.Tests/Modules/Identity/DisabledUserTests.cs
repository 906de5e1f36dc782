using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Modules.Web;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Identity;

/// <summary>
/// An administrator disables a user (REST, CLI, admin page): every credential of theirs is refused with one clear message
/// (password through the API, the CLI and the dashboard, bearer tokens, EC2 access keys, a dashboard session already open),
/// and enabling the account restores them all.
/// </summary>
public class DisabledUserTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start() => _server = await TestServer.StartAsync();

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    static HttpClient WithBasic(TestServer server, string user, string password)
    {
        var http = server.Client(null);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return http;
    }

    const string DescribeScript = "print(json.dumps({'error': error(lambda: ec2.describe_instances())}))\n";

    [Test]
    public async Task A_disabled_user_is_refused_by_every_door_with_the_same_message_until_enabled_again()
    {
        var name = "carol" + Guid.NewGuid().ToString("N")[..6];
        var token = await _server.CreateUserAsync(name);
        using var admin = _server.Client();
        var key = await Ec2Key.CreateAsync(admin, name);
        using var session = new BrowserSession(_server);
        Assert.That((int)(await session.SignInAsync(name, "password-" + name)).StatusCode, Is.EqualTo(302));
        Assert.That((int)(await session.GetAsync("/ui/instances")).Response.StatusCode, Is.EqualTo(200), "the session works before");

        using var user = _server.Client(token);
        Assert.That((int)(await user.PostAsync($"/api/v1/users/{name}/disable", null)).StatusCode, Is.EqualTo(403), "a user may not disable anyone");
        var disabled = await (await admin.PostAsync($"/api/v1/users/{name}/disable", null)).Json(200);
        Assert.That(disabled["disabledAt"]?.GetValue<DateTimeOffset>(), Is.Not.Null);
        Assert.That((await (await admin.GetAsync($"/api/v1/users/{name}")).Json(200))["disabledAt"], Is.Not.Null, "the user's view shows it");

        // The API: the token and the right password are refused (403, naming the account); a wrong password stays a plain 401.
        var byToken = await (await user.GetAsync("/api/v1/instances")).Problem(403);
        Assert.That(byToken["detail"]!.GetValue<string>(), Does.Contain($"'{name}' is disabled").And.Contain("ask an administrator"));
        using (var basic = WithBasic(_server, name, "password-" + name))
            Assert.That((await (await basic.PostAsJsonAsync("/api/v1/tokens", new { })).Problem(403))["detail"]!.GetValue<string>(), Does.Contain("is disabled"));
        using (var wrong = WithBasic(_server, name, "not-the-password"))
            Assert.That((await (await wrong.PostAsJsonAsync("/api/v1/tokens", new { })).Problem(401))["detail"]!.GetValue<string>(), Does.Not.Contain("disabled"),
                "without the right password nothing says the account exists");

        // The dashboard: the open session ends at its next request with the message; signing in again is refused.
        var (ended, endedHtml) = await session.GetAsync("/ui/instances");
        Assert.That((int)ended.StatusCode, Is.EqualTo(403));
        Assert.That(endedHtml, Does.Contain("Account disabled").And.Contain($"&#x27;{name}&#x27; is disabled"));
        Assert.That((int)(await session.GetAsync("/ui/instances")).Response.StatusCode, Is.EqualTo(302), "the session cookie was removed");
        using var again = new BrowserSession(_server);
        var refused = await again.SignInAsync(name, "password-" + name);
        Assert.That((int)refused.StatusCode, Is.EqualTo(403));
        Assert.That(await refused.Content.ReadAsStringAsync(), Does.Contain("is disabled"));
        Assert.That(again.Session, Is.Null, "no session for a disabled account");

        // EC2: the access key is refused as AuthFailure, with the reason.
        var ec2 = await Ec2Clients.Boto3Async(_server, key, DescribeScript);
        Assert.That(ec2["error"]?["code"]?.GetValue<string>(), Is.EqualTo("AuthFailure"), ec2.ToJsonString());
        Assert.That(ec2["error"]!["message"]!.GetValue<string>(), Does.Contain("is disabled"));

        // Enabled again: everything works as before; nothing was deleted.
        Assert.That((await (await admin.PostAsync($"/api/v1/users/{name}/enable", null)).Json(200))["disabledAt"], Is.Null);
        Assert.That((int)(await user.GetAsync("/api/v1/instances")).StatusCode, Is.EqualTo(200), "the same token works again");
        Assert.That((int)(await again.SignInAsync(name, "password-" + name)).StatusCode, Is.EqualTo(302));
        Assert.That((int)(await again.GetAsync("/ui/instances")).Response.StatusCode, Is.EqualTo(200));
        Assert.That((await Ec2Clients.Boto3Async(_server, key, DescribeScript))["error"], Is.Null, "the same access key works again");
    }

    [Test]
    public async Task An_administrator_cannot_disable_themselves_and_an_unknown_user_is_not_found()
    {
        using var admin = _server.Client();
        var self = await (await admin.PostAsync("/api/v1/users/admin/disable", null)).Problem(409);
        Assert.That(self["detail"]!.GetValue<string>(), Does.Contain("your own account"));
        Assert.That((int)(await admin.GetAsync("/api/v1/instances")).StatusCode, Is.EqualTo(200), "the admin still works");
        await (await admin.PostAsync("/api/v1/users/nobody-here/disable", null)).Problem(404);
    }

    [Test]
    public async Task The_admin_users_page_disables_and_enables_a_user_and_a_forged_post_changes_nothing()
    {
        var name = "dave" + Guid.NewGuid().ToString("N")[..6];
        await _server.CreateUserAsync(name);
        await _server.CreateUserAsync("boss" + name, "admin");
        using var boss = new BrowserSession(_server);
        Assert.That((int)(await boss.SignInAsync("boss" + name, "password-boss" + name)).StatusCode, Is.EqualTo(302));
        var (_, page) = await boss.GetAsync("/ui/admin/users");
        Assert.That(page, Does.Contain($"action=\"/ui/admin/users/{name}/disable\"").And.Contain($"aria-label=\"Disable {name}\""));
        Assert.That(page, Does.Not.Contain($"action=\"/ui/admin/users/boss{name}/disable\""), "no button to disable oneself");

        var (forged, _) = await boss.PostFormAsync($"/ui/admin/users/{name}/disable", [], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403));
        using var admin = _server.Client();
        Assert.That((await (await admin.GetAsync($"/api/v1/users/{name}")).Json(200))["disabledAt"], Is.Null, "the forged post changed nothing");

        var (done, html) = await boss.PostFormAsync($"/ui/admin/users/{name}/disable", [], "/ui/admin/users");
        Assert.That((int)done.StatusCode, Is.EqualTo(302), html);
        Assert.That((await (await admin.GetAsync($"/api/v1/users/{name}")).Json(200))["disabledAt"], Is.Not.Null);
        (_, page) = await boss.GetAsync("/ui/admin/users");
        Assert.That(page, Does.Contain("disabled since").And.Contain($"action=\"/ui/admin/users/{name}/enable\""));
        using (var refused = new BrowserSession(_server))
            Assert.That((int)(await refused.SignInAsync(name, "password-" + name)).StatusCode, Is.EqualTo(403));

        (done, html) = await boss.PostFormAsync($"/ui/admin/users/{name}/enable", [], "/ui/admin/users");
        Assert.That((int)done.StatusCode, Is.EqualTo(302), html);
        using var back = new BrowserSession(_server);
        Assert.That((int)(await back.SignInAsync(name, "password-" + name)).StatusCode, Is.EqualTo(302));
        var (self, selfHtml) = await boss.PostFormAsync($"/ui/admin/users/boss{name}/disable", [], "/ui/admin/users");
        Assert.That((int)self.StatusCode, Is.EqualTo(409));
        Assert.That(selfHtml, Does.Contain("your own account"));
    }

    [Test]
    public async Task The_command_line_disables_and_enables_a_user_and_login_reports_the_disabled_account()
    {
        var name = "erin" + Guid.NewGuid().ToString("N")[..6];
        await _server.CreateUserAsync(name);
        async Task<(int Code, string Out, string Err)> Run(params string[] args)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var code = await ClientCli.RunAsync([.. args, "--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken], output, error);
            return (code, output.ToString(), error.ToString());
        }
        var off = await Run("user-disable", name);
        Assert.That(off.Code, Is.Zero, off.Err);
        Assert.That(off.Out, Does.StartWith($"disabled user {name} (since "));
        var table = (await Run("user-list")).Out.Split('\n');
        Assert.That(table[0], Does.Contain("STATE"));
        Assert.That(table.Single(l => l.StartsWith(name, StringComparison.Ordinal) || l.Contains(" " + name + " ")), Does.Contain(" disabled "));

        var config = TempDir.Create("cli-login-disabled");
        var previousConfig = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        var previousIn = Console.In;
        try
        {
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", config);
            Console.SetIn(new StringReader($"password-{name}\n"));
            var error = new StringWriter();
            Assert.That(await ClientCli.RunAsync(["login", "--endpoint", _server.BaseAddress.ToString(), "--username", name, "--password-stdin"], new StringWriter(), error), Is.EqualTo(1));
            Assert.That(error.ToString(), Does.Contain($"'{name}' is disabled").And.Contain("ask an administrator"));
            Assert.That(File.Exists(Path.Combine(config, "stratuslab", "client.json")), Is.False, "nothing stored");
        }
        finally
        {
            Console.SetIn(previousIn);
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", previousConfig);
            TempDir.Delete(config);
        }

        var on = await Run("user-enable", name);
        Assert.That(on.Code, Is.Zero, on.Err);
        Assert.That(on.Out.Trim(), Is.EqualTo($"enabled user {name}"));
    }
}
