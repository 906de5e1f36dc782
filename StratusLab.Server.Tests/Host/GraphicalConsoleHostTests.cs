using System.Net.WebSockets;
using Microsoft.Playwright;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Modules.Web;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: the graphical console of a real appliance under QEMU. One boot serves every test: QEMU's VNC server on the
/// VM's unix socket, proxied over the REST WebSocket (bearer) and the dashboard's (session cookie, same origin), speaks RFB
/// up to ServerInit with a real framebuffer; other users and other origins are refused.
/// </summary>
public class GraphicalConsoleHostTests
{
    TestServer _server = null!;
    string _user = null!;
    string _token = null!;
    long _id;

    [OneTimeSetUp]
    public async Task Start()
    {
        // PAT ports of its own (ApplianceHost): another server on this machine (a parallel run) may hold the default range's first ports.
        _server = await ApplianceHost.StartAsync();
        _user = "viewer" + Guid.NewGuid().ToString("N")[..6];
        _token = await _server.CreateUserAsync(_user);
        using var http = ApplianceHost.Client(_server, _token);
        _id = (await InstanceApiTests.CreateAsync(http, new { name = "screen-vm" }))["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(http, _id, "RUNNING", 150);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_server is null) return;
        try
        {
            using var admin = ApplianceHost.Client(_server);
            await admin.DeleteAsync($"/api/v1/instances/{_id}");
            await InstanceApiTests.WaitAsync(admin, _id, "DONE", 60);
        }
        finally
        {
            await ApplianceHost.StopAsync(_server);
        }
    }

    Uri Ws(string path) => new UriBuilder(new Uri(_server.BaseAddress, path)) { Scheme = "ws" }.Uri;

    [Test, CancelAfter(120_000)]
    public async Task The_rest_websocket_carries_the_vms_screen_as_rfb_up_to_server_init_with_a_real_framebuffer()
    {
        var vnc = StratusLab.Server.Modules.Compute.Drivers.QemuPaths.For(Path.Combine(_server.DataDir, "instances", _id.ToString())).VncSocket;
        Assert.That(File.Exists(vnc), Is.True, "QEMU serves its screen on a unix socket in the instance directory");
        Assert.That(File.GetUnixFileMode(vnc), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), "no password on it, so only the server's user may connect");
        var pid = HostTools.QemuProcesses(Path.Combine(_server.DataDir, "instances", _id.ToString())).Single();
        var commandLine = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
        Assert.That(commandLine, Does.Contain("unix:" + vnc), "-vnc unix:<socket>, never a TCP port");

        // Twice: closing the first WebSocket leaves the screen usable for the next viewer.
        for (var round = 1; round <= 2; round++)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            using var ws = new ClientWebSocket();
            ws.Options.SetRequestHeader("Authorization", "Bearer " + _token);
            await ws.ConnectAsync(Ws($"/api/v1/instances/{_id}/vnc"), cancel.Token);
            var init = await RfbOverWebSocket.HandshakeAsync(ws, cancel.Token);
            TestContext.Progress.WriteLine($"round {round}: {init}");
            Assert.That(init.Banner, Is.EqualTo("RFB 003.008\n"));
            Assert.That(init.SecurityTypes, Is.EqualTo(new byte[] { 1 }), "security type None: the server authorized the WebSocket");
            Assert.That(init.Width, Is.GreaterThan(0));
            Assert.That(init.Height, Is.GreaterThan(0));
            Assert.That(init.BitsPerPixel, Is.AnyOf(8, 16, 32));
            Assert.That(init.Name, Does.Contain($"stratuslab-{_id}"), "the screen is this VM's (QEMU names it by -name)");
            await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancel.Token);
            Assert.That(ws.State, Is.EqualTo(WebSocketState.Closed));
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task Another_users_websocket_to_the_screen_is_404_and_one_without_a_token_is_401()
    {
        var other = await _server.CreateUserAsync("peeker" + Guid.NewGuid().ToString("N")[..6]);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var stranger = new ClientWebSocket();
        stranger.Options.SetRequestHeader("Authorization", "Bearer " + other);
        stranger.Options.CollectHttpResponseDetails = true;
        Assert.ThrowsAsync<WebSocketException>(() => stranger.ConnectAsync(Ws($"/api/v1/instances/{_id}/vnc"), cancel.Token));
        Assert.That((int)stranger.HttpStatusCode, Is.EqualTo(404), "another user's screen does not exist for them");

        using var anonymous = new ClientWebSocket();
        anonymous.Options.CollectHttpResponseDetails = true;
        Assert.ThrowsAsync<WebSocketException>(() => anonymous.ConnectAsync(Ws($"/api/v1/instances/{_id}/vnc"), cancel.Token));
        Assert.That((int)anonymous.HttpStatusCode, Is.EqualTo(401));
    }

