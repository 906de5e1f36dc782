using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: the file backend exported through a real tgtd, read and written through QEMU's own iSCSI
/// initiator (qemu-img / qemu-io with iscsi:// URLs). Every target this fixture's server makes is removed
/// at the end, even on failure; targets of others are never touched.
/// </summary>
[NonParallelizable]
public class PdiskIscsiHostTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Pdisk:Sharing"] = "iscsi" });
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        if (_server is null) return;
        var dataDir = _server.DataDir;
        await _server.DisposeAsync();
        await PdiskHost.RemoveTargetsUnderAsync(dataDir);
    }

    static async Task<(int Exit, string Out, string Err)> Run(string tool, params string[] args) =>
        await HostTools.RunAsync(tool, args, TimeSpan.FromSeconds(60));

    [Test, CancelAfter(120_000)]
    public async Task A_volume_is_exported_as_its_own_target_restricted_to_the_hosts_and_removed_with_it()
    {
        var volume = await Volumes.CreateAsync(_admin, new { size = 1, tag = "iscsi-empty" });
        var uuid = Volumes.Uuid(volume);
        var turl = volume["turl"]!.GetValue<string>();
        Assert.That(turl, Is.EqualTo($"iscsi://127.0.0.1:3260/iqn.2011-01.eu.stratuslab:{uuid}/1"));

        var info = await Run("qemu-img", "info", "--output=json", turl);
        Assert.That(info.Exit, Is.Zero, info.Err);
        var json = JsonNode.Parse(info.Out)!;
        Assert.That(json["virtual-size"]!.GetValue<long>(), Is.EqualTo(1L << 30));
        Assert.That(json["format"]!.GetValue<string>(), Is.EqualTo("raw"));

        var target = (await PdiskHost.TargetsAsync()).Single(t => t.Name == "iqn.2011-01.eu.stratuslab:" + uuid);
        Assert.That(target.BackingPath, Is.EqualTo(Path.Combine(_server.DataDir, "volumes", uuid + ".raw")));
        Assert.That(target.Acl, Is.EqualTo(new[] { "127.0.0.1" }), "only the cloud's hosts may log in");
        Assert.That(target.Luns.Single(l => l.Lun == 1).ReadOnly, Is.False);

        var write = await Run("qemu-io", "-f", "raw", "-c", "write -P 0xab 1M 2M", turl);
        Assert.That(write.Exit, Is.Zero, write.Err);
        var bytes = new byte[2 << 20];
        await using (var file = File.OpenRead(Path.Combine(_server.DataDir, "volumes", uuid + ".raw")))
        {
            file.Position = 1 << 20;
            await file.ReadExactlyAsync(bytes);
        }
        Assert.That(bytes.All(b => b == 0xab), Is.True, "what the initiator wrote is in the volume's file");

        await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
        Assert.That((await PdiskHost.TargetsAsync()).Any(t => t.Name.EndsWith(uuid)), Is.False, "the target went with the volume");
        Assert.That((await Run("qemu-img", "info", turl)).Exit, Is.Not.Zero);
    }

    [Test, CancelAfter(120_000)]
    public async Task An_origin_is_exported_read_only_and_its_copy_on_write_snapshot_is_writable_over_iscsi()
    {
        var (data, sha1) = Volumes.DiskBytes(8, seed: 3);
        var upload = await _admin.PostAsync("/api/v1/volumes/upload?type=MACHINE_IMAGE_ORIGIN&tag=iscsi-origin", new ByteArrayContent(data));
        var origin = await upload.Json(201);
        var originTurl = origin["turl"]!.GetValue<string>();

        var refused = await Run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 64k", originTurl);
        Assert.That(refused.Exit + refused.Err.Length + refused.Out.Length, Is.Not.Zero);
        Assert.That(refused.Err + refused.Out, Does.Contain("write protected").Or.Contain("Permission denied").Or.Contain("read-only").IgnoreCase);

        var snapshot = await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{Volumes.Uuid(origin)}/snapshots", new { tag = "iscsi-live" })).Json(201);
        var liveTurl = snapshot["turl"]!.GetValue<string>();
        Assert.That(snapshot["format"]!.GetValue<string>(), Is.EqualTo("qcow2"));
        var info = JsonNode.Parse((await Run("qemu-img", "info", "--output=json", liveTurl)).Out)!;
        Assert.That(info["format"]!.GetValue<string>(), Is.EqualTo("qcow2"));
        Assert.That(info["backing-filename"]!.GetValue<string>(), Does.EndWith(Volumes.Uuid(origin) + ".raw"));

        // Writing all of it: the LUN of a qcow2 overlay must have room for every cluster it may allocate.
        var write = await Run("qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 0 8M", liveTurl);
        Assert.That(write.Exit, Is.Zero, write.Err);
        Assert.That(write.Out, Does.Not.Contain("error").IgnoreCase);
        var check = await Run("qemu-img", "check", Path.Combine(_server.DataDir, "volumes", Volumes.Uuid(snapshot) + ".qcow2"));
        Assert.That(check.Exit, Is.Zero, check.Out + check.Err);
        var readBack = await Run("qemu-io", "-f", "qcow2", "-c", "read -P 0xcd 0 8M", liveTurl);
        Assert.That(readBack.Out, Does.Not.Contain("Pattern verification failed"));

        var originRead = await Run("qemu-img", "convert", "-f", "raw", "-O", "raw", originTurl, Path.Combine(_server.DataDir, "origin-copy.raw"));
        Assert.That(originRead.Exit, Is.Zero, originRead.Err);
        Assert.That(Convert.ToHexStringLower(SHA1.HashData(await File.ReadAllBytesAsync(Path.Combine(_server.DataDir, "origin-copy.raw")))), Is.EqualTo(sha1),
            "the origin is untouched by writes to its snapshot");

        await (await _admin.DeleteAsync($"/api/v1/volumes/{Volumes.Uuid(snapshot)}")).Json(204);
        await (await _admin.DeleteAsync($"/api/v1/volumes/{Volumes.Uuid(origin)}")).Json(204);
    }

    [Test, CancelAfter(120_000)]
    public async Task Reconciliation_removes_targets_of_this_server_that_the_store_does_not_know_and_re_exports_lost_ones()
    {
        var known = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, tag = "iscsi-known" }));
        var strayUuid = Guid.NewGuid();
        var strayFile = Path.Combine(_server.DataDir, "stray.raw");
        await File.WriteAllBytesAsync(strayFile, new byte[1 << 20]);
        var foreignFile = Path.Combine(TempDir.Create("foreign"), "foreign.raw");
        await File.WriteAllBytesAsync(foreignFile, new byte[1 << 20]);
        var foreignUuid = Guid.NewGuid();
        int strayTid = 0, foreignTid = 0;
        try
        {
            // A target of this server's that no volume owns (a crash between export and row removal), and a
            // StratusLab target of another server (its backing file is elsewhere): only the first may go.
            strayTid = await PdiskHost.MakeTargetAsync(TgtAdm.IqnOf(strayUuid), Path.Combine(_server.DataDir, "volumes", strayUuid + ".raw"), strayFile);
            foreignTid = await PdiskHost.MakeTargetAsync(TgtAdm.IqnOf(foreignUuid), foreignFile, null);
            // tgtd restarted without the known volume's target.
            var knownTarget = (await PdiskHost.TargetsAsync()).Single(t => t.Name == TgtAdm.IqnOf(Guid.Parse(known)));
            Assert.That((await Run("tgtadm", TgtAdm.DeleteTarget(knownTarget.Tid).ToArray())).Exit, Is.Zero);

            var report = await (await _admin.PostAsync("/api/v1/volumes/reconcile", null)).Json(200);
            var targets = await PdiskHost.TargetsAsync();
            Assert.That(targets.Any(t => t.Name == TgtAdm.IqnOf(strayUuid)), Is.False, report.ToJsonString());
            Assert.That(targets.Any(t => t.Name == TgtAdm.IqnOf(foreignUuid)), Is.True, "another server's target is left alone");
            Assert.That(targets.Any(t => t.Name == TgtAdm.IqnOf(Guid.Parse(known))), Is.True, "the lost export was made again");
            Assert.That(report["reexported"]!.AsArray().Select(r => r!.GetValue<string>()), Has.One.Contains(known));
        }
        finally
        {
            foreach (var tid in new[] { strayTid, foreignTid }.Where(t => t > 0))
                await Run("tgtadm", TgtAdm.DeleteTarget(tid).ToArray());
            TempDir.Delete(Path.GetDirectoryName(foreignFile)!);
        }
    }
}

