using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Images;

/// <summary>The image cache over HTTP, with images served by a local HTTP server (127.0.0.1 only).</summary>
[NonParallelizable]
public class ImageCacheTests
{
    ImageServer _images = null!;
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _dataDir = "";
    static System.Security.Cryptography.X509Certificates.X509Certificate2 Endorser => MetadataFactory.Key("images-test@example.org");

    static Dictionary<string, string?> Settings() => new()
    {
        ["Compute:SimulatedMedia"] = "true",
        ["Compute:BootTimeoutSeconds"] = "60",
        ["Images:MaxCacheMiB"] = "3",
        ["Scheduling:CpuOvercommit"] = "8",
        ["Marketplace:WhitelistedCertificates:0"] = MetadataFactory.Thumbprint(Endorser),
    };

    [SetUp]
    public async Task Start()
    {
        _images = await ImageServer.StartAsync();
        _dataDir = TempDir.Create("cache");
        _server = await TestServer.StartAsync(Settings(), _dataDir);
        _admin = _server.Client();
    }

    [TearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
        await _images.DisposeAsync();
        TempDir.Delete(_dataDir);
    }

    static byte[] RandomImage(int bytes = 1 << 20) => RandomNumberGenerator.GetBytes(bytes);

    /// <summary>Publishes a signed Marketplace entry for <paramref name="content"/> located at <paramref name="location"/>; returns its identifier.</summary>
    async Task<string> PublishAsync(byte[] content, Uri location, string? sha1Override = null)
    {
        var sha1 = sha1Override ?? Convert.ToHexStringLower(SHA1.HashData(content));
        var draft = MetadataFactory.Draft() with
        {
            Identifier = ImageIdentifier.FromSha1Hex(sha1),
            Bytes = content.Length,
            Checksums = [new ImageChecksum("SHA-1", sha1), new ImageChecksum("SHA-256", Convert.ToHexStringLower(SHA256.HashData(content)))],
            Format = "raw",
            Locations = [location.ToString()],
        };
        var response = await _admin.PostAsync("/api/v1/marketplace/metadata", MetadataFactory.Xml(MetadataFactory.Signed(draft, Endorser)));
        await response.Json(201);
        return draft.Identifier;
    }

    async Task<JsonNode> CacheEntryAsync(string identifierOrUrl) =>
        (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray().Single(i => i!["image"]!.GetValue<string>() == identifierOrUrl)!;

    [Test, CancelAfter(120_000)]
    public async Task A_miss_downloads_once_for_ten_concurrent_launches_and_a_hit_downloads_nothing()
    {
        var content = RandomImage();
        var id = await PublishAsync(content, _images.Add("ten.raw", content, slow: true));
        var created = (await InstanceApiTests.CreateAsync(_admin, new { image = id, count = 10 })).AsArray();
        var states = new List<string>();
        foreach (var node in created)
            states.Add((await InstanceApiTests.WaitAsync(_admin, node!["id"]!.GetValue<long>(), "RUNNING", 90))["state"]!.GetValue<string>());
        Assert.That(states, Is.All.EqualTo("RUNNING"));
        Assert.That(_images.RequestsFor("ten.raw"), Is.EqualTo(1), "ten launches, one download");
        var entry = await CacheEntryAsync(id);
        Assert.That(entry["state"]!.GetValue<string>(), Is.EqualTo("ready"));
        Assert.That(entry["bytesDone"]!.GetValue<long>(), Is.EqualTo(content.Length));

        var again = (await InstanceApiTests.CreateAsync(_admin, new { image = id }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, again, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(_images.RequestsFor("ten.raw"), Is.EqualTo(1), "a hit downloads nothing");
        Assert.That((await CacheEntryAsync(id))["hits"]!.GetValue<long>(), Is.EqualTo(11));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_wrong_checksum_fails_the_launch_with_both_values_and_caches_nothing()
    {
        var content = RandomImage();
        var wrongSha1 = Convert.ToHexStringLower(SHA1.HashData(RandomImage(16)));
        var id = await PublishAsync(content, _images.Add("bad.raw", content), wrongSha1);
        var instance = (await InstanceApiTests.CreateAsync(_admin, new { image = id }))["id"]!.GetValue<long>();
        var failed = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING", 30);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(),
            Does.Contain("SHA-1 checksum check failed").And.Contain(wrongSha1).And.Contain(Convert.ToHexStringLower(SHA1.HashData(content))));
        var entry = await CacheEntryAsync(id);
        Assert.That(entry["state"]!.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(entry["origin"], Is.Null);
        var partial = Path.Combine(_dataDir, "images", "partial");
        Assert.That(Directory.Exists(partial) ? Directory.GetFiles(partial) : [], Is.Empty, "the bad data is removed");
        Assert.That((await (await _admin.GetAsync("/api/v1/quotas/admin")).Json(200))["usage"]!["storageGiB"]!.GetValue<long>(), Is.EqualTo(0));
    }

    [TestCase("/missing", "answered HTTP 404")]
    [TestCase("/html", "HTML page")]
    [TestCase("/to-ftp", "redirects to ftp:")]
    public async Task Bad_urls_fail_the_launch_in_PROLOG_with_the_reason(string path, string reason)
    {
        var instance = (await InstanceApiTests.CreateAsync(_admin, new { image = _images.Url(path).ToString() }))["id"]!.GetValue<long>();
        var failed = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING", 30);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain(reason));
    }

    [Test]
    public async Task An_unreachable_url_fails_with_the_reason()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var instance = (await InstanceApiTests.CreateAsync(_admin, new { image = $"http://127.0.0.1:{port}/image.raw" }))["id"]!.GetValue<long>();
        var failed = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING", 30);
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("unreachable"));
    }

    [TestCase("ftp://127.0.0.1/image.qcow2", 400)]
    [TestCase("file:///etc/passwd", 400)]
    [TestCase("no-such-image-name", 422)]
    public async Task Image_references_that_can_never_work_are_refused_at_once(string image, int status)
    {
        var problem = await (await _admin.PostAsJsonAsync("/api/v1/instances", new { image })).Problem(status);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo("image"));
    }

    [Test, CancelAfter(60_000)]
    public async Task An_image_larger_than_the_cache_is_refused_and_nothing_is_kept()
    {
        var content = RandomImage(4 << 20);
        var instance = (await InstanceApiTests.CreateAsync(_admin, new { image = _images.Add("huge.raw", content).ToString() }))["id"]!.GetValue<long>();
        var failed = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING", 30);
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("more than the"));
        var partial = Path.Combine(_dataDir, "images", "partial");
        Assert.That(Directory.Exists(partial) ? Directory.GetFiles(partial, "*.img") : [], Is.Empty);
    }

