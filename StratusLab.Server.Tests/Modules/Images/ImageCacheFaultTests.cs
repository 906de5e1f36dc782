using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using StratusLab.Server.Modules.Images;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Images;

/// <summary>
/// Faults of issue 18 on the image cache: corrupt images, cut downloads and their partial files, saving an unchanged
/// disk, and launches waiting on a download across a restart. Images come from a local HTTP server on 127.0.0.1.
/// </summary>
[NonParallelizable]
public class ImageCacheFaultTests
{
    ImageServer _images = null!;
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _dataDir = "";

    static Dictionary<string, string?> Settings() => new()
    {
        ["Compute:SimulatedMedia"] = "true",
        ["Compute:BootTimeoutSeconds"] = "60",
        ["Scheduling:CpuOvercommit"] = "8",
    };

    [SetUp]
    public async Task Start()
    {
        _images = await ImageServer.StartAsync();
        _dataDir = TempDir.Create("cachefault");
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

    string PartialDir => Path.Combine(_dataDir, "images", "partial");

    string[] PartialFiles() => Directory.Exists(PartialDir) ? Directory.GetFiles(PartialDir) : [];

    async Task<JsonNode?> CacheEntryAsync(string image) =>
        (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray().FirstOrDefault(i => i!["image"]!.GetValue<string>() == image);

    async Task<long> LaunchAsync(object body) => (await InstanceApiTests.CreateAsync(_admin, body))["id"]!.GetValue<long>();

    /// <summary>A qcow2 with <paramref name="dataBytes"/> of random data, as qemu-img writes it.</summary>
    byte[] Qcow2WithData(int dataBytes)
    {
        var dir = Path.Combine(_dataDir, "made");
        Directory.CreateDirectory(dir);
        var raw = Path.Combine(dir, "data.raw");
        var qcow2 = Path.Combine(dir, "data.qcow2");
        File.WriteAllBytes(raw, RandomNumberGenerator.GetBytes(dataBytes));
        var psi = new ProcessStartInfo("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2]) { RedirectStandardError = true };
        using (var process = Process.Start(psi)!)
        {
            Assert.That(process.WaitForExit(30_000), Is.True, "qemu-img convert timed out");
            Assert.That(process.ExitCode, Is.EqualTo(0), process.StandardError.ReadToEnd());
        }
        var bytes = File.ReadAllBytes(qcow2);
        Directory.Delete(dir, recursive: true);
        return bytes;
    }

    [Test, CancelAfter(120_000)]
    public async Task A_truncated_qcow2_fails_its_launch_with_the_words_of_qemu_img_check_and_nothing_is_cached()
    {
        var whole = Qcow2WithData(4 << 20);
        var truncated = whole[..(whole.Length / 2)];
        var url = _images.Add("truncated.qcow2", truncated).ToString();
        var volumesBefore = (await (await _admin.GetAsync("/api/v1/volumes")).Json(200)).AsArray().Count;
        var instance = await LaunchAsync(new { image = url });
        var failed = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING", 60);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(),
            Does.Contain("qcow2 image is corrupt").And.Contain("qemu-img check found").And.Contain("corruption").And.Contain("ERROR"));
        var entry = await CacheEntryAsync(url);
        Assert.That(entry!["state"]!.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(entry["origin"], Is.Null);
        Assert.That(PartialFiles(), Is.Empty, "the corrupt download is not kept");
        var volumes = (await (await _admin.GetAsync("/api/v1/volumes")).Json(200)).AsArray();
        Assert.That(volumes, Has.Count.EqualTo(volumesBefore), "no ORIGIN volume was made");

        // The same image, whole, passes the check and boots: the check refuses damage, not qcow2.
        var good = await LaunchAsync(new { image = _images.Add("whole.qcow2", whole).ToString() });
        var running = await InstanceApiTests.WaitAsync(_admin, good, "RUNNING", 60);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
    }

    [Test, CancelAfter(60_000)]
    public async Task A_cut_download_keeps_its_partial_file_until_the_image_is_deleted()
    {
        _images.CutAfterBytes = 300 * 1024;
        var url = _images.AddCut("cut.raw", RandomNumberGenerator.GetBytes(2 << 20)).ToString();
        var instance = await LaunchAsync(new { image = url });
        var failed = await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING", 30);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("broke off").Or.Contain("ended after"));
        var partial = PartialFiles().Single(f => f.EndsWith(".part"));
        // The abort may drop bytes in flight: what arrived, not what was sent, is kept.
        Assert.That(new FileInfo(partial).Length, Is.InRange(1, 300 * 1024), "what arrived is kept for a resumption");

        var deleted = await _admin.DeleteAsync($"/api/v1/images/{Uri.EscapeDataString(url)}");
        Assert.That((int)deleted.StatusCode, Is.EqualTo(204));
        Assert.That(File.Exists(partial), Is.False, "the partial file goes with its image");
        Assert.That(await CacheEntryAsync(url), Is.Null);
    }

    [Test, CancelAfter(60_000)]
    public async Task Partial_files_untouched_for_PartialMaxAgeMinutes_are_removed_by_the_eviction_pass_and_fresh_ones_stay()
    {
        _images.CutAfterBytes = 200 * 1024;
        var url = _images.AddCut("old.raw", RandomNumberGenerator.GetBytes(1 << 20)).ToString();
        var instance = await LaunchAsync(new { image = url });
        Assert.That((await InstanceApiTests.WaitAsync(_admin, instance, "RUNNING", 30))["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        var old = PartialFiles().Single(f => f.EndsWith(".part"));
        File.SetLastWriteTimeUtc(old, DateTime.UtcNow.AddMinutes(-1441)); // default Images:PartialMaxAgeMinutes = 1440
        var oldLeftover = Path.Combine(PartialDir, "save-99-0123456789abcdef.qcow2");
        File.WriteAllBytes(oldLeftover, [1, 2, 3]);
        File.SetLastWriteTimeUtc(oldLeftover, DateTime.UtcNow.AddDays(-2));
        var fresh = Path.Combine(PartialDir, "0123456789abcdef01234567.part");
        File.WriteAllBytes(fresh, [1, 2, 3]);

        var job = new StratusLab.Server.Modules.Images.Jobs.CacheEvictionJob(_server.App.Services.GetRequiredService<ImageCache>());
        await job.Execute(null!, CancellationToken.None);

        Assert.That(File.Exists(old), Is.False, "the aged partial download is removed");
        Assert.That(File.Exists(oldLeftover), Is.False, "an aged leftover of a save is removed");
        Assert.That(File.Exists(fresh), Is.True, "a recent partial file stays");
    }

    [Test, CancelAfter(120_000)]
    public async Task Saving_an_unchanged_disk_again_reports_the_existing_image_instead_of_failing()
    {
        var url = _images.Add("base.raw", RandomNumberGenerator.GetBytes(1 << 20)).ToString();
        var first = await LaunchAsync(new { image = url, save = true });
        var second = await LaunchAsync(new { image = url, save = true });
        await InstanceApiTests.WaitAsync(_admin, first, "RUNNING");
        await InstanceApiTests.WaitAsync(_admin, second, "RUNNING");

        await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/shutdown", null)).Json(202);
        var firstDone = await InstanceApiTests.WaitAsync(_admin, first, "DONE", 60);
        var saved = firstDone["savedImage"]?.GetValue<string>();
        Assert.That(saved, Has.Length.EqualTo(27), firstDone.ToJsonString());

        // The second disk was not written either: the same bytes, the same identifier.
        await (await _admin.PostAsync($"/api/v1/instances/{second}/actions/shutdown", null)).Json(202);
        var secondDone = await InstanceApiTests.WaitAsync(_admin, second, "DONE", 60);
        Assert.That(secondDone["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        Assert.That(secondDone["failureReason"]?.GetValue<string>(), Is.Null, secondDone.ToJsonString());
        Assert.That(secondDone["savedImage"]?.GetValue<string>(), Is.EqualTo(saved), "the saved image is the existing entry");

        var cached = (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray().Where(i => i!["identifier"]?.GetValue<string>() == saved).ToList();
        Assert.That(cached, Has.Count.EqualTo(1));
        Assert.That(cached[0]!["state"]!.GetValue<string>(), Is.EqualTo("ready"));
        var next = await LaunchAsync(new { image = saved });
        Assert.That((await InstanceApiTests.WaitAsync(_admin, next, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
    }

    [Test, CancelAfter(120_000)]
    public async Task Launches_waiting_on_a_download_when_the_server_stops_resume_after_the_restart_with_a_Range_request()
    {
        _images.SlowBytesPerSecond = 512 * 1024;
        var content = RandomNumberGenerator.GetBytes(3 << 20);
        var url = _images.Add("resume.raw", content, slow: true).ToString();
        var launches = new List<long>();
        for (var i = 0; i < 3; i++) launches.Add(await LaunchAsync(new { image = url }));
        for (var i = 0; i < 100; i++)
        {
            if ((await CacheEntryAsync(url))?["bytesDone"]!.GetValue<long>() > 512 * 1024) break;
            await Task.Delay(100);
        }
        await _server.DisposeAsync();
        _admin.Dispose();
        _server = await TestServer.StartAsync(Settings(), _dataDir);
        _admin = _server.Client();
        foreach (var id in launches)
        {
            var running = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60);
            Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        }
        Assert.That(_images.RequestsFor("resume.raw"), Is.EqualTo(2), "one download before the stop, one resumption after it");
        Assert.That(_images.Ranges, Has.Some.Matches<string>(r => r != "bytes=0-"), "the download resumed with a Range request");
        Assert.That((await CacheEntryAsync(url))!["bytesDone"]!.GetValue<long>(), Is.EqualTo(content.Length));
        Assert.That(PartialFiles(), Is.Empty);
    }
}
