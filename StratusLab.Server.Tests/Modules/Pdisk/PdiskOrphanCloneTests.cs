using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>
/// A boot-disk clone the image cache made for an instance whose PROLOG died before the mount (kill -9) is an orphan:
/// reconciliation quarantines and purges it, so it stops counting against quota and pinning its origin.
/// </summary>
public class PdiskOrphanCloneTests
{
    static async Task<string> UploadOriginAsync(HttpClient admin)
    {
        var (data, _) = Volumes.DiskBytes(1, seed: 7);
        var upload = await admin.PostAsync("/api/v1/volumes/upload?type=MACHINE_IMAGE_ORIGIN&tag=orphan-origin", new ByteArrayContent(data));
        return Volumes.Uuid(await upload.Json(201));
    }

    /// <summary>What Images does in PROLOG: a copy-on-write clone of the cached origin for the instance's owner.</summary>
    static async Task<string> CloneForInstanceAsync(TestServer server, string origin)
    {
        var admin = await server.App.Services.GetRequiredService<IUserDirectory>().FindByNameAsync("admin");
        var clone = await server.App.Services.GetRequiredService<IVolumes>().CreateSnapshotAsync(Guid.Parse(origin), admin!.Id, sharing: "local");
        return clone.Uuid.ToString("D");
    }

    static async Task<IReadOnlyList<string>> OrphanClonesOf(HttpClient admin) =>
        (await (await admin.PostAsync("/api/v1/volumes/reconcile", null)).Json(200))["orphanClones"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();

    [Test, CancelAfter(90_000)]
    public async Task A_clone_left_unmounted_by_a_crash_is_quarantined_at_start_and_stops_counting_against_quota_and_pinning_its_origin()
    {
        var dataDir = TempDir.Create("orphan");
        try
        {
            string origin, orphan, mine;
            long before;
            await using (var server = await TestServer.StartAsync(dataDir: dataDir))
            {
                using var admin = server.Client();
                origin = await UploadOriginAsync(admin);
                before = await Volumes.StorageUsedAsync(admin, "admin");
                orphan = await CloneForInstanceAsync(server, origin);
                // A user's own snapshot is never mounted by anyone and must stay.
                mine = Volumes.Uuid(await (await admin.PostAsJsonAsync($"/api/v1/volumes/{origin}/snapshots", new { tag = "mine" })).Json(201));
                Assert.That(await Volumes.StorageUsedAsync(admin, "admin"), Is.EqualTo(before + 2));
                Assert.That(await OrphanClonesOf(admin), Is.Empty, "a clone this run made moments ago may still be mounted by its PROLOG");
                await (await admin.DeleteAsync($"/api/v1/volumes/{origin}")).Problem(409);
            }
            // The server dies here (nothing on the way down touches volumes): the PROLOG that made the clone never mounts it.

            await using (var server = await TestServer.StartAsync(dataDir: dataDir))
            {
                using var admin = server.Client();
                await (await admin.GetAsync($"/api/v1/volumes/{orphan}")).Problem(404);
                Assert.That(Volumes.FilesOf(server), Has.None.Contains(orphan), "its file is gone");
                Assert.That(await Volumes.StorageUsedAsync(admin, "admin"), Is.EqualTo(before + 1), "only the user's own snapshot still counts");
                await Volumes.GetAsync(admin, mine);
                await (await admin.DeleteAsync($"/api/v1/volumes/{mine}")).Json(204);
                await (await admin.DeleteAsync($"/api/v1/volumes/{origin}")).Json(204);
                Assert.That(await Volumes.StorageUsedAsync(admin, "admin"), Is.EqualTo(before - 1), "the origin no longer pinned: evictable");
            }
        }
        finally
        {
            TempDir.Delete(dataDir);
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task A_clone_of_this_run_unmounted_past_its_grace_is_quarantined_while_a_mounted_one_stays()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Pdisk:UnmountedCloneMinutes"] = "0" });
        using var admin = server.Client();
        var origin = await UploadOriginAsync(admin);
        var before = await Volumes.StorageUsedAsync(admin, "admin");
        var orphan = await CloneForInstanceAsync(server, origin);
        var claimed = await CloneForInstanceAsync(server, origin);
        var volumes = server.App.Services.GetRequiredService<IVolumes>();
        // A live instance (simulated driver: no boot disk of its own) whose PROLOG mounted the clone.
        var instance = (await Compute.InstanceApiTests.CreateAsync(admin, new { name = "claims-a-clone" }))["id"]!.GetValue<long>();
        await volumes.MountAsync(new VolumeMountRequest(Guid.Parse(claimed), instance, "host-a", "vda", false, QuarantineWhenReleased: true));

        var orphans = await OrphanClonesOf(admin);
        Assert.That(orphans, Has.Exactly(1).Items.And.One.Contains(orphan));
        await (await admin.GetAsync($"/api/v1/volumes/{orphan}")).Problem(404);
        var kept = await Volumes.GetAsync(admin, claimed);
        Assert.That(kept["state"]!.GetValue<string>(), Is.EqualTo("READY"));
        Assert.That(await Volumes.StorageUsedAsync(admin, "admin"), Is.EqualTo(before + 1));

        // Once mounted, a clone is the instance's: its end (not reconciliation of clones) sends it to quarantine.
        await volumes.ReleaseMountsAsync(instance);
        Assert.That(await OrphanClonesOf(admin), Is.Empty);
        var quarantined = await (await admin.GetAsync($"/api/v1/volumes/{claimed}")).Json(200);
        Assert.That(quarantined["state"]!.GetValue<string>(), Is.EqualTo("QUARANTINED"));
    }
}
