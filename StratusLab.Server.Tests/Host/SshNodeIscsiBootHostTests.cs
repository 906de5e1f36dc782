using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: SSH nodes in boot mode iscsi. Two nodes (network namespaces with their own sshd, made here); the front-end's
/// tgtd listens on the host end of each node's veth. The VM's boot disk is the image cache's copy-on-write clone, shared
/// over iSCSI and opened by the node's QEMU with the ORIGIN's export as its backing: nothing is copied to the node. One
/// boot serves every assertion: the node dies (its sshd stops, its QEMU keeps running), host-evacuate fences it off the
/// disk and restarts the VM on the other node, where the guest's write is found; then stop/start and shutdown with save.
/// Portals, targets, VMs and namespaces are removed even on failure.
/// </summary>
[NonParallelizable]
public class SshNodeIscsiBootHostTests
{
    IscsiNodePair _pair = null!;
    TestServer _server = null!;
    HttpClient _admin = null!;
    SshNode _nodeA = null!, _nodeB = null!;
    string _key = "", _publicKey = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        HostTools.AppliancePath();
        _pair = await IscsiNodePair.StartAsync(new Dictionary<string, string?>
        {
            ["Scheduling:NodeProbeIntervalSeconds"] = "2",
            ["Scheduling:NodeMissedProbes"] = "2",
            ["Scheduling:PendingTimeoutSeconds"] = "0",
            ["Compute:MonitorIntervalSeconds"] = "1",
            ["Compute:NodeSweepSeconds"] = "2",
            ["Compute:ShutdownTimeoutSeconds"] = "20",
        });
        (_server, _nodeA, _nodeB, _key, _publicKey) = (_pair.Server, _pair.NodeA, _pair.NodeB, _pair.Key, _pair.PublicKey);
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        if (_pair is not null) await _pair.DisposeAsync();
    }

    async Task<JsonNode> AddAsync(string name, SshNode node) =>
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name, driver = "ssh", ssh = "root@" + node.Address, keyFile = _key, root = node.Root, bootDisks = "iscsi" })).Json(201);

    async Task SetEnabledAsync(string host, bool enabled) =>
        await (await _admin.PostAsync($"/api/v1/hosts/{host}/{(enabled ? "enable" : "disable")}", null)).Json(200);

    async Task<JsonNode> InstanceAsync(long id) => await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200);

    async Task<JsonNode> UntilAsync(long id, Func<JsonNode, bool> done, int seconds, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (true)
        {
            var instance = await InstanceAsync(id);
            if (done(instance)) return instance;
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{what} within {seconds} s: {instance.ToJsonString()}");
            await Task.Delay(500);
        }
    }

    /// <summary>The targets whose ACL names this initiator.</summary>
    static async Task<IReadOnlyList<TgtTarget>> TargetsNamingAsync(string initiator) =>
        (await PdiskHost.TargetsAsync()).Where(t => t.Acl.Contains(initiator)).ToList();

    /// <summary>A shell script run in the guest over ssh from inside the node's namespace, retried while the guest boots (TCG: minutes).</summary>
    async Task<string> GuestAsync(SshNode node, int port, string script, int seconds)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (true)
        {
            var (exit, output, error) = await node.Namespace.TryAsync("ssh", [
                "-i", _key, "-p", port.ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@127.0.0.1", script], TimeSpan.FromSeconds(60));
            if (exit == 0) return output;
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"the guest on {node.Address} ran the script within {seconds} s: {error}\n{output}");
            await Task.Delay(2000);
        }
    }

    static async Task<(bool Opened, string Error)> OpenFromAsync(SshNode node, Guid volume, string initiator)
    {
        var (exit, output, error) = await node.Namespace.TryAsync("qemu-img", ["info", "--image-opts",
            $"driver=iscsi,transport=tcp,portal={node.HostAddress}:3260,target={TgtAdm.IqnOf(volume)},lun=1,initiator-name={initiator}"], TimeSpan.FromSeconds(60));
        return (exit == 0, error + output);
    }

    static async Task<string> QemuCommandLineAsync(SshNode node) =>
        (await node.Namespace.PidsAsync()).Select(p => { try { return File.ReadAllText($"/proc/{p}/cmdline").Replace('\0', ' '); } catch (IOException) { return ""; } })
            .Single(c => c.StartsWith("qemu-system-x86_64 -name stratuslab-", StringComparison.Ordinal));

    /// <summary>Every QEMU VM command line in the node's namespace, one a line (empty when none).</summary>
    static async Task<string> QemuCommandLinesAsync(SshNode node) =>
        string.Join('\n', (await node.Namespace.PidsAsync()).Select(p => { try { return File.ReadAllText($"/proc/{p}/cmdline").Replace('\0', ' '); } catch (IOException) { return ""; } })
            .Where(c => c.StartsWith("qemu-system-x86_64 -name stratuslab-", StringComparison.Ordinal)));

    static int SshPortOf(JsonNode instance) => instance["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();

    // busybox sh: the last 512-byte sector of the boot disk (free space at the end of the appliance's FAT partition).
    const string LastSector = "n=$(( $(cat /sys/block/vda/size) - 1 )); ";

    [Test, CancelAfter(1_800_000)]
    public async Task A_node_booting_over_iscsi_copies_nothing_and_when_it_dies_is_fenced_and_its_vm_restarts_on_another_node_with_its_writes()
    {
        var a = await AddAsync("boot-node-a", _nodeA);
        var b = await AddAsync("boot-node-b", _nodeB);
        Assert.That(a["state"]!.GetValue<string>(), Is.EqualTo("OK"), a.ToJsonString());
        Assert.That(b["state"]!.GetValue<string>(), Is.EqualTo("OK"), b.ToJsonString());
        Assert.That(a["bootDisks"]!.GetValue<string>(), Is.EqualTo("iscsi"));
        var initiatorA = a["iscsiInitiator"]!.GetValue<string>();
        var initiatorB = b["iscsiInitiator"]!.GetValue<string>();
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().First(h => h!["local"]!.GetValue<bool>())!["name"]!.GetValue<string>();
        await SetEnabledAsync(local, false);
        await SetEnabledAsync("boot-node-b", false);

        // Boot on node A: its QEMU opens the clone over iSCSI, with the ORIGIN's export as backing, as node A's initiator.
        var clock = Stopwatch.StartNew();
        var id = (await InstanceApiTests.CreateAsync(_admin, new { name = "iscsi-boot", sshKeys = new[] { _publicKey } }))["id"]!.GetValue<long>();
        var running = await UntilAsync(id, i => i["state"]!.GetValue<string>() is "RUNNING" or "FAILED", 300, "RUNNING on node A");
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        Assert.That(running["host"]!.GetValue<string>(), Is.EqualTo("boot-node-a"));
        TestContext.Progress.WriteLine($"request -> RUNNING on node A booting over iSCSI: {clock.Elapsed.TotalSeconds:0.0} s");
        var onA = await TargetsNamingAsync(initiatorA);
        Assert.That(onA, Has.Count.EqualTo(2), "node A is let into two targets: the clone and its ORIGIN");
        var clone = onA.Single(t => !t.Luns.Single(l => l.Lun == TgtAdm.DataLun).ReadOnly);
        var origin = onA.Single(t => t.Luns.Single(l => l.Lun == TgtAdm.DataLun).ReadOnly);
        var cloneUuid = TgtAdm.UuidOf(clone.Name)!.Value;
        Assert.That(clone.Acl.Where(TgtAdm.IsInitiatorName), Is.EqualTo(new[] { initiatorA }), "the clone's ACL names node A only");
        var qemu = await QemuCommandLineAsync(_nodeA);
        Assert.That(qemu, Does.Contain($"file=iscsi://{_nodeA.HostAddress}:3260/{clone.Name}/1,format=qcow2").And.Contain(",backing=disk0-backing"), qemu);
        Assert.That(qemu, Does.Contain($"driver=iscsi,node-name=disk0-backing-file,transport=tcp,portal={_nodeA.HostAddress}:3260,target={origin.Name},lun=1,initiator-name={initiatorA},read-only=on"), qemu);
        Assert.That(qemu, Does.Contain("initiator-name=" + initiatorA));
        var nodeDir = Path.Combine(_nodeA.Root, "instances", id.ToString());
        Assert.That(Directory.EnumerateFiles(nodeDir, "disk*"), Is.Empty, "no boot disk was copied to node A");
        Assert.That(!Directory.Exists(Path.Combine(_nodeA.Root, "cache")) || !Directory.EnumerateFileSystemEntries(Path.Combine(_nodeA.Root, "cache")).Any(), Is.True, "node A's image cache stays empty");

        // The guest writes a marker to its boot disk (synced), then node A dies: its sshd stops, its QEMU keeps running.
        var marker = "stratuslab-iscsi-boot-" + Guid.NewGuid().ToString("N");
        await GuestAsync(_nodeA, SshPortOf(running), LastSector +
            $"printf '%s' '{marker}' > /tmp/marker && dd if=/tmp/marker of=/dev/vda bs=512 seek=$n count=1 conv=sync,fsync 2>/dev/null && sync", 400);
        Assert.That((await PdiskHost.TargetsAsync()).Single(t => t.Name == clone.Name).ConnectedAddresses, Does.Contain(_nodeA.Address));
        await SetEnabledAsync("boot-node-b", true);
        await _nodeA.StopSshdAsync();
        var down = Stopwatch.StartNew();
        var unknown = await UntilAsync(id, i => i["state"]!.GetValue<string>() == "UNKNOWN", 90, "UNKNOWN while node A is down");
        TestContext.Progress.WriteLine($"VM shown UNKNOWN {down.Elapsed.TotalSeconds:0.0} s after node A's sshd stopped");

        // host-evacuate: node A is fenced off the clone (ACL, and its open connection closed), the VM restarts on node B.
        clock.Restart();
        var evacuation = await (await _admin.PostAsync("/api/v1/hosts/boot-node-a/evacuate", null)).Json(200);
        var moved = evacuation["instances"]!.AsArray().Single(i => i!["id"]!.GetValue<long>() == id)!;
        Assert.That(moved["movedTo"]?.GetValue<string>(), Is.EqualTo("boot-node-b"), evacuation.ToJsonString());
        Assert.That(moved["stateBefore"]!.GetValue<string>(), Is.EqualTo("UNKNOWN"));
        var onB = await UntilAsync(id, i => i["state"]!.GetValue<string>() is "RUNNING" or "STOPPED" or "FAILED", 300, "RUNNING on node B");
        Assert.That(onB["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), onB.ToJsonString());
        Assert.That(onB["host"]!.GetValue<string>(), Is.EqualTo("boot-node-b"));
        TestContext.Progress.WriteLine($"evacuate -> RUNNING on node B from the same iSCSI disk: {clock.Elapsed.TotalSeconds:0.0} s");
        var targets = await PdiskHost.TargetsAsync();
        var cloneNow = targets.Single(t => t.Name == clone.Name);
        Assert.That(cloneNow.Acl.Where(TgtAdm.IsInitiatorName), Is.EqualTo(new[] { initiatorB }), "the clone's ACL names node B, and no longer node A");
        Assert.That(cloneNow.ConnectedAddresses, Does.Not.Contain(_nodeA.Address), "node A's connection to the clone was closed");
        Assert.That(cloneNow.ConnectedAddresses, Does.Contain(_nodeB.Address));
        Assert.That(targets.Single(t => t.Name == origin.Name).Acl, Does.Not.Contain(initiatorA).And.Contain(initiatorB), "the ORIGIN's ACL followed the VM");
        Assert.That((await OpenFromAsync(_nodeA, cloneUuid, initiatorA)).Opened, Is.False, "node A cannot log in to the clone again");
        Assert.That(await QemuCommandLineAsync(_nodeA), Does.Contain("stratuslab-" + id), "node A's QEMU still runs (half-dead), fenced");
        var read = await GuestAsync(_nodeB, SshPortOf(onB), LastSector + $"dd if=/dev/vda bs=512 skip=$n count=1 2>/dev/null | head -c {marker.Length}", 400);
        Assert.That(read, Is.EqualTo(marker), "the VM on node B finds what it wrote on node A");

        // Node A answers again: the VM it still runs belongs to no live instance there, so the node sweep kills it and
        // removes its directory; the instance on node B is untouched.
        await _nodeA.StartSshdAsync();
        var back = Stopwatch.StartNew();
        while (Directory.Exists(nodeDir) || (await QemuCommandLinesAsync(_nodeA)).Contains("stratuslab-" + id, StringComparison.Ordinal))
        {
            Assert.That(back.Elapsed, Is.LessThan(TimeSpan.FromSeconds(90)), "node A's leftover VM is killed once node A answers: " + await QemuCommandLinesAsync(_nodeA));
            await Task.Delay(500);
        }
        TestContext.Progress.WriteLine($"node A's leftover VM killed {back.Elapsed.TotalSeconds:0.0} s after its sshd came back");
        Assert.That((await InstanceAsync(id))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), "the instance runs on node B still");

        // Stop and start on node B: nothing copied back, nothing left on the node while stopped, the node still let in.
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/stop", null)).Json(202);
        await UntilAsync(id, i => i["state"]!.GetValue<string>() == "STOPPED", 120, "STOPPED");
        var nodeDirB = Path.Combine(_nodeB.Root, "instances", id.ToString());
        Assert.That(Directory.Exists(nodeDirB), Is.False, "nothing of the stopped VM stays on node B");
        Assert.That(Directory.EnumerateFiles(Path.Combine(_server.DataDir), "*.from-node", SearchOption.AllDirectories), Is.Empty, "nothing was copied back");
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/start", null)).Json(202);
        var again = await UntilAsync(id, i => i["state"]!.GetValue<string>() is "RUNNING" or "FAILED", 300, "RUNNING again");
        Assert.That(again["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), again.ToJsonString());
        Assert.That(again["host"]!.GetValue<string>(), Is.EqualTo("boot-node-b"));

        // Shutdown with save: the clone becomes an image; no ACL names node B and nothing stays on node B.
        await GuestAsync(_nodeB, SshPortOf(again), "true", 400);
        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/shutdown?save=true", null)).Json(202);
        var done = await UntilAsync(id, i => i["state"]!.GetValue<string>() is "DONE" or "FAILED", 180, "DONE");
        Assert.That(done["state"]!.GetValue<string>(), Is.EqualTo("DONE"), done.ToJsonString());
        Assert.That(done["savedImage"]?.GetValue<string>(), Is.Not.Null.And.Not.Empty, done.ToJsonString());
        Assert.That(await TargetsNamingAsync(initiatorB), Is.Empty, "no target lets node B in any more");
        Assert.That(await TargetsNamingAsync(initiatorA), Is.Empty, "nor node A");
        Assert.That(Directory.Exists(nodeDirB), Is.False, "nothing of the VM stays on node B");
    }
}