    [Test, CancelAfter(60_000)]
    public async Task Least_recently_used_images_without_clones_are_evicted_first()
    {
        byte[] a = RandomImage(), b = RandomImage(), c = RandomImage();
        var urlA = _images.Add("a.raw", a).ToString();
        var urlB = _images.Add("b.raw", b).ToString();
        var urlC = _images.Add("c.raw", c).ToString();
        await (await _admin.PostAsJsonAsync("/api/v1/images/prefetch", new { image = urlA })).Json(200);
        await (await _admin.PostAsJsonAsync("/api/v1/images/prefetch", new { image = urlB })).Json(200);
        await Task.Delay(50);
        await (await _admin.PostAsJsonAsync("/api/v1/images/prefetch", new { image = urlA })).Json(200); // A used again: B is now the oldest
        await (await _admin.PostAsJsonAsync("/api/v1/images/prefetch", new { image = urlC })).Json(200); // 3 MiB: at Images:MaxCacheMiB = 3
        // A fourth MiB puts the cache over its size: the least recently used image goes.
        await (await _admin.PostAsJsonAsync("/api/v1/images/prefetch", new { image = _images.Add("d.raw", RandomImage()).ToString() })).Json(200);
        var cached = new List<string>();
        for (var i = 0; i < 50; i++)
        {
            cached = (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray().Where(x => x!["state"]!.GetValue<string>() == "ready")
                .Select(x => x!["image"]!.GetValue<string>()).ToList();
            if (!cached.Contains(urlB)) break;
            await Task.Delay(100);
        }
        Assert.That(cached, Does.Not.Contain(urlB), "B was the least recently used");
        Assert.That(cached, Does.Contain(urlA).And.Contain(urlC));
        Assert.That(_images.RequestsFor("a.raw"), Is.EqualTo(1), "the second prefetch of A was a hit");
    }

    [Test, CancelAfter(60_000)]
    public async Task An_image_in_use_cannot_be_evicted_by_hand()
    {
        var content = RandomImage();
        var url = _images.Add("used.raw", content).ToString();
        var instance = (await InstanceApiTests.CreateAsync(_admin, new { image = url }))["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING");
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        await (await _admin.DeleteAsync($"/api/v1/images/{Uri.EscapeDataString(url)}")).Problem(409);
    }

    [Test, CancelAfter(120_000)]
    public async Task A_server_restart_mid_download_resumes_where_it_stopped()
    {
        _images.SlowBytesPerSecond = 512 * 1024;
        var content = RandomImage(2 << 20);
        var url = _images.Add("resume.raw", content, slow: true).ToString();
        var first = (await InstanceApiTests.CreateAsync(_admin, new { image = url }))["id"]!.GetValue<long>();
        for (var i = 0; i < 100; i++)
        {
            var entry = (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray().FirstOrDefault(x => x!["image"]!.GetValue<string>() == url);
            if (entry?["bytesDone"]!.GetValue<long>() > 256 * 1024) break;
            await Task.Delay(100);
        }
        await _server.DisposeAsync();
        _server = await TestServer.StartAsync(Settings(), _dataDir);
        _admin.Dispose();
        _admin = _server.Client();
        var resumed = await InstanceApiTests.WaitAsync(_admin, first, "RUNNING", 60);
        Assert.That(resumed["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), "the launch that waited for the download resumes after the restart");
        var second = (await InstanceApiTests.CreateAsync(_admin, new { image = url }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, second, "RUNNING", 60))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(_images.Ranges, Has.Some.Matches<string>(r => r != "bytes=0-"), "the second download resumed with a Range request");
        Assert.That((await CacheEntryAsync(url))["state"]!.GetValue<string>(), Is.EqualTo("ready"));
    }

    [Test, CancelAfter(120_000)]
    public async Task Save_turns_the_disk_into_a_new_signed_image_that_boots()
    {
        var content = RandomImage();
        var url = _images.Add("base.raw", content).ToString();
        var instance = (await InstanceApiTests.CreateAsync(_admin, new { image = url, save = true }))["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING");
        await (await _admin.PostAsync($"/api/v1/instances/{instance}/actions/shutdown", null)).Json(202);
        var done = await InstanceApiTests.WaitAsync(_admin, instance, "DONE", 60);
        var saved = done["savedImage"]?.GetValue<string>();
        Assert.That(saved, Has.Length.EqualTo(27), done.ToJsonString());
        var entry = await (await _server.Client(token: null).GetAsync($"/api/v1/marketplace/metadata/{saved}")).Json(200);
        Assert.That(entry.ToJsonString(), Does.Contain("saved from instance " + instance).And.Contain("valid"));
        var check = await (await _admin.PostAsJsonAsync("/api/v1/policy/check", new { identifier = saved })).Json(200);
        Assert.That(check["accepted"]!.GetValue<bool>(), Is.True, "the saved image is a valid, signed entry the site policy accepts");
        var next = (await InstanceApiTests.CreateAsync(_admin, new { image = saved }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, next, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
    }

    [Test, CancelAfter(120_000)]
    public async Task A_shutdown_with_save_turns_the_disk_of_an_instance_launched_without_save_into_a_new_image_and_only_shutdown_takes_save()
    {
        var url = _images.Add("save-later.raw", RandomImage()).ToString();
        var instance = (await InstanceApiTests.CreateAsync(_admin, new { image = url }))["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING");
        Assert.That(running["save"]!.GetValue<bool>(), Is.False, "launched without save");
        var refused = await (await _admin.PostAsync($"/api/v1/instances/{instance}/actions/stop?save=true", null)).Problem(400);
        Assert.That(refused["field"]!.GetValue<string>(), Is.EqualTo("save"));
        Assert.That(refused["detail"]!.GetValue<string>(), Does.Contain("only shutdown does"));
        await (await _admin.PostAsync($"/api/v1/instances/{instance}/actions/shutdown?save=true", null)).Json(202);
        var done = await InstanceApiTests.WaitAsync(_admin, instance, "DONE", 60);
        var saved = done["savedImage"]?.GetValue<string>();
        Assert.That(saved, Has.Length.EqualTo(27), done.ToJsonString());
        var entry = await (await _server.Client(token: null).GetAsync($"/api/v1/marketplace/metadata/{saved}")).Json(200);
        Assert.That(entry.ToJsonString(), Does.Contain("saved from instance " + instance));
    }

    [Test, CancelAfter(120_000)]
    public async Task Save_as_image_on_the_dashboards_instance_page_shuts_the_instance_down_and_shows_the_new_image()
    {
        var token = await _server.CreateUserAsync("saver");
        using var saver = _server.Client(token);
        var url = _images.Add("save-from-page.raw", RandomImage()).ToString();
        var instance = (await InstanceApiTests.CreateAsync(saver, new { image = url, name = "to-save" }))["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(saver, instance, "RUNNING");
        using var browser = new Web.BrowserSession(_server);
        Assert.That((int)(await browser.SignInAsync("saver", "password-saver")).StatusCode, Is.EqualTo(302));
        var path = $"/ui/instances/{instance}";
        var (_, page) = await browser.GetAsync(path);
        Assert.That(page, Does.Contain($"action=\"{path}/actions/save\"").And.Contain("Shut down and save as image"));
        var (forged, _) = await browser.PostFormAsync(path + "/actions/save", [], fromPage: null);
        Assert.That((int)forged.StatusCode, Is.AnyOf(400, 403), "no CSRF token, no save");
        Assert.That((await (await saver.GetAsync($"/api/v1/instances/{instance}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        var (posted, html) = await browser.PostFormAsync(path + "/actions/save", [], fromPage: path);
        Assert.That((int)posted.StatusCode, Is.EqualTo(302), html);
        var done = await InstanceApiTests.WaitAsync(saver, instance, "DONE", 60);
        var saved = done["savedImage"]?.GetValue<string>();
        Assert.That(saved, Has.Length.EqualTo(27), done.ToJsonString());
        (_, page) = await browser.GetAsync(path);
        Assert.That(page, Does.Contain("<dt>Saved as image</dt><dd>" + saved + "</dd>"));
    }
}
