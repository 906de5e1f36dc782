using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Platform;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Images;

/// <summary>kill -9 the real server while launches wait for their image download: after a restart they resume, not fail.</summary>
[NonParallelizable]
public class ImageDownloadCrashTests
{
    [Test, CancelAfter(240_000)]
    public async Task Launches_waiting_on_a_download_survive_a_killed_server_and_the_download_resumes_with_a_Range_request()
    {
        var dataDir = TempDir.Create("dlcrash");
        await using var images = await ImageServer.StartAsync();
        images.SlowBytesPerSecond = 1 << 20;
        var content = RandomNumberGenerator.GetBytes(6 << 20);
        var url = images.Add("crash.raw", content, slow: true).ToString();
        var port = ServerProcessTests.FreePort();
        (string, string)[] env = [("STRATUSLAB__Compute__SimulatedMedia", "true"), ("STRATUSLAB__Compute__BootTimeoutSeconds", "120"),
            ("STRATUSLAB__Scheduling__CpuOvercommit", "8")];
        var server = ServerProcessTests.StartServer(dataDir, port, env);
        try
        {
            await ServerProcessTests.WaitHealthy(port, server, TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(150) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(dataDir, "admin.token")).Trim());
            var launches = new List<long>();
            for (var i = 0; i < 3; i++)
                launches.Add((await InstanceApiTests.CreateAsync(http, new { image = url }))["id"]!.GetValue<long>());
            var partial = Path.Combine(dataDir, "images", "partial");
            var stopwatch = Stopwatch.StartNew();
            long kept = 0;
            while (stopwatch.Elapsed < TimeSpan.FromSeconds(60) && kept < 2 << 20)
            {
                kept = Directory.Exists(partial) ? Directory.GetFiles(partial, "*.part").Sum(f => new FileInfo(f).Length) : 0;
                await Task.Delay(100);
            }
            Assert.That(kept, Is.GreaterThanOrEqualTo(2 << 20), "the download was under way");

            server.Kill(); // SIGKILL, mid-download
            server.WaitForExit(10_000);
            foreach (var id in launches)
                TestContext.Progress.WriteLine($"instance {id} left in PROLOG by the kill");

            server = ServerProcessTests.StartServer(dataDir, port, env);
            await ServerProcessTests.WaitHealthy(port, server, TimeSpan.FromSeconds(60));
            foreach (var id in launches)
            {
                var running = await InstanceApiTests.WaitAsync(http, id, "RUNNING", 120);
                Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
            }
            Assert.That(images.RequestsFor("crash.raw"), Is.EqualTo(2), "one download before the kill, one resumption after it");
            var resumedFrom = images.Ranges.Select(r => long.Parse(r[6..^1])).ToList();
            Assert.That(resumedFrom, Has.Count.EqualTo(1));
            Assert.That(resumedFrom[0], Is.GreaterThanOrEqualTo(kept), "the resumption starts where the kept partial file ends");
            Assert.That(ServerProcessTests.PrintedBy(server), Does.Contain("its PROLOG runs again"));
        }
        finally
        {
            ServerProcessTests.Kill(server);
            TempDir.Delete(dataDir);
        }
    }
}
