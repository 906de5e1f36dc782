using System.Net.Http.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>
/// Storage quota changes in the transaction that writes or removes the volume row justifying it, so the usage always
/// equals the quota of the user's volume rows, whatever fails (or dies) in between.
/// </summary>
public class PdiskQuotaTests
{
    static SqliteConnection Db(TestServer server) => new($"Data Source={Path.Combine(server.DataDir, "stratuslab.db")}");

    /// <summary>(stored usage, quota of the user's volume rows) straight from the store.</summary>
    static async Task<(long Stored, long Rows)> StorageAsync(TestServer server, string user)
    {
        await using var db = Db(server);
        var id = await db.ExecuteScalarAsync<long>("SELECT id FROM id_users WHERE name = @user", new { user });
        var stored = await db.ExecuteScalarAsync<long?>("SELECT storage_gib FROM id_quota_usage WHERE user_id = @id", new { id }) ?? 0;
        var rows = await db.ExecuteScalarAsync<long>("SELECT COALESCE(SUM(quota_gib), 0) FROM pdisk_volumes WHERE owner_id = @id", new { id });
        return (stored, rows);
    }

    static async Task AssertNoDriftAsync(TestServer server, string user, long expectedRows, string when)
    {
        var (stored, rows) = await StorageAsync(server, user);
        Assert.That(rows, Is.EqualTo(expectedRows), $"{when}: the quota of {user}'s volume rows");
        Assert.That(stored, Is.EqualTo(rows), $"{when}: stored storage usage equals what {user}'s volume rows justify");
    }

    [Test, CancelAfter(60_000)]
    public async Task Storage_usage_is_always_the_quota_of_the_users_volume_rows()
    {
        await using var server = await TestServer.StartAsync();
        using var admin = server.Client();
        using var alice = server.Client(await server.CreateUserAsync("alice"));
        await (await admin.PostAsJsonAsync("/api/v1/quotas/alice", new { storageGiB = 4 })).Json(200);

        var data = Volumes.Uuid(await Volumes.CreateAsync(alice, new { size = 2, tag = "data" }));
        await AssertNoDriftAsync(server, "alice", 2, "after a create");
        var origin = Volumes.Uuid(await Volumes.CreateAsync(alice, new { size = 1, type = "DATA_IMAGE_ORIGIN", identifier = "AuotaTestOriginAAAAAAAAAAAA" }));
        var snapshot = Volumes.Uuid(await (await alice.PostAsJsonAsync($"/api/v1/volumes/{origin}/snapshots", new { })).Json(201));
        await AssertNoDriftAsync(server, "alice", 4, "after a snapshot");

        var over = await (await alice.PostAsJsonAsync("/api/v1/volumes", new { size = 1 })).Problem(409);
        Assert.That(over["exceeded"]!.AsArray(), Has.Count.EqualTo(1));
        await AssertNoDriftAsync(server, "alice", 4, "after a refusal over quota");
        await (await alice.DeleteAsync($"/api/v1/volumes/{data}")).Json(204);
        await (await alice.PostAsJsonAsync("/api/v1/volumes", new { size = 1, identifier = "AuotaTestOriginAAAAAAAAAAAA" })).Problem(409);
        await AssertNoDriftAsync(server, "alice", 2, "after a delete and a refused identifier");

        await (await alice.DeleteAsync($"/api/v1/volumes/{snapshot}")).Json(204);
        await (await alice.DeleteAsync($"/api/v1/volumes/{origin}")).Json(204);
        await AssertNoDriftAsync(server, "alice", 0, "after deleting everything");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_failure_between_removing_a_volume_row_and_giving_its_quota_back_keeps_both_and_the_retry_frees_both()
    {
        await using var server = await TestServer.StartAsync();
        using var admin = server.Client();
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "doomed" }));
        var (_, rowsBefore) = await StorageAsync(server, "admin");
        await AssertNoDriftAsync(server, "admin", rowsBefore, "before");

        // The store refuses the quota write (as if the process died right there): the row removal must not survive alone.
        await using (var db = Db(server))
            await db.ExecuteAsync("CREATE TRIGGER test_quota_fault BEFORE UPDATE ON id_quota_usage BEGIN SELECT RAISE(ABORT, 'injected fault: quota write failed'); END;");
        var failed = await admin.DeleteAsync($"/api/v1/volumes/{uuid}");
        Assert.That((int)failed.StatusCode, Is.Not.EqualTo(204), await failed.Content.ReadAsStringAsync());
        await AssertNoDriftAsync(server, "admin", rowsBefore, "after the failed removal");
        await using (var db = Db(server))
        {
            Assert.That(await db.ExecuteScalarAsync<string>("SELECT state FROM pdisk_volumes WHERE uuid = @uuid", new { uuid }), Is.EqualTo("DELETING"), "kept, to be retried");
            await db.ExecuteAsync("DROP TRIGGER test_quota_fault");
        }

        await (await admin.PostAsync("/api/v1/volumes/reconcile", null)).Json(200);
        await (await admin.GetAsync($"/api/v1/volumes/{uuid}")).Problem(404);
        await AssertNoDriftAsync(server, "admin", rowsBefore - 1, "after the retry");
    }
}