/// <summary>tgtd helpers for host tests.</summary>
internal static class PdiskHost
{
    public static async Task<IReadOnlyList<TgtTarget>> TargetsAsync()
    {
        var show = await HostTools.RunAsync("tgtadm", TgtAdm.ShowTargets(), TimeSpan.FromSeconds(30));
        return show.Exit == 0 ? TgtAdm.ParseTargets(show.Out) : [];
    }

    /// <summary>Makes a target by hand (as a crash or another server would leave it); returns its tid.</summary>
    public static async Task<int> MakeTargetAsync(string iqn, string backingPath, string? createFrom)
    {
        if (createFrom is not null) File.Move(createFrom, backingPath);
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var tid = TgtAdm.LowestFreeTid(await TargetsAsync());
            var made = await HostTools.RunAsync("tgtadm", TgtAdm.NewTarget(tid, iqn), TimeSpan.FromSeconds(30));
            if (made.Exit != 0) continue;
            var lun = await HostTools.RunAsync("tgtadm", TgtAdm.NewLun(tid, backingPath), TimeSpan.FromSeconds(30));
            Assert.That(lun.Exit, Is.Zero, lun.Err);
            return tid;
        }
        Assert.Fail("could not make a test target");
        return 0;
    }

    /// <summary>Deletes every target whose backing store lies under <paramref name="directory"/> (a test server's data dir).</summary>
    public static async Task RemoveTargetsUnderAsync(string directory)
    {
        foreach (var target in await TargetsAsync())
            if (target.BackingPath?.StartsWith(directory + "/", StringComparison.Ordinal) == true)
                await HostTools.RunAsync("tgtadm", TgtAdm.DeleteTarget(target.Tid), TimeSpan.FromSeconds(30));
    }
}
