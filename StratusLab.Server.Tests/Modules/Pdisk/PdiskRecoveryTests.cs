using System.Net.Http.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>Nothing half-made stays behind: failing steps undo themselves, and a restart cleans up after a crash.</summary>
public class PdiskRecoveryTests
{
    static TestServer WithRunner(ICommandRunner runner, Dictionary<string, string?>? settings = null, string? dataDir = null) =>
        TestServer.StartAsync(settings, dataDir, b => b.UseCommandRunner(runner)).GetAwaiter().GetResult();

    /// <summary>Volumes, files and the admin's storage use: what must be the same before and after a failure.</summary>
    static async Task<(string Volumes, string Files, long Quota)> StateAsync(TestServer server, HttpClient admin)
    {
        var list = (await (await admin.GetAsync("/api/v1/volumes?limit=1000")).Json(200)).AsArray().Select(v => Volumes.Uuid(v!));
        return (Join(list), Join(Volumes.FilesOf(server)), await Volumes.StorageUsedAsync(admin, "admin"));
    }

    static string Join(IEnumerable<string> items, params string[] more) => string.Join(",", items.Concat(more).Order());

    static string Join(string joined, params string[] more) => Join(joined.Split(',', StringSplitOptions.RemoveEmptyEntries), more);

    [Test]
    public async Task A_failing_qemu_img_leaves_no_row_no_file_and_no_quota_used()
    {
        var runner = new InterceptingCommandRunner(c => c.Tool == "qemu-img" && c.Arguments[0] == "create"
            ? InterceptingCommandRunner.Fails("qemu-img: /x: Could not create image: No space left on device") : null);
        await using var server = WithRunner(runner);
        using var admin = server.Client();
        var before = await StateAsync(server, admin);
        // A tool out of space is a 507 naming the data dir's filesystem, with the tool's own words.
        var problem = await (await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1 })).Problem(507);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("No space left on device").And.Contain("holding the data dir is full"));
        Assert.That(problem["filesystem"]!.GetValue<string>(), Is.Not.Empty);
        Assert.That(await StateAsync(server, admin), Is.EqualTo(before));
    }

    [Test, CancelAfter(120_000)]
    public async Task A_creation_whose_undo_cannot_write_the_store_is_removed_by_the_next_pass_with_its_quota()
    {
        var dataDir = TempDir.Create("stranded");
        SqliteConnection? holder = null;
        try
        {
            // qemu-img fails for lack of space, and meanwhile another writer holds the store: the undo cannot delete the row.
            var runner = new InterceptingCommandRunner(c =>
            {
                if (c.Tool != "qemu-img" || c.Arguments[0] != "create") return null;
                holder = new SqliteConnection($"Data Source={Path.Combine(dataDir, "stratuslab.db")};Pooling=False");
                holder.Open();
                holder.Execute("BEGIN EXCLUSIVE");
                return InterceptingCommandRunner.Fails("qemu-img: /x: Could not create image: No space left on device");
            });
            await using var server = WithRunner(runner, new Dictionary<string, string?> { ["Store:BusyTimeoutMs"] = "200" }, dataDir);
            using var admin = server.Client();
            var before = await StateAsync(server, admin);
            await (await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1, tag = "stranded" })).Problem(507);
            holder!.Execute("ROLLBACK");
            holder!.Dispose();
            holder = null;

            var stranded = (await (await admin.GetAsync("/api/v1/volumes?state=CREATING")).Json(200)).AsArray();
            Assert.That(stranded, Has.Count.EqualTo(1), "the failed undo left the row CREATING");
            Assert.That(await Volumes.StorageUsedAsync(admin, "admin"), Is.EqualTo(before.Quota + 1), "its quota stays with the row");

            var volumes = server.App.Services.GetRequiredService<StratusLab.Server.Modules.Pdisk.VolumeLifecycle>();
            var removed = await volumes.FinishStrandedCreationsAsync(CancellationToken.None);
            Assert.That(removed, Is.EqualTo(new[] { Volumes.Uuid(stranded[0]!) }));
            Assert.That(await StateAsync(server, admin), Is.EqualTo(before), "no row, no file, and the quota given back once");
            Assert.That(await volumes.FinishStrandedCreationsAsync(CancellationToken.None), Is.Empty);
        }
        finally
        {
            holder?.Dispose();
            TempDir.Delete(dataDir);
        }
    }

    [Test]
    public async Task A_failing_iscsi_export_removes_the_volume_file_and_the_half_made_target()
    {
        var runner = new InterceptingCommandRunner(c => c.Tool switch
        {
            "tgtadm" when c.Arguments.Contains("show") => InterceptingCommandRunner.Prints(""),
            "tgtadm" when c.Arguments.Contains("logicalunit") => InterceptingCommandRunner.Fails("tgtadm: invalid request"),
            "tgtadm" => InterceptingCommandRunner.Prints(""),
            _ => null,
        });
        await using var server = WithRunner(runner);
        using var admin = server.Client();
        var before = await StateAsync(server, admin);
        var problem = await (await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1, sharing = "iscsi" })).Problem(503);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("iscsi").And.Contain("invalid request"));
        Assert.That(runner.Lines.Last(l => l.StartsWith("tgtadm")), Does.Match(@"--op delete --mode target --tid 1 --force$"));
        Assert.That(await StateAsync(server, admin), Is.EqualTo(before), "the volume file made before the export failed is removed, and its row and quota");
    }

    [Test]
    public async Task A_failing_snapshot_leaves_the_origin_as_it_was()
    {
        var runner = new InterceptingCommandRunner(c => c.Tool == "qemu-img" && c.Arguments.Contains("-b")
            ? InterceptingCommandRunner.Fails("qemu-img: Could not open backing file") : null);
        await using var server = WithRunner(runner);
        using var admin = server.Client();
        var origin = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, type = "DATA_IMAGE_ORIGIN" }));
        var before = await StateAsync(server, admin);
        await (await admin.PostAsJsonAsync($"/api/v1/volumes/{origin}/snapshots", new { })).Problem(503);
        var after = await Volumes.GetAsync(admin, origin);
        Assert.That(after["count"]!.GetValue<long>(), Is.Zero);
        Assert.That(await StateAsync(server, admin), Is.EqualTo(before));
        await (await admin.DeleteAsync($"/api/v1/volumes/{origin}")).Json(204);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_restart_after_a_crash_undoes_unfinished_creations_removes_orphans_and_reports_missing_volumes()
    {
        var dataDir = TempDir.Create("crash");
        try
        {
            string kept, lost;
            (string Volumes, string Files, long Quota) initial;
            await using (var server = await TestServer.StartAsync(dataDir: dataDir))
            {
                using var admin = server.Client();
                initial = await StateAsync(server, admin);
                kept = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "kept" }));
                lost = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "lost" }));
            }
            var volumes = Path.Combine(dataDir, "volumes");
            // What a crash leaves: a row still CREATING whose file exists and whose quota is held, an unknown
            // volume file, a half-received upload; and a volume whose file vanished behind the server's back.
            var unfinished = Guid.NewGuid().ToString("D");
            var orphan = Guid.NewGuid().ToString("D");
            await File.WriteAllBytesAsync(Path.Combine(volumes, unfinished + ".raw"), new byte[4096]);
            await File.WriteAllBytesAsync(Path.Combine(volumes, orphan + ".qcow2"), new byte[4096]);
            Directory.CreateDirectory(Path.Combine(volumes, ".staging"));
            await File.WriteAllBytesAsync(Path.Combine(volumes, ".staging", "upload.img"), new byte[4096]);
            File.Delete(Path.Combine(volumes, lost + ".raw"));
            await using (var db = new SqliteConnection($"Data Source={Path.Combine(dataDir, "stratuslab.db")}"))
            {
                await db.ExecuteAsync("""
                    INSERT INTO pdisk_volumes (uuid, owner_id, visibility, size_bytes, quota_gib, type, state, backend, format, path, sharing, created_at, updated_at)
                    VALUES (@unfinished, 1, 'private', 1073741824, 1, 'DATA_IMAGE_RAW_READ_WRITE', 'CREATING', 'file', 'raw', @path, 'local', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
                    UPDATE id_quota_usage SET storage_gib = storage_gib + 1 WHERE user_id = 1;
                    """, new { unfinished, path = Path.Combine(volumes, unfinished + ".raw") });
            }

            await using (var server = await TestServer.StartAsync(dataDir: dataDir))
            {
                using var admin = server.Client();
                var now = await StateAsync(server, admin);
                Assert.That(now.Files, Is.EqualTo(Join(initial.Files, kept + ".raw")));
                Assert.That(now.Volumes, Is.EqualTo(Join(initial.Volumes, kept, lost)));
                Assert.That(now.Quota, Is.EqualTo(initial.Quota + 2), "the unfinished creation's quota was given back");

                var report = await (await admin.PostAsync("/api/v1/volumes/reconcile", null)).Json(200);
                Assert.That(report["missing"]!.AsArray().Select(m => m!.GetValue<string>()), Has.One.Contains(lost));
                Assert.That(report["removedOrphans"]!.AsArray(), Is.Empty, "the start-up pass already removed them");
                await (await admin.DeleteAsync($"/api/v1/volumes/{lost}")).Json(204);
            }
        }
        finally
        {
            TempDir.Delete(dataDir);
        }
    }
}
