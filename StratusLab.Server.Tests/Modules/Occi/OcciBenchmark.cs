using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Occi;

/// <summary>
/// The figures for the note: EGI's probe sequence end to end on the simulated driver (OCCI, and the same steps through REST
/// for the ratio), and the query interface's size and latency with N Marketplace images (and with none, for the ratio).
/// Not part of the suite: run scripts/bench/occi-probe.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/occi-probe.sh")]
[Category("Benchmark")]
public class OcciBenchmark
{
    const string Infra = "http://schemas.ogf.org/occi/infrastructure#";

    [Test]
    public async Task Probe_sequence_time_and_query_interface_size_and_latency()
    {
        var images = int.Parse(Environment.GetEnvironmentVariable("OCCI_BENCH_IMAGES") ?? "1000", CultureInfo.InvariantCulture);
        var runs = int.Parse(Environment.GetEnvironmentVariable("OCCI_BENCH_RUNS") ?? "20", CultureInfo.InvariantCulture);
        const string endorser = "occi-bench@example.org";
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Marketplace:WhitelistedCertificates:0"] = MetadataFactory.Thumbprint(MetadataFactory.Key(endorser)),
        });
        await TestImages.RegisterDefaultAsync(server, "bench-image");
        var handler = new HttpClientHandler { MaxResponseHeadersLength = 64 * 1024 }; // KiB: text/occi puts every category in headers
        using var http = new HttpClient(handler) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(120) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", server.AdminToken);
        await (await http.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-bench", driver = "simulated", cpus = 256, memoryMiB = 1 << 20 })).Json(201);
        await (await http.PutAsJsonAsync("/api/v1/quotas/admin", new { vms = 10000, cpus = 10000, memoryMiB = 10_000_000, storageGiB = 10000 })).Json(200);
        var report = new StringBuilder();
        var site = server.BaseAddress.ToString().TrimEnd('/');

        // ---- the probe sequence, OCCI and REST alternately ----
        var occi = new OcciClient(http, OcciRenderingKind.Occi);
        var occiTimes = new List<double>();
        var restTimes = new List<double>();
        for (var i = 0; i < runs + 2; i++)
        {
            var t = Stopwatch.StartNew();
            await OcciProbeAsync(occi, site);
            var occiMs = t.Elapsed.TotalMilliseconds;
            t.Restart();
            await RestProbeAsync(http);
            var restMs = t.Elapsed.TotalMilliseconds;
            if (i < 2) continue; // warm-up
            occiTimes.Add(occiMs);
            restTimes.Add(restMs);
        }
        report.AppendLine($"probe sequence (simulated driver, {runs} runs): OCCI median {Median(occiTimes):0} ms (p95 {P(occiTimes, 0.95):0} ms); " +
                          $"same steps through REST median {Median(restTimes):0} ms; OCCI/REST = {Median(occiTimes) / Median(restTimes):0.00}");

        // ---- the query interface, without and with N Marketplace images ----
        var before = await QueryFiguresAsync(http);
        var key = MetadataFactory.Key(endorser);
        var now = MetadataFactory.Second(DateTimeOffset.UtcNow);
        var signed = Enumerable.Range(0, images).AsParallel().AsOrdered()
            .Select(i => MetadataFactory.Signed(MetadataFactory.Draft(title: $"bench appliance {i}", os: "debian"), key, now)).ToList();
        foreach (var xml in signed)
        {
            var response = await http.PostAsync("/api/v1/marketplace/metadata", MetadataFactory.Xml(xml));
            Assert.That((int)response.StatusCode, Is.EqualTo(201), await response.Content.ReadAsStringAsync());
        }
        var after = await QueryFiguresAsync(http);
        Assert.That(after.Categories - before.Categories, Is.EqualTo(images), "one os_tpl per Marketplace image");
        report.AppendLine($"query interface with no Marketplace image: {before.Categories} categories, text/plain {before.PlainBytes} B, text/occi headers {before.OcciBytes} B; " +
                          $"GET /-/ median {before.PlainMedian:0.0} ms (p99 {before.PlainP99:0.0}) text/plain, {before.OcciMedian:0.0} ms text/occi");
        report.AppendLine($"query interface with {images} Marketplace images: {after.Categories} categories, text/plain {after.PlainBytes} B, text/occi headers {after.OcciBytes} B; " +
                          $"GET /-/ median {after.PlainMedian:0.0} ms (p99 {after.PlainP99:0.0}) text/plain, {after.OcciMedian:0.0} ms text/occi; " +
                          $"ratio to none: {after.PlainMedian / before.PlainMedian:0.0}x latency, {(double)after.PlainBytes / before.PlainBytes:0.0}x size");
        // The launchable list is cached between Marketplace changes: the same request right after a change (a policy rule that
        // matches no image, so the answer is the same) recomputes it, as every request did before the cache.
        var recomputed = new List<double>();
        for (var i = 0; i < 40 + 3; i++)
        {
            var checksum = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(20)).ToLowerInvariant();
            await (await http.PutAsJsonAsync("/api/v1/policy", new { blacklistChecksums = new[] { checksum } })).Json(200);
            using var request = new HttpRequestMessage(HttpMethod.Get, "/-/") { Headers = { { "Accept", "text/plain" } } };
            var started = Stopwatch.GetTimestamp();
            using var response = await http.SendAsync(request);
            await response.Content.ReadAsByteArrayAsync();
            Assert.That((int)response.StatusCode, Is.EqualTo(200));
            if (i >= 3) recomputed.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        var cached = await LatencyAsync(http, "text/plain", null);
        report.AppendLine($"query interface with {images} images, text/plain: right after a Marketplace change (recomputed, as before the cache) median {Median(recomputed):0.0} ms " +
                          $"(p95 {P(recomputed, 0.95):0.0}); cached median {Median(cached):0.0} ms (p95 {P(cached, 0.95):0.0}); recomputed/cached = {Median(recomputed) / Median(cached):0.0}x");
        await (await http.PutAsJsonAsync("/api/v1/policy", new { })).Json(200);
        var filtered = LatencyAsync(http, "text/plain", $"compute; scheme=\"{Infra}\"; class=\"kind\"");
        var f = await filtered;
        report.AppendLine($"query interface filtered by Category compute, with {images} images: median {Median(f):0.0} ms");

        TestContext.Out.WriteLine(report.ToString());
        if (Environment.GetEnvironmentVariable("OCCI_BENCH_OUT") is { Length: > 0 } path) await File.WriteAllTextAsync(path, report.ToString());
    }

    static async Task OcciProbeAsync(OcciClient occi, string site)
    {
        Assert.That((await occi.GetAsync("/-/")).Status, Is.EqualTo(200));
        var created = await occi.PostAsync("/compute/", $"Category: compute; scheme=\"{Infra}\"; class=\"kind\"",
            $"Category: bench-image; scheme=\"{site}/occi/os_tpl#\"; class=\"mixin\"", $"Category: t1_tiny; scheme=\"{site}/occi/resource_tpl#\"; class=\"mixin\"");
        Assert.That(created.Status, Is.EqualTo(201), created.Body);
        var compute = OcciClient.PathOf(created.Location!);
        await occi.WaitStateAsync(compute, "active", TimeSpan.FromSeconds(60));
        var storage = OcciClient.PathOf((await occi.PostAsync("/storage/", $"Category: storage; scheme=\"{Infra}\"; class=\"kind\"", "X-OCCI-Attribute: occi.storage.size=1")).Location!);
        var link = await occi.PostAsync("/link/storagelink/", $"Category: storagelink; scheme=\"{Infra}\"; class=\"kind\"",
            $"X-OCCI-Attribute: occi.core.source=\"{compute}\", occi.core.target=\"{storage}\"");
        Assert.That(link.Status, Is.EqualTo(201), link.Body);
        Assert.That((await occi.PostAsync(compute + "?action=stop")).Status, Is.EqualTo(200));
        await occi.WaitStateAsync(compute, "inactive", TimeSpan.FromSeconds(60));
        Assert.That((await occi.DeleteAsync(compute)).Status, Is.EqualTo(200));
        await occi.WaitGoneAsync(compute, TimeSpan.FromSeconds(60));
        Assert.That((await occi.DeleteAsync(storage)).Status, Is.EqualTo(200));
    }

    static async Task RestProbeAsync(HttpClient http)
    {
        await (await http.GetAsync("/api/v1/images")).Json(200);
        var id = (await (await http.PostAsJsonAsync("/api/v1/instances", new { image = "bench-image", instanceType = "t1.tiny" })).Json(201))["id"]!.GetValue<long>();
        await (await http.GetAsync($"/api/v1/instances/{id}/wait?state=RUNNING&timeout=60")).Json(200);
        var uuid = (await (await http.PostAsJsonAsync("/api/v1/volumes", new { size = 1 })).Json(201))["uuid"]!.GetValue<string>();
        await (await http.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = id })).Json(201);
        await (await http.PostAsync($"/api/v1/instances/{id}/actions/stop", null)).Json(202);
        await (await http.GetAsync($"/api/v1/instances/{id}/wait?state=STOPPED&timeout=60")).Json(200);
        await (await http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        await (await http.GetAsync($"/api/v1/instances/{id}/wait?state=DONE&timeout=60")).Json(200);
        Assert.That((int)(await http.DeleteAsync($"/api/v1/volumes/{uuid}")).StatusCode, Is.EqualTo(204));
    }

    sealed record QueryFigures(int Categories, long PlainBytes, long OcciBytes, double PlainMedian, double PlainP99, double OcciMedian);

    static async Task<QueryFigures> QueryFiguresAsync(HttpClient http)
    {
        using var plain = await http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/-/") { Headers = { { "Accept", "text/plain" } } });
        var body = await plain.Content.ReadAsStringAsync();
        using var occi = await http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/-/") { Headers = { { "Accept", "text/occi" } } });
        var headerBytes = occi.Headers.Where(h => h.Key == "Category").Sum(h => h.Value.Sum(v => (long)Encoding.UTF8.GetByteCount(v)));
        var plainTimes = await LatencyAsync(http, "text/plain", null);
        var occiTimes = await LatencyAsync(http, "text/occi", null);
        return new QueryFigures(body.Split('\n').Count(l => l.StartsWith("Category: ", StringComparison.Ordinal)), Encoding.UTF8.GetByteCount(body), headerBytes,
            Median(plainTimes), P(plainTimes, 0.99), Median(occiTimes));
    }

    static async Task<List<double>> LatencyAsync(HttpClient http, string accept, string? category, int runs = 100)
    {
        var times = new List<double>();
        for (var i = 0; i < runs + 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/-/") { Headers = { { "Accept", accept } } };
            if (category is not null) request.Headers.TryAddWithoutValidation("Category", category);
            var started = Stopwatch.GetTimestamp();
            using var response = await http.SendAsync(request);
            await response.Content.ReadAsByteArrayAsync();
            Assert.That((int)response.StatusCode, Is.EqualTo(200));
            if (i >= 5) times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        return times;
    }

    static double Median(List<double> xs) => P(xs, 0.5);

    static double P(List<double> xs, double p)
    {
        var sorted = xs.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }
}
