using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Web;

/// <summary>
/// The admin image cache page: entries with state and live download progress (server-sent events while downloads are in
/// flight, then one idle event), prefetch (by URL here) and evict, through Images' IImageCacheAdministration; checked
/// through GET /api/v1/images.
/// </summary>
public class AdminImageCachePageTests
{
    TestServer _server = null!;
    ImageServer _images = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _images = await ImageServer.StartAsync();
        _server = await TestServer.StartAsync();
        await _server.CreateUserAsync("cachier", "admin");
        await _server.CreateUserAsync("plain");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _server.DisposeAsync();
        await _images.DisposeAsync();
    }

    async Task<JsonObject?> CachedAsync(string url)
    {
        using var admin = _server.Client();
        return (await (await admin.GetAsync("/api/v1/images")).Json(200)).AsArray().Select(i => i!.AsObject()).FirstOrDefault(i => i["image"]!.GetValue<string>() == url);
    }

    [Test]
    public async Task A_prefetch_from_the_page_shows_its_progress_live_until_ready_and_evict_removes_it()
    {
        using var admin = new BrowserSession(_server);
        Assert.That((int)(await admin.SignInAsync("cachier", "password-cachier")).StatusCode, Is.EqualTo(302));
        _images.SlowBytesPerSecond = 512 * 1024;
        var url = _images.Add("page-" + Guid.NewGuid().ToString("N")[..6] + ".raw", RandomNumberGenerator.GetBytes(3 << 20), slow: true).ToString();

        var clock = Stopwatch.StartNew();
        var (started, startedHtml) = await admin.PostFormAsync("/ui/admin/images/prefetch", [new("image", url)], "/ui/admin/images");
        Assert.That((int)started.StatusCode, Is.EqualTo(302), startedHtml);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5.5)), "the page does not wait for a 6 s download");
        var (_, page) = await admin.GetAsync("/ui/admin/images");
        Assert.That(page, Does.Contain("data-live=\"1\"").And.Contain($"aria-label=\"Download of {url}\""), "the download is shown in progress");

        // The page's stream: snapshots while the download runs (growing), then idle.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/ui/admin/images/progress");
        using var response = await admin.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var seen = new List<long>();
        var idle = false;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        while (!idle && await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            var e = JsonNode.Parse(line[6..])!;
            idle = e["idle"]!.GetValue<bool>();
            if (e["downloads"]!.AsArray().FirstOrDefault(d => d!["image"]!.GetValue<string>() == url) is { } mine)
            {
                seen.Add(mine["bytesDone"]!.GetValue<long>());
                Assert.That(mine["bytesTotal"]?.GetValue<long>(), Is.EqualTo(3 << 20));
            }
        }
        Assert.That(idle, Is.True, "the stream ends with an idle event");
        Assert.That(seen, Has.Count.GreaterThanOrEqualTo(2), "several snapshots while it downloaded");
        Assert.That(seen, Is.Ordered, "progress only grows");
        Assert.That(seen[^1], Is.GreaterThan(seen[0]));
        Assert.That((await CachedAsync(url))!["state"]!.GetValue<string>(), Is.EqualTo("ready"));
        (_, page) = await admin.GetAsync("/ui/admin/images");
        Assert.That(page, Does.Not.Contain("data-live=\"1\"").And.Contain($"data-image=\"{url}\""));

        var (forged, _) = await admin.PostFormAsync("/ui/admin/images/evict", [new("image", url)], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.EqualTo(403));
        Assert.That(await CachedAsync(url), Is.Not.Null, "the forged evict changed nothing");
        var (evicted, evictedHtml) = await admin.PostFormAsync("/ui/admin/images/evict", [new("image", url)], "/ui/admin/images");
        Assert.That((int)evicted.StatusCode, Is.EqualTo(302), evictedHtml);
        Assert.That(await CachedAsync(url), Is.Null, "evicted");
        var (again, againHtml) = await admin.PostFormAsync("/ui/admin/images/evict", [new("image", url)], "/ui/admin/images");
        Assert.That((int)again.StatusCode, Is.EqualTo(404), againHtml);
    }

    [Test]
    public async Task A_bad_reference_is_refused_beside_the_field_escaped_and_a_user_may_not_see_the_cache()
    {
        using var admin = new BrowserSession(_server);
        Assert.That((int)(await admin.SignInAsync("cachier", "password-cachier")).StatusCode, Is.EqualTo(302));
        var (refused, html) = await admin.PostFormAsync("/ui/admin/images/prefetch", [new("image", "<script>alert(1)</script>")], "/ui/admin/images");
        Assert.That((int)refused.StatusCode, Is.EqualTo(422), html);
        Assert.That(html, Does.Contain("id=\"image-problem\"").And.Contain("Unknown image"));
        Assert.That(html, Does.Not.Contain("<script>alert(1)</script>").And.Contain("&lt;script&gt;alert(1)&lt;/script&gt;"));
        var (ftp, ftpHtml) = await admin.PostFormAsync("/ui/admin/images/prefetch", [new("image", "ftp://127.0.0.1/x.raw")], "/ui/admin/images");
        Assert.That((int)ftp.StatusCode, Is.EqualTo(400), ftpHtml);

        using var plain = new BrowserSession(_server);
        Assert.That((int)(await plain.SignInAsync("plain", "password-plain")).StatusCode, Is.EqualTo(302));
        Assert.That((int)(await plain.GetAsync("/ui/admin/images")).Response.StatusCode, Is.EqualTo(403));
        Assert.That((int)(await plain.GetAsync("/ui/admin/images/progress")).Response.StatusCode, Is.EqualTo(403));
        var url = _images.Add("plain.raw", new byte[1 << 20]).ToString();
        var (post, _) = await plain.PostFormAsync("/ui/admin/images/prefetch", [new("image", url)], "/ui/instances");
        Assert.That((int)post.StatusCode, Is.EqualTo(403));
        Assert.That(await CachedAsync(url), Is.Null, "a user's prefetch did nothing");
        using var token = _server.Client(await _server.CreateUserAsync("plain2"));
        Assert.That((int)(await token.PostAsync("/api/v1/images/prefetch", new StringContent($"{{\"image\":\"{url}\"}}", System.Text.Encoding.UTF8, "application/json"))).StatusCode,
            Is.EqualTo(403), "nor through the API");
    }
}