    [Test, CancelAfter(120_000)]
    public async Task The_dashboards_screen_page_loads_novnc_and_its_websocket_carries_the_screen_for_the_session_from_this_site_only()
    {
        using var browser = new BrowserSession(_server);
        Assert.That((int)(await browser.SignInAsync(_user, "password-" + _user)).StatusCode, Is.EqualTo(302));
        var (instancePage, instanceHtml) = await browser.GetAsync($"/ui/instances/{_id}");
        Assert.That((int)instancePage.StatusCode, Is.EqualTo(200));
        Assert.That(instanceHtml, Does.Contain($"href=\"/ui/instances/{_id}/screen\""), "the instance page links to its screen");
        var (page, html) = await browser.GetAsync($"/ui/instances/{_id}/screen");
        Assert.That((int)page.StatusCode, Is.EqualTo(200), html);
        Assert.That(html, Does.Contain($"data-ws=\"/ui/instances/{_id}/vnc\"").And.Contain("/ui/assets/screen.js"));
        var (rfb, module) = await browser.GetAsync("/ui/assets/vendor/novnc/core/rfb.js");
        Assert.That((int)rfb.StatusCode, Is.EqualTo(200));
        Assert.That(rfb.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/javascript"));
        Assert.That(module, Does.Contain("export default class RFB"), "noVNC's ES module is served from the binary");

        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using (var ws = new ClientWebSocket())
        {
            ws.Options.Cookies = browser.Cookies;
            ws.Options.SetRequestHeader("Origin", $"http://{_server.BaseAddress.Authority}");
            await ws.ConnectAsync(Ws($"/ui/instances/{_id}/vnc"), cancel.Token);
            var init = await RfbOverWebSocket.HandshakeAsync(ws, cancel.Token);
            Assert.That(init.Width * init.Height, Is.GreaterThan(0), init.ToString());
            await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancel.Token);
        }

        using var forged = new ClientWebSocket();
        forged.Options.Cookies = browser.Cookies;
        forged.Options.SetRequestHeader("Origin", "http://evil.example");
        forged.Options.CollectHttpResponseDetails = true;
        Assert.ThrowsAsync<WebSocketException>(() => forged.ConnectAsync(Ws($"/ui/instances/{_id}/vnc"), cancel.Token));
        Assert.That((int)forged.HttpStatusCode, Is.EqualTo(403), "a page of another site cannot use the session to reach the screen");
    }

    [Test, CancelAfter(240_000)]
    public async Task In_a_real_browser_the_screen_page_connects_novnc_and_draws_the_vms_screen_on_a_canvas()
    {
        const string Chromium = "/usr/bin/chromium";
        if (!File.Exists(Chromium)) Assert.Ignore($"{Chromium} is missing: install Debian's chromium (scripts/install-deps.sh --test)");
        using var playwright = await Playwright.CreateAsync();
        await using var chromium = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true, Timeout = 60_000,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        var context = await chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = _server.BaseAddress.ToString(), ViewportSize = new ViewportSize { Width = 1200, Height = 900 } });
        context.SetDefaultTimeout(60_000);
        var page = await context.NewPageAsync();
        var problems = new List<string>();
        // Script errors and failed loads (the browser's own /favicon.ico guess aside) would mean CSP or module loading broke.
        page.Console += (_, m) => { if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource", StringComparison.Ordinal)) problems.Add(m.Text); };
        page.Response += (_, r) => { if (r.Status >= 400 && !r.Url.EndsWith("/favicon.ico", StringComparison.Ordinal)) problems.Add($"{r.Status} {r.Url}"); };
        await page.GotoAsync("/ui/signin", new() { WaitUntil = WaitUntilState.Commit });
        await page.GetByLabel("User name").FillAsync(_user);
        await page.GetByLabel("Password").FillAsync("password-" + _user);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync("**/ui/instances", new() { WaitUntil = WaitUntilState.Commit, Timeout = 60_000 });

        await page.GotoAsync($"/ui/instances/{_id}/screen", new() { WaitUntil = WaitUntilState.Commit });
        await page.Locator("#screen[data-connected=true]").WaitForAsync();
        Assert.That(await page.Locator("#screen-status").TextContentAsync(), Does.StartWith("Connected"));
        // noVNC sizes its canvas to the framebuffer once the first update came (the VGA screen of a running guest).
        var size = await page.WaitForFunctionAsync("""
            () => { const c = document.querySelector("#screen canvas"); return c && c.width > 0 && c.height > 0 ? [c.width, c.height] : null; }
            """);
        var dims = await size.JsonValueAsync<int[]>();
        TestContext.Progress.WriteLine($"noVNC canvas: {dims[0]}x{dims[1]}");
        Assert.That(dims[0] * dims[1], Is.GreaterThan(0));
        var path = Path.Combine(TestContext.CurrentContext.WorkDirectory, "web-screenshots", "instance-screen.png");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        TestContext.AddTestAttachment(path, "the screen page");
        Assert.That(problems, Is.Empty, "no script error in the page (CSP, module loading)");
        await context.CloseAsync();
    }
}
