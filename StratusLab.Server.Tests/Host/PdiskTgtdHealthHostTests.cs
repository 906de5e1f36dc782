using System.Net.Http.Json;
using System.Net.Sockets;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: tgtd dies (kill -9; it ignores SIGTERM) under a server that exports volumes through it. Each test runs its
/// own tgtd on a private control port and portal port, so killing it disturbs no target of anyone else (other tests,
/// other servers share the default tgtd); the daemon and every target are removed at the end, even on failure.
/// </summary>
[NonParallelizable]
[Category("FaultInjection")] // the fault-injection tier: dotnet test --filter TestCategory=FaultInjection
public class PdiskTgtdHealthHostTests
{
    /// <summary>A tgtd of the test's own: tgtd/tgtadm --control-port N, portal 127.0.0.1:P.</summary>
    sealed class PrivateTgtd : IAsyncDisposable
    {
        public int ControlPort { get; }
        public int Port { get; }

        PrivateTgtd(int controlPort, int port)
        {
            ControlPort = controlPort;
            Port = port;
        }

        public static PrivateTgtd Choose()
        {
            int control;
            do control = Random.Shared.Next(20_000, 30_000);
            while (File.Exists($"/var/run/tgtd/socket.{control}") || File.Exists($"/var/run/tgtd/socket.{control}.lock"));
            using var probe = new TcpListener(System.Net.IPAddress.Loopback, 0);
            probe.Start();
            var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            return new PrivateTgtd(control, port);
        }

        public Dictionary<string, string?> Settings(bool startTgtd, int healthCheckSeconds) => new()
        {
            ["Pdisk:Sharing"] = "iscsi",
            ["Pdisk:Iscsi:Port"] = Port.ToString(),
            ["Pdisk:Iscsi:ControlPort"] = ControlPort.ToString(),
            ["Pdisk:Iscsi:StartTgtd"] = startTgtd ? "true" : "false",
            ["Pdisk:Iscsi:HealthCheckSeconds"] = healthCheckSeconds.ToString(),
        };

        Task<(int Exit, string Out, string Err)> TgtAdmAsync(IReadOnlyList<string> args) =>
            HostTools.RunAsync("tgtadm", [.. TgtAdm.ControlPort(ControlPort), .. args], TimeSpan.FromSeconds(30));

        /// <summary>The targets, or null when this tgtd does not answer.</summary>
        public async Task<IReadOnlyList<TgtTarget>?> TargetsAsync()
        {
            var show = await TgtAdmAsync(TgtAdm.ShowTargets());
            return show.Exit == 0 ? TgtAdm.ParseTargets(show.Out) : null;
        }

        public async Task StartAsync()
        {
            var started = await HostTools.RunAsync("tgtd", [.. TgtAdm.ControlPort(ControlPort), .. TgtAdm.StartDaemon("127.0.0.1", Port)], TimeSpan.FromSeconds(20));
            Assert.That(started.Exit, Is.Zero, started.Err);
            await WaitAsync(up: true);
        }

        /// <summary>The processes of this tgtd (found by their control port argument).</summary>
        public IReadOnlyList<int> Processes()
        {
            var pids = new List<int>();
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
                string[] args;
                try { args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0'); }
                catch (IOException) { continue; }
                catch (UnauthorizedAccessException) { continue; }
                if (args.Length > 2 && Path.GetFileName(args[0]) == "tgtd" && args.Contains(ControlPort.ToString())) pids.Add(pid);
            }
            return pids;
        }

        /// <summary>SIGKILL (Process.Kill on Linux): tgtd ignores SIGTERM.</summary>
        static void Kill9(int pid)
        {
            try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        }

        public async Task KillAsync()
        {
            var pids = Processes();
            Assert.That(pids, Is.Not.Empty, "this test's tgtd runs");
            foreach (var pid in pids) Kill9(pid);
            await WaitAsync(up: false);
        }

        public async Task WaitAsync(bool up, int seconds = 15)
        {
            var deadline = DateTime.UtcNow.AddSeconds(seconds);
            while ((await TargetsAsync() is not null) != up)
            {
                if (DateTime.UtcNow > deadline) Assert.Fail($"tgtd on control port {ControlPort} did not go {(up ? "up" : "down")} in {seconds} s");
                await Task.Delay(100);
            }
        }

        /// <summary>Every target goes, then the daemon (kill -9 if it does not stop), then its socket files.</summary>
        public async ValueTask DisposeAsync()
        {
            foreach (var target in await TargetsAsync() ?? [])
                await TgtAdmAsync(TgtAdm.DeleteTarget(target.Tid));
            await TgtAdmAsync(["--lld", "iscsi", "--op", "delete", "--mode", "system"]);
            for (var i = 0; i < 50 && Processes().Count > 0; i++) await Task.Delay(100);
            foreach (var pid in Processes()) Kill9(pid);
            foreach (var file in new[] { $"/var/run/tgtd/socket.{ControlPort}", $"/var/run/tgtd/socket.{ControlPort}.lock" })
                try { File.Delete(file); } catch (IOException) { }
        }
    }

