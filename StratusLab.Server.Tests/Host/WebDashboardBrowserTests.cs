using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier, in a real browser: Microsoft.Playwright drives Debian's chromium (never a downloaded browser) against a
/// server on the QEMU driver. One boot of the test appliance serves every step: sign in, launch, see it become ready,
/// read its boot lines and type on its serial console (xterm.js), attach a new volume and see it listed, shut it down;
/// a second user sees none of it; axe-core (vendored) scans each page for serious or critical violations; a screenshot
/// of each page goes to the test output (web-screenshots/).
/// </summary>
// Alone: chromium and a TCG guest at once, with page waits of 30-60 s, would compete with the other workers for 2 cores.
[NonParallelizable]
[Category("Browser")]
public class WebDashboardBrowserTests
{
    const string Chromium = "/usr/bin/chromium";
    TestServer _server = null!;
    IPlaywright _playwright = null!;
    IBrowser _browser = null!;
    string _shots = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        if (!File.Exists(Chromium)) Assert.Ignore($"{Chromium} is missing: install Debian's chromium (scripts/install-deps.sh --test)");
        HostTools.AppliancePath();
        _shots = Path.Combine(TestContext.CurrentContext.WorkDirectory, "web-screenshots");
        Directory.CreateDirectory(_shots);
        _server = await ApplianceHost.StartAsync(new Dictionary<string, string?> { ["Compute:ShutdownTimeoutSeconds"] = "60" });
        await _server.CreateUserAsync("scientist");
        await _server.CreateUserAsync("neighbour");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true, Timeout = 60_000,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_browser is not null) await _browser.CloseAsync();
        _playwright?.Dispose();
        await ApplianceHost.StopAsync(_server);
    }

    async Task<IPage> SignInAsync(string user)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = _server.BaseAddress.ToString(), ViewportSize = new ViewportSize { Width = 1200, Height = 900 } });
        context.SetDefaultTimeout(30_000);
        var page = await context.NewPageAsync();
        await GoAsync(page, "/", "#user");
        Assert.That(page.Url, Does.Contain("/ui/signin"), "an anonymous visitor is sent to the sign-in page");
        await page.GetByLabel("User name").FillAsync(user);
        await page.GetByLabel("Password").FillAsync("password-" + user);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.Locator("table#instances").WaitForAsync(new() { Timeout = 60_000 });
        Assert.That(page.Url, Does.EndWith("/ui/instances"));
        return page;
    }

    /// <summary>axe-core (vendored, served by the binary) on the page as it is: no serious or critical violation.</summary>
    async Task AccessibleAsync(IPage page, string name)
    {
        await page.Locator("footer").WaitForAsync(new() { Timeout = 60_000 });
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(_shots, name + ".png"), FullPage = true });
        TestContext.AddTestAttachment(Path.Combine(_shots, name + ".png"), name);
        await page.AddScriptTagAsync(new PageAddScriptTagOptions { Url = "/ui/assets/vendor/axe/axe.min.js" });
        var violations = await page.EvaluateAsync<string[]>("""
            async () => {
              const r = await axe.run(document, { resultTypes: ["violations"] });
              return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map(n => n.target.join(" ")).join(", ")}`);
            }
            """);
        Assert.That(violations, Is.Empty, $"axe-core on the {name} page");
    }

    static Task<string> TerminalTextAsync(IPage page) => page.EvaluateAsync<string>("""
        () => { const t = window.stratuslabTerminal; if (!t) return "";
          const b = t.buffer.active, lines = [];
          for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
          return lines.join("\n"); }
        """);

    // After a click that navigates, the test waits for an element only the next page has, never for URL or load events:
    // WaitForURL(commit) hung when the navigation had already committed, and "load" timed out on a loaded machine.
    static async Task<IResponse> GoAsync(IPage page, string path, string waitFor)
    {
        var response = await page.GotoAsync(path, new PageGotoOptions { WaitUntil = WaitUntilState.Commit, Timeout = 60_000 });
        await page.Locator(waitFor).First.WaitForAsync(new() { Timeout = 60_000 });
        return response!;
    }

    [Test, CancelAfter(600_000)]
    public async Task A_scientist_runs_the_whole_lifecycle_in_the_browser_and_a_neighbour_sees_none_of_it()
    {
        var anonymous = await _browser.NewPageAsync(new BrowserNewPageOptions { BaseURL = _server.BaseAddress.ToString() });
        await GoAsync(anonymous, "/ui/signin", "#user");
        await AccessibleAsync(anonymous, "signin");
        await anonymous.CloseAsync();

        var page = await SignInAsync("scientist");
        await AccessibleAsync(page, "instances-empty");

        // Launch the default appliance from the form.
        await page.GetByRole(AriaRole.Link, new() { Name = "Launch instances" }).ClickAsync();
        await page.Locator("form.launch").WaitForAsync(new() { Timeout = 60_000 });
        await AccessibleAsync(page, "launch");
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("browser-vm");
        await page.GetByLabel("Context values (one KEY=value per line)").FillAsync("LAB=genomics");
        await page.GetByRole(AriaRole.Button, new() { Name = "Launch" }).ClickAsync();
        var id = long.Parse(await page.Locator("#instance").GetAttributeAsync("data-id", new() { Timeout = 60_000 }) ?? "");
        Assert.That(page.Url, Does.EndWith($"/ui/instances/{id}"));

        // The page follows the events stream and updates itself in place (never reloads) through PENDING, PROLOG, BOOT to RUNNING and ready.
        // The server's word first (booting under TCG on shared cores is slow), then the page's, which must follow within seconds.
        using (var admin = _server.Client())
        {
            admin.Timeout = TimeSpan.FromSeconds(400);
            var running = await InstanceApiTests.WaitAsync(admin, id, "RUNNING", 300);
            Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
            var ready = running;
            for (var i = 0; i < 150 && ready["ready"]?.GetValue<bool>() != true; i++)
            {
                await Task.Delay(1000);
                ready = await (await admin.GetAsync($"/api/v1/instances/{id}")).Json(200);
            }
            Assert.That(ready["ready"]?.GetValue<bool>(), Is.True, "the guest said it is ready: " + ready.ToJsonString());
        }
        try { await page.Locator("#instance[data-state=RUNNING][data-ready=true]").WaitForAsync(new() { Timeout = 30_000 }); }
        catch (TimeoutException)
        {
            Assert.Fail("the page did not follow the events to RUNNING and ready; it shows: " +
                await page.EvaluateAsync<string>("() => { const i = document.getElementById('instance'); return i ? i.outerHTML.slice(0, 400) : document.body.innerText.slice(0, 400); }"));
        }
        await page.Locator("#terminal[data-connected=true]").WaitForAsync(new() { Timeout = 60_000 });
        string text = "";
        for (var i = 0; i < 60 && !(text = await TerminalTextAsync(page)).Contains("stratuslab: boot complete"); i++) await Task.Delay(500);
        Assert.That(text, Does.Contain("stratuslab: mounted proc").And.Contain("stratuslab: boot complete"), "the boot lines show in the console");
        await page.Locator("#terminal").ClickAsync();
        for (var attempt = 0; attempt < 10 && !(text = await TerminalTextAsync(page)).Contains("answer-42"); attempt++)
        {
            await page.Keyboard.TypeAsync("echo answer-$((6*7))");
            await page.Keyboard.PressAsync("Enter");
            await Task.Delay(2000);
        }
        Assert.That(text, Does.Contain("answer-42"), "what is typed in the browser reaches the guest's serial shell");
        await AccessibleAsync(page, "instance-running");

        // A new volume, attached from the instance page, is listed there.
        await page.GetByRole(AriaRole.Link, new() { Name = "Create a volume" }).ClickAsync();
        await page.GetByLabel("Size (GiB)").FillAsync("1");
        await page.GetByLabel("Tag", new() { Exact = true }).FillAsync("browser-disk");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create volume" }).ClickAsync();
        await page.Locator("#volumes", new() { HasText = "browser-disk" }).WaitForAsync();
        await AccessibleAsync(page, "volumes");
        await page.GetByRole(AriaRole.Link, new() { Name = "Images", Exact = true }).ClickAsync();
        await page.Locator("#images").WaitForAsync();
        await AccessibleAsync(page, "images");
        await page.GetByRole(AriaRole.Link, new() { Name = "Networks", Exact = true }).ClickAsync();
        await page.Locator("#networks").WaitForAsync();
        await AccessibleAsync(page, "networks");
        await GoAsync(page, $"/ui/instances/{id}", "#attach-volume");
        await page.GetByLabel("Attach a volume").SelectOptionAsync(new SelectOptionValue { Label = "browser-disk (1 GiB)" });
        await page.GetByRole(AriaRole.Button, new() { Name = "Attach" }).ClickAsync();
        await page.Locator("#attached-volumes", new() { HasText = "browser-disk" }).WaitForAsync();

        // The neighbour sees none of it.
        var neighbour = await SignInAsync("neighbour");
        await GoAsync(neighbour, "/ui/instances?state=all", "#instances");
        Assert.That(await neighbour.Locator("#instances").InnerTextAsync(), Does.Not.Contain("browser-vm"));
        var other = await GoAsync(neighbour, $"/ui/instances/{id}", "p.problem");
        Assert.That(other.Status, Is.EqualTo(404));
        await GoAsync(neighbour, "/ui/volumes", "footer");
        Assert.That(await neighbour.Locator("main").InnerTextAsync(), Does.Not.Contain("browser-disk"));
        await neighbour.Context.CloseAsync();

        // Shut it down: the instances list shows it leave through the events stream (DONE is hidden by default).
        await GoAsync(page, $"/ui/instances/{id}", "#instance[data-state=RUNNING]");
        await page.GetByRole(AriaRole.Button, new() { Name = "Shut down", Exact = true }).ClickAsync();
        // The post answers with the instance page again, no longer RUNNING; only then leave it (leaving earlier would cancel the post).
        await page.Locator("#instance:not([data-state=RUNNING])").WaitForAsync(new() { Timeout = 60_000 });
        await GoAsync(page, "/ui/instances", "#instances");
        using var api = _server.Client();
        api.Timeout = TimeSpan.FromSeconds(300);
        // A graceful shutdown under TCG on shared cores can take a while: the server's own word first, then the page's.
        var done = await InstanceApiTests.WaitAsync(api, id, "DONE", 240);
        Assert.That(done["state"]!.GetValue<string>(), Is.EqualTo("DONE"), done.ToJsonString());
        await page.Locator($"#instances tr[data-id='{id}']").WaitForAsync(new() { State = WaitForSelectorState.Detached, Timeout = 30_000 });
        await AccessibleAsync(page, "instances");
        await page.Context.CloseAsync();
    }
}
