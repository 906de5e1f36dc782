using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>Host tier: the counters of a real appliance under QEMU, and its probe's KPIs through the guest API (one boot).</summary>
public class MonitoringHostTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _keyDir = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        _keyDir = TempDir.Create("ssh");
        _server = await ApplianceHost.StartAsync(new Dictionary<string, string?> { ["Monitoring:SampleIntervalSeconds"] = "2" });
        _admin = ApplianceHost.Client(_server);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        TempDir.Delete(_keyDir);
        await ApplianceHost.StopAsync(_server);
    }

    async Task<JsonNode> MetricsAsync(long id) => await (await _admin.GetAsync($"/api/v1/instances/{id}/metrics?since=10m&resolution=raw")).Json(200);

    /// <summary>CPU seconds per second between the first and last sample taken within [from, to].</summary>
    static (double Rate, int Samples) CpuRate(JsonNode metrics, DateTimeOffset from, DateTimeOffset to)
    {
        var window = metrics["samples"]!.AsArray().Where(s => s!["at"]!.GetValue<DateTimeOffset>() is var at && at >= from && at <= to).ToList();
        if (window.Count < 2) return (double.NaN, window.Count);
        var first = window[0]!;
        var last = window[^1]!;
        var seconds = (last["at"]!.GetValue<DateTimeOffset>() - first["at"]!.GetValue<DateTimeOffset>()).TotalSeconds;
        return ((last["cpuSeconds"]!.GetValue<double>() - first["cpuSeconds"]!.GetValue<double>()) / seconds, window.Count);
    }

    static double? LatestKpi(JsonNode metrics, string name) =>
        metrics["kpis"]!.AsArray().FirstOrDefault(k => k!["name"]!.GetValue<string>() == name)?["points"]!.AsArray()[^1]!["value"]!.GetValue<double>();

    [Test, CancelAfter(420_000)]
    public async Task A_real_guests_CPU_time_grows_while_it_busy_loops_its_disk_counters_grow_with_writes_and_its_probe_pushes_KPIs()
    {
        var (privateKey, publicKey) = await HostTools.SshKeyAsync(_keyDir);
        var data = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, tag = "monitoring-data" }));
        var created = await InstanceApiTests.CreateAsync(_admin, new
        {
            name = "monitored",
            sshKeys = new[] { publicKey },
            volumes = new[] { data },
            // The appliance's probe every 2 s, plus a probe script inserted through the context.
            context = new Dictionary<string, string> { ["STRATUSLAB_PROBE_INTERVAL"] = "2", ["STRATUSLAB_PROBE"] = "echo custom_kpi 42" },
        });
        var id = created["id"]!.GetValue<long>();
        var ready = await InstanceApiTests.WaitAsync(_admin, id, "ready", 180);
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, ready.ToJsonString());
        var forwards = ready["portForwards"]!.AsArray();
        var httpPort = forwards.First(f => f!["guestPort"]!.GetValue<int>() == 80)!["hostPort"]!.GetValue<int>();
        var sshPort = forwards.First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();
        Task<(int Exit, string Out, string Err)> Ssh(string command) => ApplianceHost.SshAsync(privateKey, sshPort, command, timeoutSeconds: 90);
        // The first SSH connection generates the host keys (dropbear -R): make it before the idle window.
        Assert.That((await Ssh("true")).Exit, Is.EqualTo(0));

        // Idle, then 12 s of a busy loop in the guest.
        var idleFrom = DateTimeOffset.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(10));
        var idleTo = DateTimeOffset.UtcNow;
        var busyFrom = DateTimeOffset.UtcNow;
        var busy = await Ssh("end=$(($(date +%s) + 12)); while [ $(date +%s) -lt $end ]; do :; done; echo busy-done");
        var busyTo = DateTimeOffset.UtcNow;
        Assert.That(busy.Out, Does.Contain("busy-done"), busy.Err);

        // 32 MiB written to the volume, flushed.
        var before = (await MetricsAsync(id))["samples"]!.AsArray()[^1]!;
        var dd = await Ssh("dd if=/dev/zero of=/dev/vdb bs=1048576 count=32 conv=fsync 2>&1 && echo dd-done");
        Assert.That(dd.Out, Does.Contain("dd-done"), dd.Out + dd.Err);
        await Task.Delay(TimeSpan.FromSeconds(5));

        // Three requests to the appliance's counted page; the probe pushes the count within its 2-s period.
        using (var web = new HttpClient { Timeout = TimeSpan.FromSeconds(20) })
            for (var i = 1; i <= 3; i++)
                Assert.That((await web.GetStringAsync($"http://127.0.0.1:{httpPort}/cgi-bin/hits")).Trim(), Is.EqualTo(i.ToString()));
        JsonNode metrics;
        var deadline = DateTime.UtcNow.AddSeconds(40);
        do
        {
            await Task.Delay(1000);
            metrics = await MetricsAsync(id);
        } while ((LatestKpi(metrics, "http_requests") is not >= 3 || LatestKpi(metrics, "custom_kpi") is null) && DateTime.UtcNow < deadline);

        var idle = CpuRate(metrics, idleFrom, idleTo);
        var loaded = CpuRate(metrics, busyFrom.AddSeconds(2), busyTo);
        TestContext.Progress.WriteLine($"QEMU CPU use: idle {idle.Rate:0.00} CPU ({idle.Samples} samples), guest busy-looping {loaded.Rate:0.00} CPU ({loaded.Samples} samples)");
        Assert.That(idle.Samples, Is.GreaterThanOrEqualTo(2), metrics.ToJsonString());
        Assert.That(loaded.Samples, Is.GreaterThanOrEqualTo(2), metrics.ToJsonString());
        Assert.That(loaded.Rate, Is.GreaterThan(idle.Rate * 3).And.GreaterThan(0.1), "the busy loop shows in the QEMU process's CPU time");

        var after = metrics["samples"]!.AsArray()[^1]!;
        Assert.That(after["simulated"]!.GetValue<bool>(), Is.False);
        Assert.That(after["memoryRssBytes"]!.GetValue<long>(), Is.GreaterThan(16L << 20), "the QEMU process's resident memory");
        Assert.That(after["diskWriteBytes"]!.GetValue<long>() - before["diskWriteBytes"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(32L << 20),
            "query-blockstats counts the 32 MiB written");
        Assert.That(after["diskWriteOps"]!.GetValue<long>(), Is.GreaterThan(before["diskWriteOps"]!.GetValue<long>()));
        Assert.That(LatestKpi(metrics, "http_requests"), Is.GreaterThanOrEqualTo(3), metrics["kpis"]!.ToJsonString());
        Assert.That(LatestKpi(metrics, "custom_kpi"), Is.EqualTo(42), "the probe script from the context ran");
        Assert.That(LatestKpi(metrics, "load1"), Is.Not.Null);

        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "DONE", 60))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
    }
}