    static async Task<IReadOnlyList<string>> ExportedAsync(PrivateTgtd tgtd) =>
        (await tgtd.TargetsAsync() ?? []).Select(t => t.Name).ToList();

    static async Task WaitForExportsAsync(PrivateTgtd tgtd, IEnumerable<string> uuids, int seconds)
    {
        var wanted = uuids.Select(u => TgtAdm.IqnOf(Guid.Parse(u))).ToList();
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!wanted.All((await ExportedAsync(tgtd)).Contains))
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"not exported again within {seconds} s: {string.Join(", ", wanted.Except(await ExportedAsync(tgtd)))}");
            await Task.Delay(250);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task A_killed_tgtd_is_restarted_by_the_health_check_with_every_volume_exported_again()
    {
        await using var tgtd = PrivateTgtd.Choose();
        await using var server = await TestServer.StartAsync(tgtd.Settings(startTgtd: true, healthCheckSeconds: 2));
        using var admin = server.Client();
        var older = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "older" }));
        var newer = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "newer", type = "DATA_IMAGE_RAW_READONLY" }));
        Assert.That(await ExportedAsync(tgtd), Has.Member(TgtAdm.IqnOf(Guid.Parse(older))), "the server started its tgtd and exported the volume");

        await tgtd.KillAsync();
        // Nobody asks the server anything: the periodic check notices, restarts tgtd and exports both again.
        await WaitForExportsAsync(tgtd, [older, newer], seconds: 60);
        var targets = (await tgtd.TargetsAsync())!;
        Assert.That(targets.Single(t => t.Name == TgtAdm.IqnOf(Guid.Parse(newer))).Luns.Single(l => l.Lun == 1).ReadOnly, Is.True, "exported again as it was");
        Assert.That(targets.Single(t => t.Name == TgtAdm.IqnOf(Guid.Parse(older))).Acl, Is.EqualTo(new[] { "127.0.0.1" }));
        var turl = (await Volumes.GetAsync(admin, older))["turl"]!.GetValue<string>();
        var info = await HostTools.RunAsync("qemu-img", ["info", "--output=json", turl], TimeSpan.FromSeconds(60));
        Assert.That(info.Exit, Is.Zero, "the volume is reachable through the restarted tgtd: " + info.Err);

        await (await admin.DeleteAsync($"/api/v1/volumes/{older}")).Json(204);
        await (await admin.DeleteAsync($"/api/v1/volumes/{newer}")).Json(204);
        Assert.That(await ExportedAsync(tgtd), Has.None.EndsWith(older).And.None.EndsWith(newer), "the re-exported targets go with their volumes");
        // The fault-injection tier's invariants: nothing without an owner, quota equal to what holds it, admin check clean.
        Assert.That(await SiteInvariants.ViolationsAsync(server.DataDir), Is.Empty);
    }

    [Test, CancelAfter(120_000)]
    public async Task While_tgtd_cannot_be_restarted_attach_and_create_are_503_naming_the_iscsi_target_service_and_work_once_it_is_back()
    {
        await using var tgtd = PrivateTgtd.Choose();
        await tgtd.StartAsync();
        await using var server = await TestServer.StartAsync(tgtd.Settings(startTgtd: false, healthCheckSeconds: 3600));
        using var admin = server.Client();
        var older = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "older" }));
        var vm = (await InstanceApiTests.CreateAsync(admin, new { name = "tgtd-down" }))["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(admin, vm, "RUNNING", 60);
        var quota = await Volumes.StorageUsedAsync(admin, "admin");
        var files = Volumes.FilesOf(server);

        await tgtd.KillAsync();
        var attach = await (await admin.PostAsJsonAsync($"/api/v1/volumes/{older}/mounts", new { instanceId = vm })).Problem(503);
        Assert.That(attach["detail"]!.GetValue<string>(), Does.Contain("iSCSI target service (tgtd)"));
        Assert.That(attach["service"]!.GetValue<string>(), Is.EqualTo("tgtd"));
        Assert.That(attach["field"], Is.Null, "not the request's fault");
        var create = await (await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1, tag = "during" })).Problem(503);
        Assert.That(create["detail"]!.GetValue<string>(), Does.Contain("iSCSI target service (tgtd)"));
        Assert.That(await Volumes.StorageUsedAsync(admin, "admin"), Is.EqualTo(quota), "the refused creation left no quota taken");
        Assert.That(Volumes.FilesOf(server), Is.EqualTo(files), "and no file");
        await (await admin.GetAsync($"/api/v1/volumes/{older}/mounts")).Json(200);
        Assert.That((await (await admin.GetAsync($"/api/v1/volumes/{older}/mounts")).Json(200)).AsArray(), Is.Empty, "the refused attach left no mount");

        // An operator brings tgtd back (empty, as after any restart): the next attach exports every volume again first.
        await tgtd.StartAsync();
        Assert.That(await ExportedAsync(tgtd), Is.Empty);
        await (await admin.PostAsJsonAsync($"/api/v1/volumes/{older}/mounts", new { instanceId = vm })).Json(201);
        Assert.That(await ExportedAsync(tgtd), Has.Member(TgtAdm.IqnOf(Guid.Parse(older))));

        await (await admin.DeleteAsync($"/api/v1/volumes/{older}/mounts/{vm}")).Json(204);
        await (await admin.DeleteAsync($"/api/v1/instances/{vm}")).Json(202);
        await InstanceApiTests.WaitAsync(admin, vm, "DONE", 60);
        await (await admin.DeleteAsync($"/api/v1/volumes/{older}")).Json(204);
    }

    [Test, CancelAfter(400_000)]
    public async Task After_tgtd_dies_an_older_volume_attaches_to_a_real_vm_through_the_restarted_tgtd()
    {
        HostTools.AppliancePath();
        await using var tgtd = PrivateTgtd.Choose();
        var settings = tgtd.Settings(startTgtd: true, healthCheckSeconds: 3600);
        settings["Compute:Driver"] = "qemu";
        settings["Compute:Accelerator"] = "auto";
        settings["Compute:ShutdownTimeoutSeconds"] = "30";
        settings["Compute:BootTimeoutSeconds"] = "120";
        var server = await TestServer.StartAsync(settings);
        try
        {
            using var admin = server.Client();
            var older = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "older" }));
            var other = Volumes.Uuid(await Volumes.CreateAsync(admin, new { size = 1, tag = "other" }));
            var vm = (await InstanceApiTests.CreateAsync(admin, new { name = "tgtd-attach" }))["id"]!.GetValue<long>();
            var running = await InstanceApiTests.WaitAsync(admin, vm, "RUNNING", 180);
            Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());

            await tgtd.KillAsync();
            // Before: 422 "field instance" (QEMU could not log in). Now: tgtd restarted, every volume exported, the attach done.
            await (await admin.PostAsJsonAsync($"/api/v1/volumes/{older}/mounts", new { instanceId = vm })).Json(201);
            var targets = (await tgtd.TargetsAsync())!;
            Assert.That(targets.Select(t => t.Name), Is.SupersetOf(new[] { TgtAdm.IqnOf(Guid.Parse(older)), TgtAdm.IqnOf(Guid.Parse(other)) }));
            Assert.That(targets.Single(t => t.Name == TgtAdm.IqnOf(Guid.Parse(older))).ConnectedAddresses, Is.Not.Empty,
                "QEMU's initiator is logged in to the re-exported target");

            // Issue 18, defect 1's second trigger: a detach whose blockdev-del is retried (here: a paused guest cannot release
            // the device, so the retry runs) must not hold the VM's QMP connection across its retries. The monitor and
            // other actions go on meanwhile: the VM resumes within seconds, and the detach then completes.
            await (await admin.PostAsync($"/api/v1/instances/{vm}/actions/suspend", null)).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(admin, vm, "SUSPENDED", 30))["state"]!.GetValue<string>(), Is.EqualTo("SUSPENDED"));
            var detach = admin.DeleteAsync($"/api/v1/volumes/{older}/mounts/{vm}");
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.That(detach.IsCompleted, Is.False, "the paused guest has not released the disk: the detach is still retrying");
            var resumed = System.Diagnostics.Stopwatch.StartNew();
            await (await admin.PostAsync($"/api/v1/instances/{vm}/actions/resume", null)).Json(202);
            var back = await InstanceApiTests.WaitAsync(admin, vm, "RUNNING", 15);
            Assert.That(back["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), "QMP 'cont' ran between the detach's retries: " + back.ToJsonString());
            Assert.That(resumed.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)));
            TestContext.Progress.WriteLine($"resumed {resumed.Elapsed.TotalSeconds:0.0} s after asking, during the detach's retries");
            Assert.That((int)(await admin.GetAsync("/health")).StatusCode, Is.EqualTo(200), "the server serves");
            // The guest may release the disk once it runs again (204), or not within the retry time: then a clear refusal.
            var detached = await detach.WaitAsync(TimeSpan.FromSeconds(60));
            var answer = await detached.Content.ReadAsStringAsync();
            TestContext.Progress.WriteLine($"detach after the resume: {(int)detached.StatusCode} {answer}");
            Assert.That((int)detached.StatusCode == 204 || answer.Contains("did not release volume", StringComparison.Ordinal), Is.True, answer);
            Assert.That(back["failureReason"], Is.Null, "no monitor warning on the VM");

            await (await admin.DeleteAsync($"/api/v1/instances/{vm}")).Json(202);
            await InstanceApiTests.WaitAsync(admin, vm, "DONE", 90);
            await (await admin.DeleteAsync($"/api/v1/volumes/{older}")).Json(204);
            await (await admin.DeleteAsync($"/api/v1/volumes/{other}")).Json(204);
        }
        finally
        {
            var dataDir = server.DataDir;
            await server.DisposeAsync();
            HostTools.KillQemu(dataDir);
        }
    }
}
