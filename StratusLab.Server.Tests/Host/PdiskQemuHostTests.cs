using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: volumes hot-plugged into the real appliance under QEMU (over QMP), through the local path and through
/// QEMU's own iSCSI initiator against a real tgtd; the guest sees a new virtio disk.
/// </summary>
[NonParallelizable]
public class PdiskQemuHostTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _keyDir = "";
    string _privateKey = "", _publicKey = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        HostTools.AppliancePath();
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:Driver"] = "qemu",
            ["Compute:Accelerator"] = "auto",
            ["Compute:ShutdownTimeoutSeconds"] = "30",
            ["Compute:BootTimeoutSeconds"] = "120",
        });
        _admin = _server.Client();
        _keyDir = TempDir.Create("ssh");
        (_privateKey, _publicKey) = await HostTools.SshKeyAsync(_keyDir);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        TempDir.Delete(_keyDir);
        if (_server is null) return;
        var dataDir = _server.DataDir;
        await _server.DisposeAsync();
        HostTools.KillQemu(dataDir);
        await PdiskHost.RemoveTargetsUnderAsync(dataDir);
    }

    async Task<(long Id, int SshPort)> BootAsync(string name)
    {
        var created = await InstanceApiTests.CreateAsync(_admin, new { name, sshKeys = new[] { _publicKey } });
        var id = created["id"]!.GetValue<long>();
        return (id, 0);
    }

    async Task<int> ReadyAsync(long id)
    {
        var ready = await InstanceApiTests.WaitAsync(_admin, id, "ready", 180);
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, ready.ToJsonString());
        return ready["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();
    }

    async Task<string> SshAsync(int port, string script)
    {
        var result = await HostTools.RunAsync("ssh", [
            "-i", _privateKey, "-p", port.ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "root@127.0.0.1", script], TimeSpan.FromSeconds(90));
        Assert.That(result.Exit, Is.Zero, $"guest script failed: {result.Err}\n{result.Out}");
        return result.Out;
    }

    // busybox sh: wait for the hot-plugged disk to appear (ACPI PCI hot-plug, virtio_blk).
    const string WaitForDisk = "i=0; while [ ! -b /dev/vdb ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; [ -b /dev/vdb ] || { echo 'no /dev/vdb' >&2; exit 1; }; ";

    [TestCase("local"), TestCase("iscsi")]
    [CancelAfter(420_000)]
    public async Task PersistentDiskRetainsData(string sharing)
    {
        var (first, _) = await BootAsync($"writer-{sharing}");
        var (second, _) = await BootAsync($"reader-{sharing}");
        var volume = await Volumes.CreateAsync(_admin, new { size = 1, sharing, tag = "persistent-" + sharing });
        var uuid = Volumes.Uuid(volume);
        var firstSsh = await ReadyAsync(first);

        var mount = await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = first })).Json(201);
        Assert.That(mount["readOnly"]!.GetValue<bool>(), Is.False);
        var secret = "stratuslab-pdisk-" + Guid.NewGuid().ToString("N");
        var written = await SshAsync(firstSsh, WaitForDisk +
            $"printf '%s' '{secret}' > /tmp/secret && dd if=/tmp/secret of=/dev/vdb bs=512 count=1 conv=sync,fsync 2>/dev/null && sync && " +
            "cat /sys/block/vdb/size && cat /sys/block/vdb/serial");
        var lines = written.Trim().Split('\n');
        Assert.That(long.Parse(lines[0].Trim()), Is.EqualTo((1L << 30) / 512), "the guest sees the whole volume as a virtio disk");
        var device = mount["device"]!.GetValue<string>();
        Assert.That(lines[1].Trim(), Is.EqualTo(device), "the hot-plugged disk carries its device id as its virtio serial");
        Assert.That(mount["guestDevice"]!.GetValue<string>(), Is.EqualTo("/dev/disk/by-id/virtio-" + device), "the path udev gives that serial");

        // Killing the VM releases the volume first, so it can be attached elsewhere at once.
        await (await _admin.DeleteAsync($"/api/v1/instances/{first}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(_admin, first, "DONE", 60))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        Assert.That((await Volumes.GetAsync(_admin, uuid))["mounts"]!.AsArray(), Is.Empty);

        var secondSsh = await ReadyAsync(second);
        await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = second })).Json(201);
        var read = await SshAsync(secondSsh, WaitForDisk + $"head -c {secret.Length} /dev/vdb");
        Assert.That(read, Is.EqualTo(secret), "the second VM reads what the first wrote");

        await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}/mounts/{second}")).Json(204);
        var gone = await SshAsync(secondSsh, "i=0; while [ -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -b /dev/vdb ] && echo present || echo gone");
        Assert.That(gone.Trim(), Is.EqualTo("gone"), "hot-unplug removes the disk from the guest");
        await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
        await (await _admin.DeleteAsync($"/api/v1/instances/{second}")).Json(202);
        await InstanceApiTests.WaitAsync(_admin, second, "DONE", 60);
    }

    [Test, CancelAfter(300_000)]
    public async Task KillReleasesAttachedDisk()
    {
        var (vm, _) = await BootAsync("kill-release");
        await ReadyAsync(vm);
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, sharing = "iscsi" }));
        await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm })).Json(201);
        var target = (await PdiskHost.TargetsAsync()).Single(t => t.Name.EndsWith(uuid));
        Assert.That(target.ConnectedAddresses, Is.Not.Empty, "QEMU's initiator is logged in to the volume's target");

        await (await _admin.DeleteAsync($"/api/v1/instances/{vm}")).Json(202);
        await InstanceApiTests.WaitAsync(_admin, vm, "DONE", 60);
        await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
        Assert.That((await PdiskHost.TargetsAsync()).Any(t => t.Name.EndsWith(uuid)), Is.False);
    }

    [Test, CancelAfter(420_000)]
    public async Task A_hot_plugged_volume_is_plugged_in_again_when_the_stopped_instance_starts_and_can_still_be_detached()
    {
        var (vm, _) = await BootAsync("replug");
        var ssh = await ReadyAsync(vm);
        var uuid = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, sharing = "local", tag = "replug" }));
        await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = vm })).Json(201);
        var secret = "stratuslab-replug-" + Guid.NewGuid().ToString("N");
        await SshAsync(ssh, WaitForDisk + $"printf '%s' '{secret}' > /tmp/secret && dd if=/tmp/secret of=/dev/vdb bs=512 count=1 conv=sync,fsync 2>/dev/null && sync");

        await (await _admin.PostAsync($"/api/v1/instances/{vm}/actions/stop", null)).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(_admin, vm, "STOPPED", 120))["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"));
        Assert.That((await Volumes.GetAsync(_admin, uuid))["mounts"]!.AsArray(), Has.Count.EqualTo(1), "the mount record stays while stopped");
        await (await _admin.PostAsync($"/api/v1/instances/{vm}/actions/start", null)).Json(202);
        var running = await InstanceApiTests.WaitAsync(_admin, vm, "RUNNING", 120);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        Assert.That(running["failureReason"]?.GetValue<string>() ?? "", Does.Not.Contain("plugged in again"));

        // The guest boots again (SSH answers once it has); the disk is there from the start, with what was written.
        string read = "";
        var deadline = DateTime.UtcNow.AddSeconds(180);
        while (DateTime.UtcNow < deadline)
        {
            var attempt = await HostTools.RunAsync("ssh", [
                "-i", _privateKey, "-p", ssh.ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@127.0.0.1", WaitForDisk + $"head -c {secret.Length} /dev/vdb"],
                TimeSpan.FromSeconds(60));
            if (attempt.Exit == 0) { read = attempt.Out; break; }
            await Task.Delay(2000);
        }
        Assert.That(read, Is.EqualTo(secret), "the volume is plugged in again after stop/start, with its data");

        // Same device id as before the stop: detaching still finds it and unplugs it from the guest.
        await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}/mounts/{vm}")).Json(204);
        var gone = await SshAsync(ssh, "i=0; while [ -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -b /dev/vdb ] && echo present || echo gone");
        Assert.That(gone.Trim(), Is.EqualTo("gone"));
        await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
        await (await _admin.DeleteAsync($"/api/v1/instances/{vm}")).Json(202);
        await InstanceApiTests.WaitAsync(_admin, vm, "DONE", 60);
    }
}
