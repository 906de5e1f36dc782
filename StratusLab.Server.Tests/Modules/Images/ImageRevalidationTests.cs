using System.Net.Http.Json;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Images;

/// <summary>URL images in the cache are revalidated with the server (ETag / Last-Modified) once Images:RevalidateAfterMinutes have passed.</summary>
[NonParallelizable]
public class ImageRevalidationTests
{
    VersionedImageServer _origin = null!;
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _dataDir = "";

    [SetUp]
    public async Task Start()
    {
        _origin = await VersionedImageServer.StartAsync();
        _dataDir = TempDir.Create("revalidate");
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:SimulatedMedia"] = "true",
            ["Compute:BootTimeoutSeconds"] = "60",
            ["Scheduling:CpuOvercommit"] = "8",
            ["Images:RevalidateAfterMinutes"] = "0",
        }, _dataDir);
        _admin = _server.Client();
    }

    [TearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
        await _origin.DisposeAsync();
        TempDir.Delete(_dataDir);
    }

    async Task<long> LaunchAsync(string url)
    {
        var id = (await InstanceApiTests.CreateAsync(_admin, new { image = url }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        return id;
    }

    async Task<List<(string? Identifier, string State, string? Origin)>> EntriesAsync(string url) =>
        (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray()
            .Where(i => i!["image"]!.GetValue<string>() == url)
            .Select(i => (i!["identifier"]?.GetValue<string>(), i["state"]!.GetValue<string>(), i["origin"]?.GetValue<string>()))
            .ToList();

    [Test, CancelAfter(180_000)]
    public async Task An_unchanged_url_image_is_a_hit_and_a_changed_one_is_downloaded_again_while_running_clones_keep_the_old_origin()
    {
        var url = _origin.Url.ToString();
        _origin.Content = RandomNumberGenerator.GetBytes(1 << 20);
        await LaunchAsync(url);
        Assert.That((_origin.FullResponses, _origin.NotModifiedResponses), Is.EqualTo((1, 0)));
        var first = (await EntriesAsync(url)).Single();

        await LaunchAsync(url);
        Assert.That((_origin.FullResponses, _origin.NotModifiedResponses), Is.EqualTo((1, 1)), "revalidated: the server said 304");
        Assert.That(_origin.ConditionalRequests, Is.All.EqualTo($"If-None-Match: {_origin.ETag}"));
        Assert.That(await EntriesAsync(url), Is.EqualTo(new[] { first }), "unchanged: the same cache entry");

        _origin.Content = RandomNumberGenerator.GetBytes(1 << 20);
        await LaunchAsync(url);
        Assert.That((_origin.FullResponses, _origin.NotModifiedResponses), Is.EqualTo((2, 1)), "changed: downloaded again");
        var entries = await EntriesAsync(url);
        Assert.That(entries, Has.Count.EqualTo(2));
        Assert.That(entries, Does.Contain(first), "the old version stays cached while clones of it run");
        var current = entries.Single(e => e != first);
        Assert.That(current.State, Is.EqualTo("ready"));
        Assert.That(current.Identifier, Is.Not.EqualTo(first.Identifier));

        var volumes = _server.App.Services.GetRequiredService<IVolumes>();
        var oldOrigin = await volumes.FindAsync(Guid.Parse(first.Origin!));
        Assert.That(oldOrigin, Is.Not.Null, "running clones keep their origin");
        var newOrigin = await volumes.FindAsync(Guid.Parse(current.Origin!));
        Assert.That(newOrigin!.SizeBytes, Is.EqualTo(1 << 20));

        await LaunchAsync(url);
        Assert.That((_origin.FullResponses, _origin.NotModifiedResponses), Is.EqualTo((2, 2)), "the new version is the one revalidated now");
    }

    [Test, CancelAfter(120_000)]
    public async Task A_mostly_empty_raw_image_keeps_its_holes_in_the_cache()
    {
        var content = new byte[64 << 20];
        RandomNumberGenerator.Fill(content.AsSpan(0, 256 << 10));
        _origin.Content = content;
        var url = _origin.Url.ToString();
        await (await _admin.PostAsJsonAsync("/api/v1/images/prefetch", new { image = url })).Json(200);
        var origin = (await EntriesAsync(url)).Single().Origin!;
        var volume = await _server.App.Services.GetRequiredService<IVolumes>().FindAsync(Guid.Parse(origin));
        var info = await _server.App.Services.GetRequiredService<QemuImg>().InfoAsync(volume!.LocalPath, CancellationToken.None);
        TestContext.Progress.WriteLine($"64 MiB raw image with 256 KiB of data: {info.ActualSize} bytes on disk ({volume.Format})");
        Assert.That(info.VirtualSize, Is.EqualTo(64 << 20));
        Assert.That(info.ActualSize, Is.LessThan(4 << 20), "zero areas are holes, not written blocks");
    }

    /// <summary>One image at /image on 127.0.0.1 with an ETag per content and Last-Modified; answers If-None-Match with 304.</summary>
    sealed class VersionedImageServer : IAsyncDisposable
    {
        readonly WebApplication _app;
        byte[] _content = [];
        readonly List<string> _conditional = [];

        VersionedImageServer(WebApplication app) => _app = app;

        public Uri Url => new(new Uri(_app.Urls.First()), "image");
        public string ETag { get; private set; } = "";
        public int FullResponses { get; private set; }
        public int NotModifiedResponses { get; private set; }
        public IReadOnlyList<string> ConditionalRequests { get { lock (_conditional) return _conditional.ToList(); } }

        public byte[] Content
        {
            get => _content;
            set
            {
                _content = value;
                ETag = $"\"{Convert.ToHexStringLower(SHA256.HashData(value))[..16]}\"";
            }
        }

        public static async Task<VersionedImageServer> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var server = new VersionedImageServer(app);
            app.MapGet("/image", server.ServeAsync);
            await app.StartAsync();
            return server;
        }

        async Task ServeAsync(HttpContext http)
        {
            string? ifNoneMatch = http.Request.Headers.IfNoneMatch;
            if (ifNoneMatch is { Length: > 0 })
                lock (_conditional) _conditional.Add($"If-None-Match: {ifNoneMatch}");
            http.Response.Headers.ETag = ETag;
            http.Response.Headers.LastModified = "Sat, 28 Nov 2026 12:00:00 GMT";
            if (ifNoneMatch == ETag)
            {
                NotModifiedResponses++;
                http.Response.StatusCode = 304;
                return;
            }
            FullResponses++;
            http.Response.ContentType = "application/octet-stream";
            http.Response.ContentLength = _content.Length;
            await http.Response.Body.WriteAsync(_content);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

/// <summary>What the image cache takes for a web page or an error message instead of an image.</summary>
public class DownloadedTextTests
{
    [TestCase("<!DOCTYPE html><html><body>Not Found</body></html>", true)]
    [TestCase("  <html>\n<head>", true)]
    [TestCase("{\"error\": \"no such object\"}", true)]
    [TestCase("<?xml version=\"1.0\"?><Error/>", true)]
    [TestCase("", true)]
    public void Pages_and_error_messages_are_text(string head, bool text) =>
        Assert.That(StratusLab.Server.Modules.Images.ImageCache.LooksLikeText(System.Text.Encoding.UTF8.GetBytes(head)), Is.EqualTo(text));

    [Test]
    public void An_image_whose_first_byte_is_a_brace_is_not_text()
    {
        var head = new byte[512];
        head[0] = (byte)'{';
        head[1] = 0x00;
        head[2] = 0xff;
        Assert.That(StratusLab.Server.Modules.Images.ImageCache.LooksLikeText(head), Is.False);
        head[0] = (byte)'<';
        Assert.That(StratusLab.Server.Modules.Images.ImageCache.LooksLikeText(head), Is.False);
    }
}
