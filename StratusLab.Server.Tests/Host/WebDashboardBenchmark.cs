using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.Playwright;
using StratusLab.Server.Tests.Modules.Web;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Figures for the note: the server's time to render the instances page with 1,000 (simulated) instances, next to the
/// REST list of the same 1,000 in the same run; first paint and interactive in Chromium for that page, next to the
/// Marketplace page. Not part of the suite: run scripts/bench/web-dashboard.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/web-dashboard.sh")]
[Category("Benchmark")]
[NonParallelizable]
public class WebDashboardBenchmark
{
    static void Report(string line)
    {
        TestContext.Progress.WriteLine(line);
        if (Environment.GetEnvironmentVariable("WEB_BENCH_OUT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    static double Median(List<double> xs) { xs.Sort(); return xs[xs.Count / 2]; }

    [Test, CancelAfter(900_000)]
    public async Task Instances_page_with_1000_instances_server_render_and_browser_paint()
    {
        var runs = int.Parse(Environment.GetEnvironmentVariable("WEB_BENCH_RUNS") ?? "20");
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Identity:DefaultQuota:Vms"] = "-1", ["Identity:DefaultQuota:Cpus"] = "-1", ["Identity:DefaultQuota:MemoryMiB"] = "-1", ["Identity:DefaultQuota:StorageGiB"] = "-1",
        });
        var token = await server.CreateUserAsync("bench");
        using var api = server.Client(token);
        api.Timeout = TimeSpan.FromMinutes(5);
        using (var admin = server.Client())
        {
            // The default network has 240 addresses; 1,000 instances need a wider one.
            var net = await admin.PostAsJsonAsync("/api/v1/networks", new { name = "wide", kind = "public", driver = "user", cidr = "10.96.0.0/21" });
            Assert.That((int)net.StatusCode, Is.EqualTo(201), await net.Content.ReadAsStringAsync());
            var host = await admin.PostAsJsonAsync("/api/v1/hosts", new { name = "big", driver = "simulated", cpus = 1024, memoryMiB = 256 * 1024 });
            Assert.That((int)host.StatusCode, Is.EqualTo(201), await host.Content.ReadAsStringAsync());
        }
        var launched = await api.PostAsJsonAsync("/api/v1/instances", new { name = "many", count = 1000, networks = new[] { "wide" } });
        Assert.That((int)launched.StatusCode, Is.EqualTo(201), await launched.Content.ReadAsStringAsync());
        var listed = await (await api.GetAsync("/api/v1/instances?limit=1000")).Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonArray>();
        Assert.That(listed!.Count, Is.EqualTo(1000));

        using var browser = new BrowserSession(server);
        await browser.SignInAsync("bench", "password-bench");
        async Task<double> Time(Func<Task<HttpResponseMessage>> get)
        {
            var watch = Stopwatch.StartNew();
            using var response = await get();
            var body = await response.Content.ReadAsByteArrayAsync();
            Assert.That((int)response.StatusCode, Is.EqualTo(200));
            return watch.Elapsed.TotalMilliseconds;
        }
        for (var i = 0; i < 3; i++) { await Time(() => browser.Http.GetAsync("/ui/instances")); await Time(() => api.GetAsync("/api/v1/instances?limit=1000")); }
        List<double> page = [], rest = [];
        for (var i = 0; i < runs; i++)
        {
            page.Add(await Time(() => browser.Http.GetAsync("/ui/instances")));
            rest.Add(await Time(() => api.GetAsync("/api/v1/instances?limit=1000")));
        }
        var (_, html) = await browser.GetAsync("/ui/instances");
        Report($"instances page, 1,000 instances: server render median {Median(page):F1} ms ({html.Length / 1024} KiB HTML) vs REST GET /api/v1/instances?limit=1000 median {Median(rest):F1} ms; ratio page/REST {Median(page) / Median(rest):F2} ({runs} runs each, loopback)");

        if (!File.Exists("/usr/bin/chromium")) { Report("chromium missing: no browser figures"); return; }
        using var playwright = await Playwright.CreateAsync();
        await using var chromium = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        var context = await chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = server.BaseAddress.ToString() });
        var tab = await context.NewPageAsync();
        await tab.GotoAsync("/ui/signin");
        await tab.GetByLabel("User name").FillAsync("bench");
        await tab.GetByLabel("Password").FillAsync("password-bench");
        await tab.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await tab.WaitForURLAsync("**/ui/instances");
        const string Measure = """
            () => { const n = performance.getEntriesByType("navigation")[0];
              const fcp = performance.getEntriesByName("first-contentful-paint")[0];
              return [fcp ? fcp.startTime : -1, n.domInteractive, n.domContentLoadedEventEnd]; }
            """;
        async Task<(double Paint, double Interactive)> Load(string path)
        {
            List<double> paint = [], interactive = [];
            for (var i = 0; i < 5; i++)
            {
                await tab.GotoAsync(path, new() { WaitUntil = WaitUntilState.Load });
                await tab.WaitForTimeoutAsync(200);
                var m = await tab.EvaluateAsync<double[]>(Measure);
                paint.Add(m[0]);
                interactive.Add(m[2]);
            }
            return (Median(paint), Median(interactive));
        }
        var dashboard = await Load("/ui/instances");
        var market = await Load("/marketplace");
        Report($"Chromium, instances page with 1,000 rows: first contentful paint {dashboard.Paint:F0} ms, interactive (DOMContentLoaded done, scripts and the events stream attached) {dashboard.Interactive:F0} ms, paint to interactive {dashboard.Interactive - dashboard.Paint:F0} ms");
        Report($"Chromium, /marketplace (same run, reference): first contentful paint {market.Paint:F0} ms, interactive {market.Interactive:F0} ms; dashboard/marketplace interactive ratio {dashboard.Interactive / market.Interactive:F2}");
    }
}
