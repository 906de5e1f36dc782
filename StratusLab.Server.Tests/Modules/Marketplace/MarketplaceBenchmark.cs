using System.Diagnostics;
using System.Globalization;
using System.Text;
using StratusLab.Server.Modules.Marketplace;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Marketplace;

/// <summary>
/// The figures for the note: query latency over N entries (filtered and free-text search, over HTTP and in-process) and the
/// time to upload and validate one entry. Not part of the suite: run scripts/bench/marketplace-bench.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/marketplace-bench.sh")]
[Category("Benchmark")]
public class MarketplaceBenchmark
{
    static readonly string[] Words =
    [
        "web", "server", "database", "grid", "worker", "node", "compute", "storage", "analysis", "physics", "biology", "climate",
        "cluster", "batch", "notebook", "python", "java", "desktop", "minimal", "base", "hadoop", "mpi", "gpu", "genomics", "astro",
    ];
    static readonly string[] Systems = ["ubuntu", "debian", "centos", "sl", "fedora", "ttylinux", "opensuse", "alpine", "rocky", "cirros"];
    static readonly string[] Arches = ["x86_64", "i686", "aarch64"];

    [Test]
    public async Task Query_latency_and_upload_time()
    {
        var count = int.Parse(Environment.GetEnvironmentVariable("MARKETPLACE_BENCH_ENTRIES") ?? "10000", CultureInfo.InvariantCulture);
        var endorsers = Enumerable.Range(0, 24).Select(i => $"endorser{i:00}@example.org").ToList();
        var settings = new Dictionary<string, string?>();
        for (var i = 0; i < endorsers.Count; i++)
            settings[$"Marketplace:WhitelistedCertificates:{i}"] = MetadataFactory.Thumbprint(MetadataFactory.Key(endorsers[i]));
        await using var server = await TestServer.StartAsync(settings);
        var random = new Random(42);
        string Words_(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => Words[random.Next(Words.Length)]));

        var sw = Stopwatch.StartNew();
        var drafts = Enumerable.Range(0, count).Select(i => (Draft: MetadataFactory.Draft(
            title: $"{Words_(2)} appliance {i}", os: Systems[random.Next(Systems.Length)], arch: Arches[random.Next(Arches.Length)],
            tags: [Words[random.Next(Words.Length)], Words[random.Next(Words.Length)]], description: Words_(12),
            valid: DateTimeOffset.UtcNow.AddDays(random.Next(10) == 0 ? -1 : 90)), Endorser: endorsers[i % endorsers.Count])).ToList();
        var now = MetadataFactory.Second(DateTimeOffset.UtcNow);
        var signed = drafts.AsParallel().AsOrdered().Select(d => MetadataFactory.Signed(d.Draft with { Valid = d.Draft.Valid < now ? now.AddSeconds(1) : d.Draft.Valid },
            MetadataFactory.Key(d.Endorser), now)).ToList();
        var signing = sw.Elapsed;

        using var admin = server.Client();
        var uploads = new List<double>();
        sw.Restart();
        foreach (var xml in signed)
        {
            var started = Stopwatch.GetTimestamp();
            var response = await admin.PostAsync("/api/v1/marketplace/metadata", MetadataFactory.Xml(xml));
            uploads.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Assert.That((int)response.StatusCode, Is.EqualTo(201), await response.Content.ReadAsStringAsync());
        }
        var seeding = sw.Elapsed;
        await Task.Delay(1500); // let the entries made to expire do so

        var validate = new List<double>();
        foreach (var xml in signed.Take(500))
        {
            var started = Stopwatch.GetTimestamp();
            var doc = MetadataXml.Load(xml);
            var signature = MetadataSignature.Verify(doc);
            MetadataSignature.CheckEndorser(MetadataXml.Parse(doc).Endorser, signature.Certificate);
            validate.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        using var anonymous = server.Client(token: null);
        async Task<List<double>> Http(Func<int, string> query, int runs = 1000)
        {
            for (var i = 0; i < 20; i++) await anonymous.GetAsync("/api/v1/marketplace/metadata" + query(i));
            var times = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var started = Stopwatch.GetTimestamp();
                var response = await anonymous.GetAsync("/api/v1/marketplace/metadata" + query(i));
                await response.Content.ReadAsByteArrayAsync();
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                Assert.That((int)response.StatusCode, Is.EqualTo(200));
            }
            return times;
        }
        var catalog = server.App.Services.GetRequiredService<MarketplaceCatalog>();
        async Task<List<double>> Direct(Func<int, EntryQuery> query, int runs = 1000)
        {
            var times = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await catalog.QueryAsync(query(i));
                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            return times;
        }

        var filtered = await Http(i => $"?os={Systems[i % Systems.Length]}&arch={Arches[i % Arches.Length]}&tag={Words[i % Words.Length]}");
        var filteredWide = await Http(i => $"?os={Systems[i % Systems.Length]}");
        var text = await Http(i => $"?q={Words[i % Words.Length]}+{Words[(i * 7 + 3) % Words.Length]}");
        var textOne = await Http(i => $"?q={Words[i % Words.Length]}");
        var filteredDirect = await Direct(i => new EntryQuery(Os: Systems[i % Systems.Length], Arch: Arches[i % Arches.Length], Tag: Words[i % Words.Length]));
        var textDirect = await Direct(i => new EntryQuery(Text: $"{Words[i % Words.Length]} {Words[(i * 7 + 3) % Words.Length]}"));

        static string Stats(string name, List<double> t)
        {
            t.Sort();
            double P(double p) => t[Math.Min(t.Count - 1, (int)Math.Ceiling(p * t.Count) - 1)];
            return string.Create(CultureInfo.InvariantCulture, $"{name,-58} n={t.Count,5}  median {P(0.5),7:0.00} ms  p99 {P(0.99),7:0.00} ms  max {t[^1],7:0.00} ms");
        }
        var report = new StringBuilder()
            .AppendLine($"Marketplace benchmark: {count} entries from {endorsers.Count} endorsers (about 10% expired), {Environment.ProcessorCount} CPUs")
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"signing {count} entries (RSA-2048/SHA-256, parallel): {signing.TotalSeconds:0.0} s; uploading them one by one over HTTP: {seeding.TotalSeconds:0.0} s"))
            .AppendLine(Stats("upload + validate one entry (HTTP POST, 201)", uploads))
            .AppendLine(Stats("validate one entry in-process (parse+signature+constraints)", validate))
            .AppendLine(Stats("filtered search HTTP (os+arch+tag, status valid)", filtered))
            .AppendLine(Stats("filtered search HTTP (os only, status valid, 100 rows)", filteredWide))
            .AppendLine(Stats("free-text search HTTP (two words)", text))
            .AppendLine(Stats("free-text search HTTP (one word, 100 rows)", textOne))
            .AppendLine(Stats("filtered search in-process (os+arch+tag)", filteredDirect))
            .AppendLine(Stats("free-text search in-process (two words)", textDirect))
            .ToString();
        TestContext.Out.WriteLine(report);
        if (Environment.GetEnvironmentVariable("MARKETPLACE_BENCH_OUT") is { Length: > 0 } path) await File.WriteAllTextAsync(path, report);
        filtered.Sort();
        text.Sort();
        Assert.That(filtered[(int)(filtered.Count * 0.99) - 1], Is.LessThan(20), "target: p99 under 20 ms");
        Assert.That(text[(int)(text.Count * 0.99) - 1], Is.LessThan(20), "target: p99 under 20 ms");
    }
}
