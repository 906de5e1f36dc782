using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using StratusLab.Server.Platform.Transfers;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

/// <summary>The one HTTP downloader, against a local server on 127.0.0.1.</summary>
public class HttpDownloaderTests
{
    ImageServer _server = null!;
    HttpClient _http = null!;
    HttpDownloader _downloader = null!;
    string _dir = "";

    [SetUp]
    public async Task Start()
    {
        _server = await ImageServer.StartAsync();
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        _downloader = new HttpDownloader(_http, NullLogger<HttpDownloader>.Instance);
        _dir = TempDir.Create("download");
    }

    [TearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        TempDir.Delete(_dir);
    }

    Task<DownloadedFile> DownloadAsync(Uri url, IReadOnlyDictionary<string, string>? checksums = null, long? bytes = null) =>
        _downloader.DownloadFileAsync(url, Path.Combine(_dir, "x.part"), Path.Combine(_dir, "x.img"), bytes, 1L << 30,
            checksums ?? new Dictionary<string, string>(), (_, _) => { }, CancellationToken.None);

    [Test]
    public async Task A_download_gives_every_checksum_and_the_version_the_server_sent()
    {
        var content = RandomNumberGenerator.GetBytes(300_000);
        var file = await DownloadAsync(_server.Add("a.raw", content));
        Assert.That(File.ReadAllBytes(file.Path), Is.EqualTo(content));
        Assert.That(file.Checksums, Is.EqualTo(new Dictionary<string, string>
        {
            ["MD5"] = Convert.ToHexStringLower(MD5.HashData(content)),
            ["SHA-1"] = Convert.ToHexStringLower(SHA1.HashData(content)),
            ["SHA-256"] = Convert.ToHexStringLower(SHA256.HashData(content)),
            ["SHA-512"] = Convert.ToHexStringLower(SHA512.HashData(content)),
        }));
        Assert.That(File.Exists(Path.Combine(_dir, "x.part")), Is.False);
    }

    [TestCase("MD5")]
    [TestCase("sha1")]
    [TestCase("SHA-256")]
    [TestCase("SHA512")]
    public void A_wrong_checksum_of_any_algorithm_is_wrong_data(string algorithm)
    {
        var url = _server.Add("b.raw", RandomNumberGenerator.GetBytes(1000));
        var error = Assert.ThrowsAsync<DownloadFailedException>(() => DownloadAsync(url, new Dictionary<string, string> { [algorithm] = "00" }));
        Assert.That(error!.Failure, Is.EqualTo(DownloadFailure.ChecksumMismatch));
        Assert.That(error.WrongData, Is.True);
        Assert.That(error.Message, Does.Contain($"the {Checksums.Normalize(algorithm)} checksum check failed"));
    }

    [Test]
    public void A_size_other_than_the_declared_one_is_wrong_data_and_nothing_is_kept()
    {
        var url = _server.Add("c.raw", RandomNumberGenerator.GetBytes(1000));
        var error = Assert.ThrowsAsync<DownloadFailedException>(() => DownloadAsync(url, bytes: 1024));
        Assert.That(error!.Failure, Is.EqualTo(DownloadFailure.SizeMismatch));
        Assert.That(error.Message, Does.Contain("expected 1024 bytes, received 1000"));
        Assert.That(File.Exists(Path.Combine(_dir, "x.img")), Is.False, "nothing is cached");
    }

    [Test]
    public void A_redirect_to_another_scheme_is_refused()
    {
        var error = Assert.ThrowsAsync<DownloadFailedException>(() => DownloadAsync(_server.Url("to-ftp")));
        Assert.That(error!.Failure, Is.EqualTo(DownloadFailure.RedirectRefused));
        Assert.That(error.Message, Does.Contain("redirects to ftp:, which is refused"));
    }

