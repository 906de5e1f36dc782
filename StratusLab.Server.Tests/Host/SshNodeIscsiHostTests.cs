using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: persistent volumes on SSH nodes. Two nodes (network namespaces with their own sshd, made here); the
/// front-end's tgtd listens on the host end of each node's veth (Pdisk:Iscsi:ListenAddresses) and every node's QEMU opens
/// the volume's target there with QEMU's own initiator, as the node's own initiator name, which the target's ACL names
/// while (and only while) that node mounts it. The guest is reached by ssh from inside its node's namespace (its
/// user-mode port forward listens there). Portals added to tgtd, targets, VMs and namespaces are removed even on failure.
/// </summary>
[NonParallelizable]
public class SshNodeIscsiHostTests
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
            ["Scheduling:NodeProbeIntervalSeconds"] = "5",
            ["Scheduling:PendingTimeoutSeconds"] = "0",
            ["Compute:MonitorIntervalSeconds"] = "1",
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
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name, driver = "ssh", ssh = "root@" + node.Address, keyFile = _key, root = node.Root })).Json(201);

    async Task SetEnabledAsync(string host, bool enabled) =>
        await (await _admin.PostAsync($"/api/v1/hosts/{host}/{(enabled ? "enable" : "disable")}", null)).Json(200);

    static async Task<TgtTarget> TargetAsync(string uuid) => (await PdiskHost.TargetsAsync()).Single(t => t.Name == TgtAdm.IqnOf(Guid.Parse(uuid)));

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

    /// <summary>Whether QEMU's initiator, run inside the node's namespace as <paramref name="initiator"/>, may open the volume's LUN.</summary>
    static async Task<(bool Opened, string Error)> OpenFromAsync(SshNode node, string uuid, string initiator)
    {
        var (exit, output, error) = await node.Namespace.TryAsync("qemu-img", ["info", "--image-opts",
            $"driver=iscsi,transport=tcp,portal={node.HostAddress}:3260,target={TgtAdm.IqnOf(Guid.Parse(uuid))},lun=1,initiator-name={initiator}"], TimeSpan.FromSeconds(60));
        return (exit == 0, error + output);
    }

    static int SshPortOf(JsonNode instance) => instance["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();

    // busybox sh: wait for a disk (boot-time or hot-plugged) to appear.
    const string WaitForDisk = "i=0; while [ ! -b /dev/vdb ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; [ -b /dev/vdb ] || { echo 'no /dev/vdb' >&2; exit 1; }; ";

    [Test, CancelAfter(1_200_000)]
    public async Task A_volume_written_on_node_A_is_read_on_node_B_over_iscsi_and_each_target_lets_in_only_the_node_that_mounts_it()
    {
        var a = await AddAsync("iscsi-node-a", _nodeA);
        var b = await AddAsync("iscsi-node-b", _nodeB);
        Assert.That(a["state"]!.GetValue<string>(), Is.EqualTo("OK"), a.ToJsonString());
        Assert.That(b["state"]!.GetValue<string>(), Is.EqualTo("OK"), b.ToJsonString());
        var initiatorA = a["iscsiInitiator"]!.GetValue<string>();
        var initiatorB = b["iscsiInitiator"]!.GetValue<string>();
        Assert.That(initiatorA, Does.StartWith("iqn.2011-01.eu.stratuslab.node:"));
        Assert.That(initiatorB, Does.StartWith("iqn.2011-01.eu.stratuslab.node:").And.Not.EqualTo(initiatorA), "each node has its own initiator name");
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().First(h => h!["local"]!.GetValue<bool>())!["name"]!.GetValue<string>();
        await SetEnabledAsync(local, false);
        try
        {
            var uuid = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, sharing = "iscsi", tag = "across-nodes" }));
            Assert.That((await TargetAsync(uuid)).Acl, Has.None.StartsWith("iqn.").And.None.EqualTo("ALL"), "no node is let in before it mounts the volume");

            // VM 1 on node A, with the volume attached at launch: its QEMU logs in to the target as node A.
            await SetEnabledAsync("iscsi-node-b", false);
            var clock = Stopwatch.StartNew();
            var first = (await InstanceApiTests.CreateAsync(_admin, new { name = "writer", sshKeys = new[] { _publicKey }, volumes = new[] { uuid } }))["id"]!.GetValue<long>();
            var running = await InstanceApiTests.WaitAsync(_admin, first, "RUNNING", 300);
            Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
            Assert.That(running["host"]!.GetValue<string>(), Is.EqualTo("iscsi-node-a"));
            TestContext.Progress.WriteLine($"request -> RUNNING on node A with an iSCSI volume: {clock.Elapsed.TotalSeconds:0.0} s");
            var target = await TargetAsync(uuid);
            Assert.That(target.Acl.Where(TgtAdm.IsInitiatorName), Is.EqualTo(new[] { initiatorA }), "the ACL names node A's initiator, and only it");
            Assert.That(target.Acl, Has.None.EqualTo("ALL"));
            Assert.That(target.ConnectedAddresses, Does.Contain(_nodeA.Address), "node A's QEMU is logged in from node A's address");
            var qemu = (await _nodeA.Namespace.PidsAsync()).Select(p => { try { return File.ReadAllText($"/proc/{p}/cmdline").Replace('\0', ' '); } catch (IOException) { return ""; } })
                .Single(c => c.StartsWith("qemu-system-x86_64 -name stratuslab-", StringComparison.Ordinal));
            Assert.That(qemu, Does.Contain($"iscsi://{_nodeA.HostAddress}:3260/{TgtAdm.IqnOf(Guid.Parse(uuid))}/1").And.Contain("initiator-name=" + initiatorA),
                "node A opens the target at the front-end's address on its link, as its own initiator");

            // Node B's initiator is refused by the target node A mounts; node A's own name, from node A, gets in (so the refusal is the ACL's).
            var refused = await OpenFromAsync(_nodeB, uuid, initiatorB);
            Assert.That(refused.Opened, Is.False, "node B may not open a target node A mounts");
            Assert.That(refused.Error, Does.Contain("Failed to log in").Or.Contain("Target not found"), refused.Error);
            Assert.That((await OpenFromAsync(_nodeA, uuid, initiatorA)).Opened, Is.True, "node A's initiator gets in");

            // The guest writes a marker to the volume; then the VM is killed.
            var marker = "stratuslab-node-volume-" + Guid.NewGuid().ToString("N");
            await GuestAsync(_nodeA, SshPortOf(running), WaitForDisk +
                $"printf '%s' '{marker}' > /tmp/marker && dd if=/tmp/marker of=/dev/vdb bs=512 count=1 conv=sync,fsync 2>/dev/null && sync", 400);
            await (await _admin.DeleteAsync($"/api/v1/instances/{first}")).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(_admin, first, "DONE", 120))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
            Assert.That((await Volumes.GetAsync(_admin, uuid))["mounts"]!.AsArray(), Is.Empty);
            Assert.That((await TargetAsync(uuid)).Acl.Where(TgtAdm.IsInitiatorName), Is.Empty, "releasing the volume withdrew node A's initiator");
            Assert.That((await OpenFromAsync(_nodeA, uuid, initiatorA)).Opened, Is.False, "node A no longer gets in");

            // VM 2 on node B; the volume is hot-attached (blockdev-add through the forwarded QMP socket) and reads the marker.
            await SetEnabledAsync("iscsi-node-b", true);
            await SetEnabledAsync("iscsi-node-a", false);
            var second = (await InstanceApiTests.CreateAsync(_admin, new { name = "reader", sshKeys = new[] { _publicKey } }))["id"]!.GetValue<long>();
            var onB = await InstanceApiTests.WaitAsync(_admin, second, "RUNNING", 300);
            Assert.That(onB["host"]!.GetValue<string>(), Is.EqualTo("iscsi-node-b"), onB.ToJsonString());
            // The guest is up before the disk is plugged in (the hot-plug then shows as a new disk).
            await GuestAsync(_nodeB, SshPortOf(onB), "true", 400);

            // A volume shared 'local' (a path here) is refused on a node, with what to do, and leaves no mount behind.
            var localUuid = Volumes.Uuid(await Volumes.CreateAsync(_admin, new { size = 1, sharing = "local", tag = "path-only" }));
            var refusal = await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{localUuid}/mounts", new { instanceId = second })).Problem(409);
            Assert.That(refusal["detail"]!.GetValue<string>(), Does.Contain("shared 'local'").And.Contain("iscsi-node-b").And.Contain("sharing 'iscsi'"));
            Assert.That((await Volumes.GetAsync(_admin, localUuid))["mounts"]!.AsArray(), Is.Empty, "nothing half-made");
            await (await _admin.DeleteAsync($"/api/v1/volumes/{localUuid}")).Json(204);
            var mount = await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = second })).Json(201);
            target = await TargetAsync(uuid);
            Assert.That(target.Acl.Where(TgtAdm.IsInitiatorName), Is.EqualTo(new[] { initiatorB }), "now only node B's initiator is named");
            Assert.That(target.ConnectedAddresses, Does.Contain(_nodeB.Address));
            Assert.That((await OpenFromAsync(_nodeA, uuid, initiatorA)).Opened, Is.False, "node A is refused while node B mounts it");
            var read = await GuestAsync(_nodeB, SshPortOf(onB), WaitForDisk + $"head -c {marker.Length} /dev/vdb", 120);
            Assert.That(read, Is.EqualTo(marker), "node B's VM reads what node A's VM wrote");

            // Figures, same VM, same run: 48 MiB read from the iSCSI volume against 48 MiB of the node-local boot disk (the cache overlay).
            const string Timed = "drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }; t() { drop; s=$(cut -d' ' -f1 /proc/uptime); dd if=$1 of=/dev/null bs=1M count=48 2>/dev/null; e=$(cut -d' ' -f1 /proc/uptime); echo \"$s $e\"; }; ";
            var times = (await GuestAsync(_nodeB, SshPortOf(onB), Timed + "t /dev/vdb; t /dev/vda", 120)).Trim().Split('\n');
            double Seconds(string line) { var p = line.Split(' '); return Math.Max(0.01, double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture) - double.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture)); }
            var (iscsiSeconds, localSeconds) = (Seconds(times[0]), Seconds(times[1]));
            TestContext.Progress.WriteLine($"guest on node B reads 48 MiB: iSCSI volume {48 / iscsiSeconds:0.0} MiB/s ({iscsiSeconds:0.00} s), " +
                $"node-local boot disk {48 / localSeconds:0.0} MiB/s ({localSeconds:0.00} s); ratio iSCSI/local {localSeconds / iscsiSeconds:0.00} (TCG guest)");

            // Detach: the guest loses the disk and the ACL loses node B.
            await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}/mounts/{second}")).Json(204);
            var gone = await GuestAsync(_nodeB, SshPortOf(onB), "i=0; while [ -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -b /dev/vdb ] && echo present || echo gone", 60);
            Assert.That(gone.Trim(), Is.EqualTo("gone"), "hot-unplug on the node removes the disk from the guest");
            Assert.That((await TargetAsync(uuid)).Acl.Where(TgtAdm.IsInitiatorName), Is.Empty, "detaching withdrew node B's initiator");
            Assert.That(mount["device"]!.GetValue<string>(), Does.StartWith("vol"));

            // Node B's QEMU loses its iSCSI driver (its module hidden, as without qemu-block-extra): the probe says so, and an
            // attach is refused naming the package, before anything is made (no mount, no ACL entry).
            await _nodeB.StopSshdAsync();
            await _nodeB.StartSshdAsync(withoutQemuModule: "block-iscsi.so");
            var probed = await (await _admin.PostAsync("/api/v1/hosts/iscsi-node-b/probe", null)).Json(200);
            Assert.That(probed["state"]!.GetValue<string>(), Is.EqualTo("ERROR"), probed.ToJsonString());
            Assert.That(probed["stateReason"]!.GetValue<string>(), Does.Contain("qemu-block-extra"));
            var noDriver = await (await _admin.PostAsJsonAsync($"/api/v1/volumes/{uuid}/mounts", new { instanceId = second })).Problem(409);
            Assert.That(noDriver["detail"]!.GetValue<string>(), Does.Contain("no iSCSI block driver").And.Contain("qemu-block-extra"));
            Assert.That((await Volumes.GetAsync(_admin, uuid))["mounts"]!.AsArray(), Is.Empty, "nothing half-made");
            Assert.That((await TargetAsync(uuid)).Acl.Where(TgtAdm.IsInitiatorName), Is.Empty, "no initiator let in");
            await _nodeB.StopSshdAsync();
            await _nodeB.StartSshdAsync();
            Assert.That((await (await _admin.PostAsync("/api/v1/hosts/iscsi-node-b/probe", null)).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("OK"));

            await (await _admin.DeleteAsync($"/api/v1/instances/{second}")).Json(202);
            await InstanceApiTests.WaitAsync(_admin, second, "DONE", 120);
            await (await _admin.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
        }
        finally
        {
            await SetEnabledAsync(local, true);
            foreach (var i in (await (await _admin.GetAsync("/api/v1/instances")).Json(200)).AsArray())
                if (i!["state"]!.GetValue<string>() is not ("DONE" or "FAILED"))
                    await _admin.DeleteAsync($"/api/v1/instances/{i["id"]}");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (DateTime.UtcNow < deadline && (await (await _admin.GetAsync("/api/v1/instances")).Json(200)).AsArray().Any(i => i!["state"]!.GetValue<string>() is not ("DONE" or "FAILED")))
                await Task.Delay(500);
            await _admin.DeleteAsync("/api/v1/hosts/iscsi-node-a");
            await _admin.DeleteAsync("/api/v1/hosts/iscsi-node-b");
        }
    }
}
