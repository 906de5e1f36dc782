using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StratusLab.Server.Modules.Monitoring.Contracts;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Monitoring;

/// <summary>Sampling, downsampling, retention, host metrics, /metrics and guest KPIs over HTTP (simulated driver, real context media).</summary>
public class MonitoringApiTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:SimulatedMedia"] = "true",
            ["Monitoring:SampleIntervalSeconds"] = "1",
            ["Monitoring:RollupSeconds"] = "2",
            ["Monitoring:RawRetentionSeconds"] = "6",
            ["Monitoring:RollupRetentionSeconds"] = "14",
            ["Monitoring:PerInstanceSeries"] = "true",
            ["Monitoring:PerInstanceSeriesMax"] = "2",
            ["Monitoring:KpiMaxPerReport"] = "4",
            ["Monitoring:KpiMaxNamesPerInstance"] = "5",
            ["Monitoring:KpiMaxReportsPerMinute"] = "8",
        });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Launches an instance as <paramref name="http"/>'s user and waits for RUNNING; returns its id and guest token (read from its context CD).</summary>
    async Task<(long Id, string Token)> RunAsync(HttpClient http)
    {
        var created = await (await http.PostAsJsonAsync("/api/v1/instances", new { instanceType = "t1.tiny" })).Json(201);
        var id = created["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(http, id, "RUNNING", 60);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        var script = await IsoFileAsync(Path.Combine(_server.DataDir, "instances", id.ToString(), "context.iso"), "/context.sh");
        var token = Regex.Match(script, "STRATUSLAB_TOKEN='([^']+)'").Groups[1].Value;
        Assert.That(token, Does.StartWith("slg_"), script);
        return (id, token);
    }

    static async Task<JsonNode> MetricsAsync(HttpClient http, long id, string query = "since=5m&resolution=raw") =>
        await (await http.GetAsync($"/api/v1/instances/{id}/metrics?{query}")).Json(200);

    /// <summary>Polls the instance's metrics until <paramref name="done"/> holds (or 30 s pass).</summary>
    static async Task<JsonNode> WaitForMetricsAsync(HttpClient http, long id, Func<JsonNode, bool> done, string query = "since=5m&resolution=raw")
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var node = await MetricsAsync(http, id, query);
            if (done(node) || deadline.Elapsed > TimeSpan.FromSeconds(30)) return node;
            await Task.Delay(250);
        }
    }

    static HttpRequestMessage GuestReport(string token, object body, string method = "PUT") =>
        new(new HttpMethod(method), "/guest/v1/metrics")
        {
            Content = JsonContent.Create(body),
            Headers = { Authorization = new("Bearer", token) },
        };

    [Test, CancelAfter(90_000)]
    public async Task A_running_instance_is_sampled_and_only_its_owner_and_admins_read_its_metrics()
    {
        using var owner = _server.Client(await _server.CreateUserAsync(Unique("mon")));
        using var other = _server.Client(await _server.CreateUserAsync(Unique("oth")));
        var (id, _) = await RunAsync(owner);

        var node = await WaitForMetricsAsync(owner, id, n => n["samples"]!.AsArray().Count >= 3);
        var samples = node["samples"]!.AsArray();
        Assert.That(samples.Count, Is.GreaterThanOrEqualTo(3), node.ToJsonString());
        Assert.That(node["resolution"]!.GetValue<long>(), Is.EqualTo(0));
        var first = samples[0]!;
        var last = samples[^1]!;
        Assert.That(last["simulated"]!.GetValue<bool>(), Is.True, "the simulated driver's numbers say so");
        Assert.That(last["cpuSeconds"]!.GetValue<double>(), Is.GreaterThan(first["cpuSeconds"]!.GetValue<double>()), "CPU time grows");
        Assert.That(last["diskWriteBytes"]!.GetValue<long>(), Is.GreaterThan(first["diskWriteBytes"]!.GetValue<long>()));
        Assert.That(last["netRxBytes"]!.GetValue<long>(), Is.GreaterThan(first["netRxBytes"]!.GetValue<long>()));
        // t1.tiny has 128 MiB: the simulated RSS is 55-65% of it.
        Assert.That(last["memoryRssBytes"]!.GetValue<long>(), Is.InRange(55L * 128 * 1024 * 1024 / 100, 65L * 128 * 1024 * 1024 / 100));
        Assert.That(last["cpuPercent"]!.GetValue<double>(), Is.InRange(10, 40), "one vCPU busy 10-40%");

        await (await other.GetAsync($"/api/v1/instances/{id}/metrics")).Problem(404);
        Assert.That((await MetricsAsync(_admin, id))["samples"]!.AsArray(), Is.Not.Empty, "an admin reads anyone's");
        await (await owner.GetAsync($"/api/v1/instances/{id}/metrics?since=yesterday-ish")).Problem(400);
        await (await owner.GetAsync($"/api/v1/instances/{id}/metrics?resolution=weekly")).Problem(400);
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
    }

    [Test, CancelAfter(90_000)]
    public async Task Raw_samples_are_rolled_up_into_buckets_and_both_are_dropped_after_their_retention()
    {
        using var owner = _server.Client(await _server.CreateUserAsync(Unique("roll")));
        var (id, _) = await RunAsync(owner);
        var started = DateTimeOffset.UtcNow;
        // Raw samples live 6 s, 2-second buckets 14 s: after 16 s both retentions have cut in.
        await Task.Delay(TimeSpan.FromSeconds(17));

        var raw = (await MetricsAsync(owner, id, "since=1h&resolution=raw"))["samples"]!.AsArray();
        var now = DateTimeOffset.UtcNow;
        Assert.That(raw, Is.Not.Empty);
        Assert.That(raw.Min(s => s!["at"]!.GetValue<DateTimeOffset>()), Is.GreaterThan(now.AddSeconds(-9)), "raw samples older than their retention are gone");

        var rolled = (await MetricsAsync(owner, id, "since=1h&resolution=rollup"));
        Assert.That(rolled["resolution"]!.GetValue<long>(), Is.EqualTo(2));
        var buckets = rolled["samples"]!.AsArray();
        Assert.That(buckets.Count, Is.GreaterThanOrEqualTo(3), rolled.ToJsonString());
        var times = buckets.Select(b => b!["at"]!.GetValue<DateTimeOffset>()).ToList();
        Assert.That(times.All(t => t.ToUnixTimeSeconds() % 2 == 0), Is.True, "buckets start on 2-second boundaries");
        Assert.That(times.Min(), Is.GreaterThan(now.AddSeconds(-17)), "buckets older than their retention are gone");
        Assert.That(times.Min(), Is.LessThan(raw.Min(s => s!["at"]!.GetValue<DateTimeOffset>())), "buckets reach back further than the raw samples");
        Assert.That(times.Min(), Is.GreaterThanOrEqualTo(started.AddSeconds(-2)));
        // A bucket's counter is the last value in it: counters keep growing from bucket to bucket.
        var cpu = buckets.Select(b => b!["cpuSeconds"]!.GetValue<double>()).ToList();
        Assert.That(cpu, Is.Ordered.Ascending);
        Assert.That(cpu[^1], Is.GreaterThan(cpu[0]));
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
    }

    [Test, CancelAfter(60_000)]
    public async Task Admins_read_host_metrics_and_users_may_not()
    {
        var hosts = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray();
        var local = hosts.First(h => h!["local"]!.GetValue<bool>())!["name"]!.GetValue<string>();
        var deadline = Stopwatch.StartNew();
        JsonNode node;
        do
        {
            node = await (await _admin.GetAsync($"/api/v1/hosts/{local}/metrics?since=1m")).Json(200);
            if (node["samples"]!.AsArray().Count >= 2) break;
            await Task.Delay(250);
        } while (deadline.Elapsed < TimeSpan.FromSeconds(20));
        var sample = node["samples"]!.AsArray()[^1]!;
        Assert.That(sample["cpus"]!.GetValue<long>(), Is.GreaterThan(0), node.ToJsonString());
        Assert.That(sample["memoryMiB"]!.GetValue<long>(), Is.GreaterThan(0));
        Assert.That(sample["load1"]!.GetValue<double>(), Is.GreaterThanOrEqualTo(0), "the local host's load average");
        await (await _admin.GetAsync("/api/v1/hosts/no-such-host/metrics")).Problem(404);
        using var user = _server.Client(await _server.CreateUserAsync(Unique("hm")));
        Assert.That((int)(await user.GetAsync($"/api/v1/hosts/{local}/metrics")).StatusCode, Is.EqualTo(403));
    }

    [Test, CancelAfter(90_000)]
    public async Task A_second_server_in_the_same_process_exports_only_its_own_instance_gauges()
    {
        // Test servers share one process (and the .NET meters' names); each /metrics must still count its own store.
        await using var other = await TestServer.StartAsync(new Dictionary<string, string?> { ["Monitoring:SampleIntervalSeconds"] = "1" });
        using var otherAdmin = other.Client();
        var (id, _) = await RunAsync(_admin);
        await Task.Delay(2500);
        var mine = await (await _admin.GetAsync("/metrics")).Content.ReadAsStringAsync();
        var theirs = await (await otherAdmin.GetAsync("/metrics")).Content.ReadAsStringAsync();
        Assert.That(Regex.Matches(mine, "^stratuslab_instances\\{", RegexOptions.Multiline), Is.Not.Empty, mine);
        Assert.That(theirs, Does.Not.Match("stratuslab_instances\\{[^}]*state=\"RUNNING\"\\} [1-9]"), "the other server runs nothing");
        Assert.That(Regex.Matches(theirs, "^# TYPE stratuslab_instances gauge", RegexOptions.Multiline), Has.Count.LessThanOrEqualTo(1), "one series family, not one per server");
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
    }

    [Test, CancelAfter(90_000)]
    public async Task Prometheus_metrics_count_instances_per_state_show_hosts_and_cap_per_instance_series()
    {
        var ids = new List<long>();
        for (var i = 0; i < 3; i++) ids.Add((await RunAsync(_admin)).Id);
        await Task.Delay(2500);
        var text = await (await _admin.GetAsync("/metrics")).Content.ReadAsStringAsync();
        var running = (await (await _admin.GetAsync("/api/v1/instances?state=RUNNING")).Json(200)).AsArray().Count;
        Assert.That(Regex.Match(text, "^stratuslab_instances\\{[^}]*state=\"RUNNING\"\\} (\\d+)", RegexOptions.Multiline).Groups[1].Value,
            Is.EqualTo(running.ToString()), text);
        Assert.That(text, Does.Match("stratuslab_instances\\{[^}]*state=\"PENDING\"\\} 0"));
        Assert.That(text, Does.Match("stratuslab_host_cpus\\{[^}]*host=\"[^\"]+\"\\} [1-9]"));
        Assert.That(text, Does.Match("stratuslab_host_allocated_memory_mib\\{[^}]*host="));
        var series = Regex.Matches(text, "^stratuslab_instance_cpu_seconds\\{[^}]*instance=\"(\\d+)\"", RegexOptions.Multiline).Select(m => long.Parse(m.Groups[1].Value)).ToList();
        Assert.That(series, Has.Count.EqualTo(2), "at most PerInstanceSeriesMax instances get series");
        Assert.That(series, Is.EquivalentTo(ids.OrderDescending().Take(2)), "the newest instances get them");
        foreach (var id in ids) await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
    }

    [Test, CancelAfter(90_000)]
    public async Task Guest_KPIs_are_checked_limited_in_count_and_rate_and_reach_the_store()
    {
        using var owner = _server.Client(await _server.CreateUserAsync(Unique("kpi")));
        var (id, token) = await RunAsync(owner);
        using var guest = _server.Client(null);

        Assert.That((int)(await guest.SendAsync(GuestReport(token, new Dictionary<string, double> { ["http_requests"] = 7, ["queue.depth"] = 2.5 }))).StatusCode, Is.EqualTo(204));
        var bad = await (await guest.SendAsync(GuestReport(token, new Dictionary<string, double> { ["9lives"] = 1 }))).Problem(400);
        Assert.That(bad["detail"]!.GetValue<string>(), Does.Contain("9lives").And.Contain("a letter first"));
        var many = await (await guest.SendAsync(GuestReport(token, Enumerable.Range(0, 5).ToDictionary(i => $"k{i}", i => (double)i)))).Problem(400);
        Assert.That(many["detail"]!.GetValue<string>(), Does.Contain("at most 4"));
        await (await guest.SendAsync(GuestReport(token, new Dictionary<string, double>()))).Problem(400);
        await (await guest.SendAsync(GuestReport("slg_not-a-token", new Dictionary<string, double> { ["x"] = 1 }))).Problem(401);
        // Four more names are past the 5 distinct names an instance may use.
        var names = await (await guest.SendAsync(GuestReport(token, new Dictionary<string, double> { ["a"] = 1, ["b"] = 1, ["c"] = 1, ["d"] = 1 }, "POST"))).Problem(422);
        Assert.That(names["detail"]!.GetValue<string>(), Does.Contain("limit of 5"));

        var metrics = await MetricsAsync(owner, id);
        var kpis = metrics["kpis"]!.AsArray();
        Assert.That(kpis.Select(k => k!["name"]!.GetValue<string>()), Is.EquivalentTo(new[] { "http_requests", "queue.depth" }), metrics.ToJsonString());
        Assert.That(kpis.First(k => k!["name"]!.GetValue<string>() == "http_requests")!["points"]![0]!["value"]!.GetValue<double>(), Is.EqualTo(7));

        // 8 reports a minute: the accepted one above plus the 422 (it passed the rate check) leave 6; the 7th more is refused.
        for (var i = 0; i < 6; i++)
            Assert.That((int)(await guest.SendAsync(GuestReport(token, new Dictionary<string, double> { ["http_requests"] = 8 + i }))).StatusCode, Is.EqualTo(204), $"report {i}");
        var limited = await (await guest.SendAsync(GuestReport(token, new Dictionary<string, double> { ["http_requests"] = 99 }))).Problem(429);
        Assert.That(limited["detail"]!.GetValue<string>(), Does.Contain("at most 8"));
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
    }

    [Test, CancelAfter(90_000)]
    public async Task The_KPI_reader_aggregates_a_KPI_over_members_and_a_window()
    {
        // Three members: more than a user's default quota, so the admin runs them.
        var (a, tokenA) = await RunAsync(_admin);
        var (b, tokenB) = await RunAsync(_admin);
        var (c, _) = await RunAsync(_admin);
        using var guest = _server.Client(null);
        // Member a reports 10 then 20 (mean 15), member b 40; c never reports.
        await (await guest.SendAsync(GuestReport(tokenA, new Dictionary<string, double> { ["rps"] = 10 }))).Json(204);
        // KPI times are whole seconds: 3.1 s apart, a 2-second window right after the second report cannot hold the first.
        await Task.Delay(3100);
        await (await guest.SendAsync(GuestReport(tokenA, new Dictionary<string, double> { ["rps"] = 20 }))).Json(204);
        await (await guest.SendAsync(GuestReport(tokenB, new Dictionary<string, double> { ["rps"] = 40 }))).Json(204);

        var reader = _server.App.Services.GetRequiredService<IKpiReader>();
        var members = new[] { a, b, c };
        var avg = await reader.ReadAsync(members, "rps", KpiAggregate.Avg, TimeSpan.FromMinutes(1));
        Assert.That(avg.Value, Is.EqualTo(27.5));
        Assert.That(avg.Members, Is.EqualTo(2), "the member that never reported is not counted");
        Assert.That(avg.Samples, Is.EqualTo(3));
        Assert.That(avg.PerMember[a], Is.EqualTo(15));
        Assert.That((await reader.ReadAsync(members, "rps", KpiAggregate.Min, TimeSpan.FromMinutes(1))).Value, Is.EqualTo(15));
        Assert.That((await reader.ReadAsync(members, "rps", KpiAggregate.Max, TimeSpan.FromMinutes(1))).Value, Is.EqualTo(40));
        Assert.That((await reader.ReadAsync(members, "rps", KpiAggregate.Sum, TimeSpan.FromMinutes(1))).Value, Is.EqualTo(55));
        Assert.That((await reader.ReadAsync(members, "latency", KpiAggregate.Avg, TimeSpan.FromMinutes(1))).Value, Is.Null, "no member reported it");
        await Task.Delay(500);
        // A window that starts after a's first report sees only its second one.
        var recent = await reader.ReadAsync([a], "rps", KpiAggregate.Avg, TimeSpan.FromSeconds(2));
        Assert.That(recent.Value, Is.EqualTo(20));
        Assert.That((await reader.LatestAsync(a))["rps"].Value, Is.EqualTo(20));
        Assert.ThrowsAsync<StratusLab.Server.Platform.Contracts.InvalidInputException>(() => reader.ReadAsync(members, "bad name", KpiAggregate.Avg, TimeSpan.FromMinutes(1)));
        foreach (var id in members) await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
    }

    internal static async Task<string> IsoFileAsync(string iso, string path)
    {
        var psi = new ProcessStartInfo("isoinfo", ["-R", "-i", iso, "-x", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        Assert.That(process.WaitForExit(10_000), Is.True, "isoinfo timed out");
        Assert.That(process.ExitCode, Is.EqualTo(0), await process.StandardError.ReadToEndAsync());
        return output;
    }
}