    [Test]
    public void An_error_status_and_an_html_page_are_told_apart()
    {
        var missing = Assert.ThrowsAsync<DownloadFailedException>(() => DownloadAsync(_server.Url("missing")));
        Assert.That((missing!.Failure, missing.Status), Is.EqualTo((DownloadFailure.HttpError, (int?)404)));
        var html = Assert.ThrowsAsync<DownloadFailedException>(() => DownloadAsync(_server.Url("html")));
        Assert.That(html!.Failure, Is.EqualTo(DownloadFailure.NotAnImage));
    }

    [Test]
    public async Task A_partial_file_is_resumed_with_a_range_request()
    {
        var content = RandomNumberGenerator.GetBytes(500_000);
        var url = _server.Add("c.raw", content);
        await File.WriteAllBytesAsync(Path.Combine(_dir, "x.part"), content[..200_000]);
        var file = await DownloadAsync(url, new Dictionary<string, string> { ["SHA-1"] = Convert.ToHexStringLower(SHA1.HashData(content)) }, content.Length);
        Assert.That(_server.Ranges, Is.EqualTo(new[] { "bytes=200000-" }));
        Assert.That(file.Bytes, Is.EqualTo(content.Length));
    }

    [Test]
    public async Task A_mostly_empty_image_is_written_with_holes_and_reads_back_the_same()
    {
        var content = new byte[32 << 20];
        RandomNumberGenerator.Fill(content.AsSpan(0, 100_000));
        RandomNumberGenerator.Fill(content.AsSpan(20 << 20, 5000));
        content[^1] = 7;
        var file = await DownloadAsync(_server.Add("sparse.raw", content), bytes: content.Length);
        Assert.That(File.ReadAllBytes(file.Path), Is.EqualTo(content));
        var allocated = TestImages.AllocatedBytes(file.Path);
        TestContext.Progress.WriteLine($"32 MiB download with ~105 KB of data: {allocated} bytes allocated");
        Assert.That(allocated, Is.LessThan(1 << 20), "zero blocks are holes, not written blocks");
    }

    [Test]
    public async Task A_sparse_partial_file_resumes_to_the_same_bytes()
    {
        var content = new byte[6 << 20];
        RandomNumberGenerator.Fill(content.AsSpan(0, 3000));
        RandomNumberGenerator.Fill(content.AsSpan(5 << 20, 3000));
        var url = _server.Add("holes.raw", content);
        // A partial file that ends in zeros which were seeked over, not written: it is shorter than what had arrived.
        await File.WriteAllBytesAsync(Path.Combine(_dir, "x.part"), content[..4099]);
        var file = await DownloadAsync(url, new Dictionary<string, string> { ["SHA-256"] = Convert.ToHexStringLower(SHA256.HashData(content)) }, content.Length);
        Assert.That(_server.Ranges, Is.EqualTo(new[] { "bytes=4099-" }));
        Assert.That(File.ReadAllBytes(file.Path), Is.EqualTo(content));
    }

    [Test]
    public void A_body_cut_short_of_its_announced_length_is_incomplete_and_kept_for_a_resumption()
    {
        _server.CutAfterBytes = 150_000;
        var url = _server.AddCut("cut.raw", RandomNumberGenerator.GetBytes(400_000));
        var error = Assert.ThrowsAsync<DownloadFailedException>(() => DownloadAsync(url));
        Assert.That(error!.Failure, Is.EqualTo(DownloadFailure.BrokeOff), error.Message);
        Assert.That(error.WrongData, Is.False);
        // The abort may drop bytes in flight: what arrived is kept.
        Assert.That(new FileInfo(Path.Combine(_dir, "x.part")).Length, Is.InRange(1, 150_000));
        Assert.That(File.Exists(Path.Combine(_dir, "x.img")), Is.False);
    }

    [TestCase("SHA1", "SHA-1")]
    [TestCase("sha_256", "SHA-256")]
    [TestCase("md5", "MD5")]
    [TestCase("SHA-512", "SHA-512")]
    [TestCase("CRC32", null)]
    public void Checksum_names_are_normalized(string name, string? expected) => Assert.That(Checksums.Normalize(name), Is.EqualTo(expected));
}
