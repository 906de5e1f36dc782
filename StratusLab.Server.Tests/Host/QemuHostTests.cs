using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: the bundled appliance boots for real under QEMU (TCG here), gets its context, reports ready; the counters of
/// that real guest and its probe's KPIs come through the metrics API (the same boot serves both); failures at BOOT,
/// suspend/resume, ACPI shutdown, a lost pid and a frozen QEMU.
/// </summary>
public class QemuHostTests
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

    /// <summary>
    /// One boot of the appliance serves the monitoring test (Order 1) and then the boot-context-removal test (Order 2), which
    /// deletes it: a volume, an SSH key, a context variable and the probe (every 2 s, plus a probe script from the context).
    /// Booted by whichever of the two runs first (alone under a filter, each still boots it).
    /// </summary>
    Task<(long Id, JsonNode Ready, string PrivateKey)> SharedGuestAsync() => _shared ??= BootSharedGuestAsync();
    Task<(long Id, JsonNode Ready, string PrivateKey)>? _shared;

    async Task<(long Id, JsonNode Ready, string PrivateKey)> BootSharedGuestAsync()
    {
        var (privateKey, publicKey) = await HostTools.SshKeyAsync(_keyDir);
        var data = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, tag = "boot-data" }));
        var created = await InstanceApiTests.CreateAsync(_admin, new
        {
            name = "host-test",
            sshKeys = new[] { publicKey },
            volumes = new[] { data },
            context = new Dictionary<string, string>
            {
                ["GREETING"] = "hello from the context",
                // The appliance's probe every 2 s, plus a probe script inserted through the context.
                ["STRATUSLAB_PROBE_INTERVAL"] = "2",
                ["STRATUSLAB_PROBE"] = "echo custom_kpi 42",
            },
        });
        var id = created["id"]!.GetValue<long>();
        var ready = await InstanceApiTests.WaitAsync(_admin, id, "ready", 180);
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, ready.ToJsonString());
        return (id, ready, privateKey);
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

    [Test, Order(1), CancelAfter(420_000)]
    public async Task A_real_guests_CPU_time_grows_while_it_busy_loops_its_disk_counters_grow_with_writes_and_its_probe_pushes_KPIs()
    {
        var (id, ready, privateKey) = await SharedGuestAsync();
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

        // The guest's memory through the virtio balloon (stats every 5 s), next to RSS: the balloon leaves the guest all its memory,
        // and the guest's own total is what its kernel says in /proc/meminfo.
        var guestSample = metrics["samples"]!.AsArray().LastOrDefault(x => x!["guestMemoryTotalBytes"] is not null);
        for (var i = 0; i < 15 && guestSample is null; i++)
        {
            await Task.Delay(1000);
            guestSample = (await MetricsAsync(id))["samples"]!.AsArray().LastOrDefault(x => x!["guestMemoryTotalBytes"] is not null);
        }
        Assert.That(guestSample, Is.Not.Null, "the guest's balloon driver reported its memory: " + metrics["samples"]!.AsArray()[^1]!.ToJsonString());
        Assert.That(guestSample!["memoryBalloonBytes"]!.GetValue<long>(), Is.EqualTo(ready["memoryMiB"]!.GetValue<long>() << 20), "the balloon is not inflated");
        var meminfo = await Ssh("grep MemTotal /proc/meminfo");
        var memTotalKiB = long.Parse(System.Text.RegularExpressions.Regex.Match(meminfo.Out, @"MemTotal:\s+(\d+) kB").Groups[1].Value);
        var guestTotal = guestSample["guestMemoryTotalBytes"]!.GetValue<long>();
        var guestAvailable = guestSample["guestMemoryAvailableBytes"]!.GetValue<long>();
        TestContext.Progress.WriteLine($"memory: RSS {after["memoryRssBytes"]!.GetValue<long>() >> 20} MiB, balloon {guestSample["memoryBalloonBytes"]!.GetValue<long>() >> 20} MiB, " +
            $"guest total {guestTotal >> 20} MiB, available {guestAvailable >> 20} MiB");
        Assert.That(guestTotal, Is.EqualTo(memTotalKiB * 1024), "stat-total-memory is the guest kernel's MemTotal");
        Assert.That(guestAvailable, Is.GreaterThan(0).And.LessThan(guestTotal));
        Assert.That(LatestKpi(metrics, "http_requests"), Is.GreaterThanOrEqualTo(3), metrics["kpis"]!.ToJsonString());
        Assert.That(LatestKpi(metrics, "custom_kpi"), Is.EqualTo(42), "the probe script from the context ran");
        Assert.That(LatestKpi(metrics, "load1"), Is.Not.Null);
        // Its removal (DELETE, then DONE with nothing left) is checked by the next test, on this same guest.
    }

    [Test, Order(2), CancelAfter(240_000)]
    public async Task The_appliance_boots_applies_its_context_reports_ready_and_is_removed_completely_when_killed()
    {
        var (id, ready, privateKey) = await SharedGuestAsync();
        Assert.That(ready["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), ready.ToJsonString());
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, "the guest reported ready through the guest API with its token");
        Assert.That(ready["accelerator"]!.GetValue<string>(), Is.AnyOf("kvm", "tcg"));
        TestContext.Progress.WriteLine($"accelerator: {ready["accelerator"]}, created {ready["createdAt"]}, running {ready["startedAt"]}, ready {ready["readyAt"]}");

        var forwards = ready["portForwards"]!.AsArray();
        var http = forwards.First(f => f!["guestPort"]!.GetValue<int>() == 80)!["hostPort"]!.GetValue<int>();
        var ssh = forwards.First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();
        using (var web = new HttpClient { Timeout = TimeSpan.FromSeconds(20) })
        {
            var page = await web.GetStringAsync($"http://127.0.0.1:{http}/");
            Assert.That(page, Does.Contain("host-test").And.Contain("StratusLab test appliance"), "the page is served by the guest under its context hostname");
        }

        var result = await ApplianceHost.SshAsync(privateKey, ssh,
            "hostname; . /mnt/context/context.sh; echo \"$GREETING\"; echo disks: $(ls /sys/block /dev 2>/dev/null)");
        Assert.That(result.Exit, Is.EqualTo(0), result.Err);
        Assert.That(result.Out, Does.Contain("host-test").And.Contain("hello from the context"), "the SSH key from the context was installed");
        Assert.That(result.Out, Does.Match(@"disks:.*\bvdb\b"), "the volume named at launch is the guest's second virtio disk");

        var vmDir = Path.Combine(_server.DataDir, "instances", id.ToString());
        Assert.That(HostTools.QemuProcesses(vmDir), Has.Count.EqualTo(1));
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        var done = await InstanceApiTests.WaitAsync(_admin, id, "DONE", 60);
        Assert.That(done["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        Assert.That(HostTools.QemuProcesses(vmDir), Is.Empty, "no QEMU process is left");
        Assert.That(Directory.Exists(vmDir), Is.False, "no overlay, ISO, socket or pidfile is left");

        // APEL's Disk: the capacity QEMU reports for the VM's disks (the 64 MiB appliance disk and the 1 GiB volume; not the context CD), in GB rounded up.
        var apel = await (await _admin.GetAsync("/api/v1/accounting/apel")).Content.ReadAsStringAsync();
        var record = apel.Split("%%\n").Single(r => r.Contains($" {id}\n") && r.Contains("MachineName: host-test\n"));
        Assert.That(record, Does.Contain("\nDisk: 2\n"), record);
        // Bounded wait: the kernel may finish closing the dead QEMU's listening socket a moment after its pid is gone.
        var closed = false;
        for (var i = 0; i < 50 && !closed; i++)
        {
            using var probe = new System.Net.Sockets.TcpClient();
            try { probe.Connect("127.0.0.1", http); await Task.Delay(100); }
            catch (System.Net.Sockets.SocketException) { closed = true; }
        }
        Assert.That(closed, Is.True, "the forwarded port is closed");
    }

    [Test, CancelAfter(180_000)]
    public async Task A_qemu_that_cannot_start_fails_the_instance_at_BOOT_with_qemus_own_error_and_leaves_nothing()
    {
        var created = await InstanceApiTests.CreateAsync(_admin, new { name = "broken", rawQemuArguments = new[] { "-device", "no-such-device-xyz" } });
        var id = created["id"]!.GetValue<long>();
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 120);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"));
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("BOOT"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("no-such-device-xyz"), "QEMU's own error text is shown");
        Assert.That(failed["portForwards"]!.AsArray(), Is.Empty);
        Assert.That(Directory.Exists(Path.Combine(_server.DataDir, "instances", id.ToString())), Is.False, "overlay and ISO are removed");
    }

    [Test, CancelAfter(240_000)]
    public async Task Suspend_resume_and_a_graceful_shutdown_work_on_a_real_vm()
    {
        var id = (await InstanceApiTests.CreateAsync(_admin, new { name = "acpi" }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "ready", 180))["ready"]!.GetValue<bool>(), Is.True);
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/suspend", null)).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "SUSPENDED", 30))["state"]!.GetValue<string>(), Is.EqualTo("SUSPENDED"));
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/resume", null)).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 30))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        var started = DateTime.UtcNow;
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/shutdown", null)).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "DONE", 60))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(25)), "the guest powered off on the ACPI request, before the kill timeout");
        Assert.That(HostTools.QemuProcesses(Path.Combine(_server.DataDir, "instances", id.ToString())), Is.Empty);
    }

    [Test, CancelAfter(240_000)]
    public async Task Terminating_an_instance_kills_its_qemu_even_when_the_store_lost_its_pid()
    {
        var id = (await InstanceApiTests.CreateAsync(_admin, new { name = "no-pid" }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 180))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        var vmDir = Path.Combine(_server.DataDir, "instances", id.ToString());
        Assert.That(HostTools.QemuProcesses(vmDir), Has.Count.EqualTo(1));
        await using (var c = await new StratusLab.Server.Platform.Data.Store(Path.Combine(_server.DataDir, "stratuslab.db"), 5000).OpenAsync())
            await Dapper.SqlMapper.ExecuteAsync(c, "UPDATE compute_instances SET pid = NULL WHERE id = @id", new { id });

        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "DONE", 60))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        Assert.That(HostTools.QemuProcesses(vmDir), Is.Empty, "the QEMU is found by its pidfile and name, and killed");
    }

    [Test, CancelAfter(240_000), Category("FaultInjection")]
    public async Task A_frozen_qemu_does_not_stop_the_server_and_the_vm_monitor_keeps_watching()
    {
        var id = (await InstanceApiTests.CreateAsync(_admin, new { name = "frozen" }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(_admin, id, "ready", 180))["ready"]!.GetValue<bool>(), Is.True);

        // A QEMU that stops answering (SIGSTOP) for 30 s: QMP times out under the VM monitor (every 2 s here), and the
        // server must keep serving and keep the VM RUNNING; after SIGCONT the VM works again.
        var pid = HostTools.QemuProcesses(Path.Combine(_server.DataDir, "instances", id.ToString())).Single();
        await HostTools.RunAsync("kill", ["-STOP", pid.ToString()], TimeSpan.FromSeconds(5));
        try
        {
            var until = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < until)
            {
                using var health = await _admin.GetAsync("/health");
                Assert.That((int)health.StatusCode, Is.EqualTo(200), "the server keeps serving while one QEMU is frozen");
                var state = (await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200))["state"]!.GetValue<string>();
                Assert.That(state, Is.EqualTo("RUNNING"), "a frozen VM is not a dead VM");
                await Task.Delay(1000);
            }
            var warned = await _admin.GetFromJsonAsync<JsonObject>($"/api/v1/instances/{id}");
            Assert.That(warned!["failureReason"]?.GetValue<string>(), Does.StartWith("monitor: ").And.Contain("not answering"),
                "the instance says why it is watched: its QEMU does not answer");
        }
        finally
        {
            await HostTools.RunAsync("kill", ["-CONT", pid.ToString()], TimeSpan.FromSeconds(5));
        }

        // Back to normal after SIGCONT: the note goes at the next answered query, and the guest serves again.
        JsonNode? recovered = null;
        for (var i = 0; i < 30; i++)
        {
            recovered = await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200);
            if (recovered["failureReason"] is null) break;
            await Task.Delay(1000);
        }
        Assert.That(recovered!["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(recovered["failureReason"], Is.Null, recovered.ToJsonString());
        var webPort = recovered["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 80)!["hostPort"]!.GetValue<int>();
        using (var web = new HttpClient { Timeout = TimeSpan.FromSeconds(30) })
            Assert.That(await web.GetStringAsync($"http://127.0.0.1:{webPort}/"), Does.Contain("frozen"));

        // The monitor survived the QMP timeouts: a VM that dies now is still seen, within a few monitor passes.
        await HostTools.RunAsync("kill", ["-KILL", pid.ToString()], TimeSpan.FromSeconds(5));
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "FAILED", 30);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("stopped running outside the server's control"));
        Assert.That(HostTools.QemuProcesses(Path.Combine(_server.DataDir, "instances", id.ToString())), Is.Empty);
        // The fault-injection tier's invariants: nothing without an owner, quota equal to what holds it, admin check clean.
        Assert.That(await SiteInvariants.ViolationsAsync(_server.DataDir), Is.Empty);
    }
}
