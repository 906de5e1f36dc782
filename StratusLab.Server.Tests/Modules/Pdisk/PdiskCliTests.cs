using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>The volume commands end to end against a real server.</summary>
public class PdiskCliTests
{
    TestServer _server = null!;
    string _dir = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _dir = TempDir.Create("pcli");
        _server = await TestServer.StartAsync();
        await TestImages.RegisterDefaultAsync(_server);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        TempDir.Delete(_dir);
        if (_server is not null) await _server.DisposeAsync();
    }

    async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ClientCli.RunAsync(args.Concat(["--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken]).ToArray(), output, error);
        return (code, output.ToString(), error.ToString());
    }

    async Task<JsonNode> Json(params string[] args)
    {
        var result = await Run([.. args, "--json"]);
        Assert.That(result.Code, Is.Zero, result.Err);
        return JsonNode.Parse(result.Out)!;
    }

    [Test]
    public async Task A_volume_is_created_described_tagged_snapshotted_and_deleted()
    {
        var created = await Json("create-volume", "-s", "1", "--tag", "cli-data", "--type", "DATA_IMAGE_ORIGIN");
        var uuid = created["uuid"]!.GetValue<string>();
        var table = await Run("describe-volumes", "--tag", "cli-data");
        Assert.That(table.Out, Does.Contain("UUID").And.Contain(uuid).And.Contain("DATA_IMAGE_ORIGIN"));

        var updated = await Json("update-volume", uuid, "--tag", "cli-renamed", "--visibility", "public");
        Assert.That(updated["tag"]!.GetValue<string>(), Is.EqualTo("cli-renamed"));
        var snapshot = await Json("snapshot-volume", uuid, "--tag", "cli-live");
        Assert.That(snapshot["type"]!.GetValue<string>(), Is.EqualTo("DATA_IMAGE_LIVE"));

        var refused = await Run("delete-volume", uuid);
        Assert.That(refused.Code, Is.EqualTo(1));
        Assert.That(refused.Err, Does.Contain(snapshot["uuid"]!.GetValue<string>()).And.Not.Contain("409"), "no HTTP code without --verbose");
        Assert.That(refused.Err.Trim().Split('\n'), Has.Length.EqualTo(1), "one line");

        var rebased = await Json("rebase-volume", snapshot["uuid"]!.GetValue<string>());
        Assert.That(rebased["type"]!.GetValue<string>(), Is.EqualTo("DATA_IMAGE_ORIGIN"));
        var deleted = await Run("delete-volume", uuid, snapshot["uuid"]!.GetValue<string>());
        Assert.That(deleted.Code, Is.Zero, deleted.Err);
        Assert.That(deleted.Out, Does.Contain("deleted volume " + uuid));
    }

    [Test]
    public async Task Upload_image_and_download_volume_round_trip_a_file()
    {
        var (data, sha1) = Volumes.DiskBytes(2, seed: 11);
        var file = Path.Combine(_dir, "disk.raw");
        await File.WriteAllBytesAsync(file, data);
        var uploaded = await Json("upload-image", file, "--tag", "cli-upload", "--sha1", sha1);
        Assert.That(uploaded["sha1"]!.GetValue<string>(), Is.EqualTo(sha1));
        var uuid = uploaded["uuid"]!.GetValue<string>();

        var output = Path.Combine(_dir, "back.raw.gz");
        var downloaded = await Json("download-volume", uuid, "-o", output);
        Assert.That(downloaded["file"]!.GetValue<string>(), Is.EqualTo(output));
        await using var gz = new GZipStream(File.OpenRead(output), CompressionMode.Decompress);
        Assert.That(Convert.ToHexStringLower(await SHA1.HashDataAsync(gz)), Is.EqualTo(sha1));
        Assert.That(File.Exists(output + ".partial"), Is.False);

        var wrong = await Run("upload-image", file, "--sha1", new string('1', 40));
        Assert.That(wrong.Code, Is.EqualTo(1));
        Assert.That(wrong.Err, Does.Contain("SHA-1 check failed").And.Not.Contain("422"));
    }

    [Test]
    public async Task Attach_and_detach_a_volume_on_a_running_instance()
    {
        using var admin = _server.Client();
        var id = (await InstanceApiTests.CreateAsync(admin, new { name = "cli-vm" }))["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(admin, id, "RUNNING");
        var uuid = (await Json("create-volume", "-s", "1"))["uuid"]!.GetValue<string>();
        var attached = await Run("attach-volume", "-i", id.ToString(), uuid[..8]);
        Assert.That(attached.Code, Is.Zero, attached.Err);
        Assert.That(attached.Out, Does.Contain($"volume {uuid} attached to instance {id} as /dev/disk/by-id/virtio-vol").And.Contain("read-write"),
            "a unique prefix names the volume; the guest's device path is shown");
        Assert.That((await Run("describe-volumes", uuid)).Out, Does.Contain($"{id}:/dev/disk/by-id/virtio-vol"));
        var detached = await Run("detach-volume", "-i", id.ToString(), uuid);
        Assert.That(detached.Code, Is.Zero, detached.Err);
        Assert.That((await Run("delete-volume", uuid)).Code, Is.Zero);
    }

    [TestCase(new[] { "create-volume" }, "give -s GiB")]
    [TestCase(new[] { "create-volume", "-s", "x" }, "not a whole number")]
    [TestCase(new[] { "attach-volume", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b" }, "-i INSTANCE")]
    [TestCase(new[] { "delete-volume", "not-a-uuid" }, "not a volume UUID")]
    [TestCase(new[] { "attach-volume", "-i", "1", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "--mode", "rx" }, "not ro or rw")]
    [TestCase(new[] { "upload-image", "/no/such/file.img" }, "does not exist")]
    [TestCase(new[] { "create-volume", "-s", "1", "--colour", "red" }, "unknown option")]
    public async Task Bad_usage_is_one_line_and_exit_code_2(string[] args, string message)
    {
        var result = await Run(args);
        Assert.That(result.Code, Is.EqualTo(2), result.Err);
        Assert.That(result.Err, Does.Contain(message));
    }

    [Test]
    public async Task Server_side_refusals_are_one_line_and_exit_code_1()
    {
        var result = await Run("create-volume", "-s", "1", "--tag", "bad/tag");
        Assert.That(result.Code, Is.EqualTo(1));
        Assert.That(result.Err, Does.Contain("--tag").And.Not.Contain("'tag'").And.Not.Contain("400"), "the flag, not the API field; no HTTP code");
        var verbose = await Run("create-volume", "-s", "1", "--tag", "bad/tag", "--verbose");
        Assert.That(verbose.Err, Does.Contain("--tag").And.Contain("HTTP 400"));
    }

    [Test]
    public async Task Admins_see_and_purge_the_quarantine()
    {
        var uuid = (await Json("create-volume", "-s", "1"))["uuid"]!.GetValue<string>();
        await _server.App.Services.GetRequiredService<StratusLab.Server.Modules.Pdisk.Contracts.IVolumes>().QuarantineAsync(Guid.Parse(uuid));
        Assert.That((await Run("describe-quarantine")).Out, Does.Contain(uuid));
        Assert.That((await Run("purge-quarantine")).Out, Does.Contain("nothing to purge"), "its 15 minutes are not up");
        Assert.That((await Run("purge-quarantine", uuid)).Out, Does.Contain(uuid));
        Assert.That((await Run("describe-quarantine")).Out, Does.Not.Contain(uuid));
    }
}
