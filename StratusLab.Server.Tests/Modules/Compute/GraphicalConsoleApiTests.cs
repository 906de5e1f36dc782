using System.Net.WebSockets;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Web;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>
/// The graphical console's refusals over HTTP with the simulated driver (which has no screen): REST (/api/v1/instances/{id}/vnc)
/// and the dashboard (/ui/instances/{id}/vnc and the screen page). The screen itself is in Host/GraphicalConsoleHostTests.
/// </summary>
public class GraphicalConsoleApiTests
{
    TestServer _server = null!;
    string _ownerToken = null!;
    string _ownerName = null!;
    long _id;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await TestImages.RegisterDefaultAsync(_server);
        _ownerName = "screen" + Guid.NewGuid().ToString("N")[..6];
        _ownerToken = await _server.CreateUserAsync(_ownerName);
        using var owner = _server.Client(_ownerToken);
        _id = (await InstanceApiTests.CreateAsync(owner, new { name = "no-screen" }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(owner, _id, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    Dictionary<string, string> Bearer(string token) => new() { ["Authorization"] = "Bearer " + token };

    [Test, CancelAfter(60_000)]
    public async Task The_graphical_console_of_a_simulated_instance_is_a_conflict_that_says_the_driver_has_no_screen()
    {
        var (status, body) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/api/v1/instances/{_id}/vnc", Bearer(_ownerToken));
        Assert.That(status, Is.EqualTo(409), body);
        var problem = JsonNode.Parse(body)!;
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain($"Instance {_id} has no graphical console").And.Contain("simulated driver").And.Contain("no screen"));
    }

    [Test, CancelAfter(60_000)]
    public async Task The_graphical_console_without_a_token_is_401_and_another_users_is_404()
    {
        var (anonymous, _) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/api/v1/instances/{_id}/vnc");
        Assert.That(anonymous, Is.EqualTo(401));

        var stranger = await _server.CreateUserAsync("peek" + Guid.NewGuid().ToString("N")[..6]);
        var (hidden, body) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/api/v1/instances/{_id}/vnc", Bearer(stranger));
        Assert.That(hidden, Is.EqualTo(404), body);
        Assert.That(body, Does.Not.Contain("simulated"), "nothing about someone else's instance leaks");
        var (missing, _) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, "/api/v1/instances/999999/vnc", Bearer(_ownerToken));
        Assert.That(missing, Is.EqualTo(404));
    }

    [Test, CancelAfter(60_000)]
    public async Task The_graphical_console_of_a_stopped_instance_is_a_conflict_that_says_to_start_it()
    {
        using var owner = _server.Client(_ownerToken);
        var id = (await InstanceApiTests.CreateAsync(owner, new { name = "stopped-screen" }))["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(owner, id, "RUNNING");
        await (await owner.PostAsync($"/api/v1/instances/{id}/actions/stop", null)).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(owner, id, "STOPPED"))["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"));
        var (status, body) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/api/v1/instances/{id}/vnc", Bearer(_ownerToken));
        Assert.That(status, Is.EqualTo(409), body);
        Assert.That(JsonNode.Parse(body)!["detail"]!.GetValue<string>(), Does.Contain($"Instance {id} is STOPPED").And.Contain("start the instance"));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_plain_get_of_the_graphical_console_is_400_and_names_the_screen_page()
    {
        using var owner = _server.Client(_ownerToken);
        var problem = await (await owner.GetAsync($"/api/v1/instances/{_id}/vnc")).Problem(400);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("WebSocket").And.Contain($"/ui/instances/{_id}/screen"));
    }

    [Test, CancelAfter(60_000)]
    public async Task The_dashboards_screen_page_of_a_simulated_instance_says_why_there_is_no_screen_and_its_websocket_refuses()
    {
        using var browser = new BrowserSession(_server);
        Assert.That((int)(await browser.SignInAsync(_ownerName, "password-" + _ownerName)).StatusCode, Is.EqualTo(302));
        var (page, html) = await browser.GetAsync($"/ui/instances/{_id}/screen");
        Assert.That((int)page.StatusCode, Is.EqualTo(409), html);
        Assert.That(html, Does.Contain("simulated driver, which runs no VM and so has no screen"));
        Assert.That(html, Does.Not.Contain("screen.js"), "no viewer is loaded for a screen that does not exist");

        var cookie = $"stratuslab.session={browser.Session!.Value}";
        var (refused, body) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/ui/instances/{_id}/vnc",
            new Dictionary<string, string> { ["Cookie"] = cookie, ["Origin"] = $"http://{_server.BaseAddress.Authority}" });
        Assert.That(refused, Is.EqualTo(409), body);
        Assert.That(body, Does.Contain("simulated driver"));

        var (foreign, why) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/ui/instances/{_id}/vnc",
            new Dictionary<string, string> { ["Cookie"] = cookie, ["Origin"] = "http://evil.example" });
        Assert.That(foreign, Is.EqualTo(403), why);
        Assert.That(why, Does.Contain("only pages of this site"));

        var (anonymous, _) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/ui/instances/{_id}/vnc");
        Assert.That(anonymous, Is.EqualTo(302), "no session: sent to the sign-in page, never connected");

        using var other = new BrowserSession(_server);
        var stranger = "peek" + Guid.NewGuid().ToString("N")[..6];
        await _server.CreateUserAsync(stranger);
        Assert.That((int)(await other.SignInAsync(stranger, "password-" + stranger)).StatusCode, Is.EqualTo(302));
        var (hidden, _) = await WebSocketUpgrade.RefusalAsync(_server.BaseAddress, $"/ui/instances/{_id}/vnc",
            new Dictionary<string, string> { ["Cookie"] = $"stratuslab.session={other.Session!.Value}" });
        Assert.That(hidden, Is.EqualTo(404));
        var (otherPage, _) = await other.GetAsync($"/ui/instances/{_id}/screen");
        Assert.That((int)otherPage.StatusCode, Is.EqualTo(404));
    }
}
