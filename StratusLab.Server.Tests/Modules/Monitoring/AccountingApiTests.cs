using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Monitoring;

/// <summary>Usage records over HTTP (simulated driver): across restarts and purges, user isolation, CSV and APEL exports field by field.</summary>
public class AccountingApiTests
{
    static readonly Dictionary<string, string?> Settings = new()
    {
        ["Monitoring:SampleIntervalSeconds"] = "1",
        ["Monitoring:SiteName"] = "TEST-SITE",
        ["Monitoring:CloudComputeService"] = "test-cloud",
    };

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    static async Task<JsonArray> UsageAsync(HttpClient http, string query = "") =>
        (await (await http.GetAsync("/api/v1/accounting" + query)).Json(200)).AsArray();

    /// <summary>Waits until the instance's record satisfies <paramref name="done"/> (or 30 s pass) and returns it.</summary>
    static async Task<JsonNode> RecordAsync(HttpClient http, long id, Func<JsonNode, bool> done, string query = "")
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var record = (await UsageAsync(http, query)).SingleOrDefault(r => r!["instanceId"]!.GetValue<long>() == id);
            if (record is not null && done(record) || DateTime.UtcNow > deadline)
            {
                Assert.That(record, Is.Not.Null, $"no usage record for instance {id}");
                return record!;
            }
            await Task.Delay(250);
        }
    }

    static long Seconds(JsonNode node, string field) => node[field]!.GetValue<long>();

    [Test, CancelAfter(180_000)]
    public async Task A_usage_record_survives_restarts_and_the_purge_of_its_instance_and_exports_to_CSV_and_APEL_field_by_field()
    {
        var dataDir = TempDir.Create("acct");
        try
        {
            var user = Unique("acct");
            string token;
            long id;
            JsonNode before;
            string image;
            await using (var first = await TestServer.StartAsync(Settings, dataDir))
            {
                token = await first.CreateUserAsync(user);
                using var http = first.Client(token);
                id = (await (await http.PostAsJsonAsync("/api/v1/instances", new { instanceType = "t1.tiny", name = "acct-vm" })).Json(201))["id"]!.GetValue<long>();
                var running = await InstanceApiTests.WaitAsync(http, id, "RUNNING", 60);
                Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
                image = running["image"]!.GetValue<string>();
                before = await RecordAsync(http, id, r => Seconds(r, "wallSeconds") >= 2 && Seconds(r, "cpuSeconds") >= 1);
            }
            Assert.That(before["owner"]!.GetValue<string>(), Is.EqualTo(user));
            Assert.That(before["group"]!.GetValue<string>(), Is.Not.Empty);
            Assert.That(before["image"]!.GetValue<string>(), Is.EqualTo(image));
            Assert.That(before["instanceType"]!.GetValue<string>(), Is.EqualTo("t1.tiny"));
            Assert.That(before["cpu"]!.GetValue<long>(), Is.EqualTo(1));
            Assert.That(before["memoryMiB"]!.GetValue<long>(), Is.EqualTo(128));
            Assert.That(before["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
            Assert.That(before["simulated"]!.GetValue<bool>(), Is.True);
            Assert.That(Seconds(before, "netRxBytes"), Is.GreaterThan(0));
            Assert.That(Seconds(before, "diskWriteBytes"), Is.GreaterThan(0));
            Assert.That(Seconds(before, "stateChanges"), Is.GreaterThanOrEqualTo(1), "at least the move to RUNNING");

            JsonNode after;
            await using (var second = await TestServer.StartAsync(Settings, dataDir))
            {
                using var http = second.Client(token);
                var wall = Seconds(before, "wallSeconds");
                var cpuBefore = Seconds(before, "cpuSeconds");
                var again = await RecordAsync(http, id, r => Seconds(r, "wallSeconds") > wall + 1 && Seconds(r, "cpuSeconds") > cpuBefore);
                Assert.That(Seconds(again, "wallSeconds"), Is.GreaterThan(wall + 1), "the VM kept running across the restart, and so does its wall time");
                Assert.That(again["cpuSeconds"]!.GetValue<long>(), Is.GreaterThan(before["cpuSeconds"]!.GetValue<long>()));
                Assert.That((await UsageAsync(http)).Count(r => r!["instanceId"]!.GetValue<long>() == id), Is.EqualTo(1), "one record per instance per period");
                await (await http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
                Assert.That((await InstanceApiTests.WaitAsync(http, id, "DONE", 60))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
                after = await RecordAsync(http, id, r => r["state"]!.GetValue<string>() == "DONE");
            }
            Assert.That(after["endedAt"], Is.Not.Null, after.ToJsonString());
            Assert.That(Seconds(after, "stateChanges"), Is.GreaterThan(Seconds(before, "stateChanges")), "EPILOG and DONE were counted");

            // The instance row goes, as Compute's retention of ended instances would make it go.
            await using (var c = new SqliteConnection($"Data Source={Path.Combine(dataDir, "stratuslab.db")}"))
            {
                await c.OpenAsync();
                await using var cmd = c.CreateCommand();
                cmd.CommandText = "DELETE FROM compute_instances WHERE id = $id";
                cmd.Parameters.AddWithValue("$id", id);
                Assert.That(await cmd.ExecuteNonQueryAsync(), Is.EqualTo(1));
            }
            SqliteConnection.ClearAllPools();

            await using var third = await TestServer.StartAsync(Settings, dataDir);
            using var owner = third.Client(token);
            using var admin = third.Client();
            await (await owner.GetAsync($"/api/v1/instances/{id}")).Problem(404);
            var kept = (await UsageAsync(owner)).Single(r => r!["instanceId"]!.GetValue<long>() == id)!;
            Assert.That(kept.ToJsonString(), Is.EqualTo(after.ToJsonString()), "the record outlives its instance unchanged");

            // CSV: the same record, column by column (by ?format=csv and by Accept: text/csv).
            var csv = await (await owner.GetAsync("/api/v1/accounting?format=csv")).Content.ReadAsStringAsync();
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/accounting");
            request.Headers.Accept.ParseAdd("text/csv");
            var byAccept = await owner.SendAsync(request);
            Assert.That(byAccept.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/csv"));
            Assert.That(await byAccept.Content.ReadAsStringAsync(), Is.EqualTo(csv));
            var lines = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
            var header = lines[0].Split(',');
            Assert.That(header, Is.EqualTo(new[]
            {
                "instanceId", "instanceName", "owner", "group", "image", "instanceType", "cpu", "memoryMiB", "host", "periodStart", "periodEnd", "createdAt",
                "startedAt", "endedAt", "state", "wallSeconds", "cpuSeconds", "netRxBytes", "netTxBytes", "diskReadBytes", "diskWriteBytes", "stateChanges", "simulated",
            }));
            var row = lines.Skip(1).Select(l => l.Split(',')).Single(cells => cells[0] == id.ToString(CultureInfo.InvariantCulture));
            for (var i = 0; i < header.Length; i++)
            {
                var json = kept[header[i]];
                var expected = json is null ? "" : json.GetValueKind() == System.Text.Json.JsonValueKind.String ? json.GetValue<string>() : json.ToJsonString();
                Assert.That(row[i], Is.EqualTo(expected), $"CSV column {header[i]}");
            }

            // APEL cloud usage record v0.4: the header, then the record's fields.
            var asked = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var apel = await (await admin.GetAsync("/api/v1/accounting/apel")).Content.ReadAsStringAsync();
            var answered = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            Assert.That(apel, Does.StartWith("APEL-cloud-message: v0.4\n"));
            var records = apel["APEL-cloud-message: v0.4\n".Length..].Split("%%\n", StringSplitOptions.RemoveEmptyEntries);
            var fields = records.Select(r => r.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToDictionary(l => l[..l.IndexOf(':')], l => l[(l.IndexOf(':') + 2)..]))
                .Single(f => f["VMUUID"].EndsWith($" TEST-SITE {id}", StringComparison.Ordinal));
            var created = kept["createdAt"]!.GetValue<DateTimeOffset>();
            var startTime = (kept["startedAt"] is { } s ? s.GetValue<DateTimeOffset>() : created).ToUnixTimeSeconds();
            // The fields of APEL's CloudRecord message v0.4 (apel/db/records/cloud.py), in its order; Disk is absent because the
            // simulated driver has no disks to measure, the benchmark, network type, public IP count, suspend time and storage record
            // are not known here.
            Assert.That(fields.Keys, Is.EqualTo(new[]
            {
                "RecordCreateTime", "VMUUID", "SiteName", "CloudComputeService", "MachineName", "LocalUserId", "LocalGroupId", "GlobalUserName", "FQAN",
                "Status", "StartTime", "EndTime", "WallDuration", "CpuDuration", "CpuCount", "NetworkInbound", "NetworkOutbound", "Memory", "ImageId", "CloudType",
            }), "APEL v0.4 field order");
            Assert.That(long.Parse(fields["RecordCreateTime"], CultureInfo.InvariantCulture), Is.InRange(asked, answered), "RecordCreateTime is when the message was made");
            fields.Remove("RecordCreateTime");
            Assert.That(fields, Is.EquivalentTo(new Dictionary<string, string>
            {
                ["GlobalUserName"] = $"{user}@TEST-SITE",
                ["FQAN"] = $"/{kept["group"]!.GetValue<string>()}/Role=NULL/Capability=NULL",
                ["VMUUID"] = $"{created.UtcDateTime:yyyy-MM-dd HH:mm:ss}+00:00 TEST-SITE {id}",
                ["SiteName"] = "TEST-SITE",
                ["CloudComputeService"] = "test-cloud",
                ["MachineName"] = "acct-vm",
                ["LocalUserId"] = user,
                ["LocalGroupId"] = kept["group"]!.GetValue<string>(),
                ["Status"] = "completed",
                ["StartTime"] = startTime.ToString(CultureInfo.InvariantCulture),
                ["EndTime"] = kept["endedAt"]!.GetValue<DateTimeOffset>().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
                ["WallDuration"] = Seconds(kept, "wallSeconds").ToString(CultureInfo.InvariantCulture),
                ["CpuDuration"] = Seconds(kept, "cpuSeconds").ToString(CultureInfo.InvariantCulture),
                ["CpuCount"] = "1",
                ["NetworkInbound"] = (Seconds(kept, "netRxBytes") / 1_000_000_000).ToString(CultureInfo.InvariantCulture),
                ["NetworkOutbound"] = (Seconds(kept, "netTxBytes") / 1_000_000_000).ToString(CultureInfo.InvariantCulture),
                ["Memory"] = "128",
                ["ImageId"] = image,
                ["CloudType"] = "StratusLab",
            }));
            Assert.That((int)(await owner.GetAsync("/api/v1/accounting/apel")).StatusCode, Is.EqualTo(403), "the APEL export is for admins");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            TempDir.Delete(dataDir);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task A_user_sees_only_their_own_usage_and_an_admin_sums_everyones_by_user_group_image_and_day()
    {
        await using var server = await TestServer.StartAsync(Settings);
        var alice = Unique("alice");
        var bob = Unique("bob");
        using var a = server.Client(await server.CreateUserAsync(alice));
        using var b = server.Client(await server.CreateUserAsync(bob));
        using var admin = server.Client();
        var ids = new List<long>();
        foreach (var http in new[] { a, a, b })
        {
            var id = (await (await http.PostAsJsonAsync("/api/v1/instances", new { instanceType = "t1.tiny" })).Json(201))["id"]!.GetValue<long>();
            await InstanceApiTests.WaitAsync(http, id, "RUNNING", 60);
            ids.Add(id);
        }
        foreach (var id in ids) await RecordAsync(admin, id, r => Seconds(r, "wallSeconds") >= 1);

        var mine = await UsageAsync(a);
        Assert.That(mine.Select(r => r!["instanceId"]!.GetValue<long>()), Is.EquivalentTo(ids.Take(2)), "alice sees her two instances only");
        Assert.That(mine.All(r => r!["owner"]!.GetValue<string>() == alice), Is.True);
        Assert.That((await UsageAsync(a, $"?user={alice}")).Count, Is.EqualTo(2));
        await (await a.GetAsync($"/api/v1/accounting?user={bob}")).Problem(403);
        Assert.That((await UsageAsync(b, "?by=user")).Select(r => r!["key"]!.GetValue<string>()), Is.EqualTo(new[] { bob }), "bob's summary holds only bob");

        var byUser = await UsageAsync(admin, "?by=user");
        var aliceRow = byUser.Single(r => r!["key"]!.GetValue<string>() == alice)!;
        Assert.That(aliceRow["instances"]!.GetValue<long>(), Is.EqualTo(2));
        Assert.That(aliceRow["wallSeconds"]!.GetValue<long>(), Is.EqualTo(mine.Sum(r => Seconds(r!, "wallSeconds"))).Within(4), "the sum of her records (they keep growing)");
        Assert.That(byUser.Single(r => r!["key"]!.GetValue<string>() == bob)!["instances"]!.GetValue<long>(), Is.EqualTo(1));
        Assert.That((await UsageAsync(admin, $"?user={bob}")).Select(r => r!["instanceId"]!.GetValue<long>()), Is.EqualTo(new[] { ids[2] }));
        var byImage = await UsageAsync(admin, "?by=image");
        Assert.That(byImage.Single(r => r!["key"]!.GetValue<string>() == mine[0]!["image"]!.GetValue<string>())!["instances"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(3));
        var byDay = await UsageAsync(admin, "?by=day");
        Assert.That(byDay.Select(r => r!["key"]!.GetValue<string>()), Does.Contain(DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));
        var group = mine[0]!["group"]!.GetValue<string>();
        Assert.That((await UsageAsync(admin, $"?by=group&group={group}")).Single()!["key"]!.GetValue<string>(), Is.EqualTo(group));
        var summaryCsv = await (await admin.GetAsync("/api/v1/accounting?by=user&format=csv")).Content.ReadAsStringAsync();
        Assert.That(summaryCsv, Does.StartWith("by,key,instances,records,wallSeconds,cpuSeconds,"));
        Assert.That(summaryCsv, Does.Contain($"\r\nuser,{alice},2,2,"));

        var badBy = await (await admin.GetAsync("/api/v1/accounting?by=week")).Problem(400);
        Assert.That(badBy["detail"]!.GetValue<string>(), Does.Contain("user, group, image, day"));
        await (await admin.GetAsync("/api/v1/accounting?from=not-a-time")).Problem(400);
        await (await admin.GetAsync("/api/v1/accounting?user=nobody-here")).Problem(404);
        Assert.That(await UsageAsync(a, "?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z"), Is.Empty, "nothing in a window long past");
    }
}
