using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Scheduling;

/// <summary>
/// Peer clouds (host driver cloud): a second real server on another port is the peer, both on the simulated driver. The
/// local server's only enabled host is a one-CPU simulated host, so the second instance must go elsewhere. The servers
/// are shared by the tests; each test adds its own peer host and ends what it started.
/// </summary>
public class PeerCloudTests
{
    TestServer _peer = null!;
    TestServer _local = null!;
    HttpClient _peerAdmin = null!;
    HttpClient _admin = null!;
    string _images = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _images = TempDir.Create("peer-images");
        var image = TestImages.CreateQcow2(_images, "shared");
        _peer = await TestServer.StartAsync();
        _local = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Scheduling:BurstTo"] = "peer1",
            ["Scheduling:PendingTimeoutSeconds"] = "60",
            // A silent peer is ERROR after 2 probes a second apart, and its instances UNKNOWN at the next monitor pass.
            ["Scheduling:PeerProbeIntervalSeconds"] = "1",
            ["Scheduling:NodeMissedProbes"] = "2",
            ["Compute:MonitorIntervalSeconds"] = "1",
        });
        _peerAdmin = _peer.Client();
        _admin = _local.Client();
        // The same image file on both sides: the same Marketplace identifier, each entry signed by its own site.
        foreach (var http in new[] { _peerAdmin, _admin })
            await (await http.PostAsJsonAsync("/api/v1/images", new { name = "shared", path = image, @default = true })).Json(201);
        foreach (var host in (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray())
            await (await _admin.PostAsync($"/api/v1/hosts/{host!["name"]}/disable", null)).Json(200);
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-1", driver = "simulated", cpus = 1, memoryMiB = 1024 })).Json(201);
    }

    /// <summary>Ends every instance on both servers and removes the test's peer hosts, so the next test starts from sim-1 alone.</summary>
    [TearDown]
    public async Task EndInstances()
    {
        foreach (var http in new[] { _admin, _peerAdmin })
        {
            var live = (await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray()
                .Where(i => i!["state"]!.GetValue<string>() is not ("DONE" or "FAILED")).Select(i => i!["id"]!.GetValue<long>()).ToList();
            foreach (var id in live) await http.DeleteAsync($"/api/v1/instances/{id}");
            foreach (var id in live) await InstanceApiTests.WaitAsync(http, id, "DONE", 30);
        }
        foreach (var host in (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray())
            if (host!["driver"]!.GetValue<string>() == "cloud")
                // force: a test whose relay is gone leaves a termination owed to it; the peer's own instances were ended above.
                await (await _admin.DeleteAsync($"/api/v1/hosts/{host["name"]}?force=true")).Json(204);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        _peerAdmin.Dispose();
        await _local.DisposeAsync();
        await _peer.DisposeAsync();
        TempDir.Delete(_images);
    }

    async Task<JsonNode> AddPeerAsync(string token, string name = "peer1") =>
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name, driver = "cloud", url = _peer.BaseAddress.ToString(), token })).Json(201);

    async Task<long> RunAsync(string? onPeer = null, string? image = null) =>
        (await (await _admin.PostAsJsonAsync("/api/v1/instances",
            new { image, cpu = 1, memoryMiB = 512, requirements = onPeer is null ? null : $"NAME = \"{onPeer}\"" })).Json(201))["id"]!.GetValue<long>();

    static async Task<JsonArray> InstancesAsync(HttpClient http) =>
        new((await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray()
            .Where(i => i!["state"]!.GetValue<string>() is not ("DONE" or "FAILED")).Select(i => i!.DeepClone()).ToArray());

    [Test, CancelAfter(120_000)]
    public async Task A_full_local_host_bursts_to_the_peer_where_the_instance_runs_and_a_kill_here_ends_it_there()
    {
        var peer = await AddPeerAsync(_peer.AdminToken);
        Assert.That(peer["state"]!.GetValue<string>(), Is.EqualTo("OK"), peer.ToJsonString());
        Assert.That(peer["driver"]!.GetValue<string>(), Is.EqualTo("cloud"));
        Assert.That(peer["credentialsStored"]!.GetValue<bool>(), Is.True);
        Assert.That(peer.ToJsonString(), Does.Not.Contain(_peer.AdminToken), "the API shows only that credentials exist");
        Assert.That(peer["cpus"]!.GetValue<long>(), Is.GreaterThan(0), "capacity comes from the peer account's quota headroom");

        var first = await RunAsync();
        var onLocal = await InstanceApiTests.WaitAsync(_admin, first, "RUNNING", 30);
        Assert.That(onLocal["host"]!.GetValue<string>(), Is.EqualTo("sim-1"), onLocal.ToJsonString());
        Assert.That(onLocal["remoteId"], Is.Null);

        var second = await RunAsync();
        var burst = await InstanceApiTests.WaitAsync(_admin, second, "RUNNING", 60);
        Assert.That(burst["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), burst.ToJsonString());
        Assert.That(burst["host"]!.GetValue<string>(), Is.EqualTo("peer1"));
        var remoteId = burst["remoteId"]!.GetValue<string>();
        var there = await (await _peerAdmin.GetAsync($"/api/v1/instances/{remoteId}")).Json(200);
        Assert.That(there["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), there.ToJsonString());
        var identifier = (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray()
            .Single(i => i!["names"]!.AsArray().Any(n => n!.GetValue<string>() == "shared"))!["identifier"]!.GetValue<string>();
        Assert.That(there["image"]!.GetValue<string>(), Is.EqualTo(identifier), "the peer runs the image of the same Marketplace identifier");
        var address = there["nics"]!.AsArray().FirstOrDefault()?["ip"]?.GetValue<string>();
        Assert.That(burst["remoteAddress"]?.GetValue<string>(), Is.EqualTo(address), "the address is the one the peer gave");

        // The peer's credentials are in the store only sealed with the server key.
        foreach (var file in Directory.GetFiles(_local.DataDir, "stratuslab.db*"))
        {
            var bytes = await File.ReadAllBytesAsync(file);
            Assert.That(System.Text.Encoding.Latin1.GetString(bytes), Does.Not.Contain(_peer.AdminToken), file);
        }

        await (await _admin.DeleteAsync($"/api/v1/instances/{second}")).Json(202);
        var done = await InstanceApiTests.WaitAsync(_admin, second, "DONE", 30);
        Assert.That(done["state"]!.GetValue<string>(), Is.EqualTo("DONE"), done.ToJsonString());
        var ended = await (await _peerAdmin.GetAsync($"/api/v1/instances/{remoteId}/wait?state=DONE&timeout=30")).Json(200);
        Assert.That(ended["state"]!.GetValue<string>(), Is.EqualTo("DONE"), "killing it here terminates it on the peer: " + ended.ToJsonString());
    }

    [Test, CancelAfter(120_000)]
    public async Task Stop_and_start_pass_through_to_the_peer()
    {
        await AddPeerAsync(_peer.AdminToken, "peer-stop");
        var id = await RunAsync(onPeer: "peer-stop");
        var running = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60);
        Assert.That(running["host"]!.GetValue<string>(), Is.EqualTo("peer-stop"), running.ToJsonString());
        var remoteId = running["remoteId"]!.GetValue<string>();

        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/stop", null)).Json(202);
        var stopped = await InstanceApiTests.WaitAsync(_admin, id, "STOPPED", 60);
        Assert.That(stopped["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"), stopped.ToJsonString());
        Assert.That((await (await _peerAdmin.GetAsync($"/api/v1/instances/{remoteId}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"));

        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/start", null)).Json(202);
        var again = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60);
        Assert.That(again["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), again.ToJsonString());
        Assert.That(again["remoteId"]!.GetValue<string>(), Is.EqualTo(remoteId), "the same instance runs again on the peer");
        Assert.That((await (await _peerAdmin.GetAsync($"/api/v1/instances/{remoteId}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
    }

    [Test, CancelAfter(120_000)]
    public async Task A_peer_that_stops_answering_leaves_its_instance_UNKNOWN_and_it_is_re_attached_when_the_peer_is_back()
    {
        await using var relay = new TcpRelay(_peer.BaseAddress.Port);
        var added = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "peer-relay", driver = "cloud", url = $"http://127.0.0.1:{relay.Port}/", token = _peer.AdminToken })).Json(201);
        Assert.That(added["state"]!.GetValue<string>(), Is.EqualTo("OK"), added.ToJsonString());
        var id = await RunAsync(onPeer: "peer-relay");
        var running = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());

        relay.Cut();
        var unknown = await InstanceApiTests.WaitAsync(_admin, id, "UNKNOWN", 30);
        Assert.That(unknown["state"]!.GetValue<string>(), Is.EqualTo("UNKNOWN"), unknown.ToJsonString());
        Assert.That(unknown["failureReason"]!.GetValue<string>(), Does.Contain("peer cloud peer-relay is in ERROR").And.Contain("does not answer"));
        var host = await (await _admin.GetAsync("/api/v1/hosts/peer-relay")).Json(200);
        Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("ERROR"), host.ToJsonString());
        Assert.That((await (await _peerAdmin.GetAsync($"/api/v1/instances/{running["remoteId"]}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"),
            "the instance still runs on the peer meanwhile");

        relay.Restore();
        var back = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 30);
        Assert.That(back["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), back.ToJsonString());
        Assert.That(back["remoteId"]!.GetValue<string>(), Is.EqualTo(running["remoteId"]!.GetValue<string>()));
        Assert.That((await (await _admin.GetAsync("/api/v1/hosts/peer-relay")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("OK"));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_peer_with_bad_credentials_is_in_ERROR_with_the_reason_and_nothing_is_placed_there()
    {
        var peer = await AddPeerAsync("slt_not-a-valid-token", "peer-bad");
        Assert.That(peer["state"]!.GetValue<string>(), Is.EqualTo("ERROR"), peer.ToJsonString());
        Assert.That(peer["stateReason"]!.GetValue<string>(), Does.Contain("refused the credentials").And.Contain("401"));

        var id = await RunAsync(onPeer: "peer-bad");
        await Task.Delay(1500);
        var pending = await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200);
        Assert.That(pending["state"]!.GetValue<string>(), Is.EqualTo("PENDING"), pending.ToJsonString());
        Assert.That(pending["schedulingMessage"]!.GetValue<string>(), Does.Contain("peer-bad: in state ERROR").And.Contain("refused the credentials"));
        Assert.That(await InstancesAsync(_peerAdmin), Is.Empty, "nothing reached the peer");
    }

    [Test, CancelAfter(60_000)]
    public async Task An_ec2_peer_is_probed_through_its_EC2_API_with_a_signed_call_and_a_wrong_secret_is_ERROR()
    {
        var key = await (await _peerAdmin.PostAsJsonAsync("/api/v1/users/admin/access-keys", new { })).Json(201);
        var ec2 = new Uri(_peer.BaseAddress, "/ec2/").ToString();
        var good = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new
        {
            name = "peer-ec2", driver = "cloud", kind = "ec2", url = ec2, region = "stratuslab-1",
            accessKeyId = key["accessKeyId"]!.GetValue<string>(), secretAccessKey = key["secretAccessKey"]!.GetValue<string>(),
        })).Json(201);
        Assert.That(good["state"]!.GetValue<string>(), Is.EqualTo("OK"), good.ToJsonString());
        Assert.That(good["cloudKind"]!.GetValue<string>(), Is.EqualTo("ec2"));
        Assert.That(good["probe"]!["zones"]!.AsArray().Select(z => z!.GetValue<string>()), Does.Contain("stratuslab-1a"));
        Assert.That(good.ToJsonString(), Does.Not.Contain(key["secretAccessKey"]!.GetValue<string>()));

        var bad = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new
        {
            name = "peer-ec2-bad", driver = "cloud", kind = "ec2", url = ec2, region = "stratuslab-1",
            accessKeyId = key["accessKeyId"]!.GetValue<string>(), secretAccessKey = "not-the-secret",
        })).Json(201);
        Assert.That(bad["state"]!.GetValue<string>(), Is.EqualTo("ERROR"), bad.ToJsonString());
        Assert.That(bad["stateReason"]!.GetValue<string>(), Does.Contain("refused the credentials").And.Contain("SignatureDoesNotMatch"));
    }

    [Test, CancelAfter(60_000)]
    public async Task An_unreachable_peer_is_in_ERROR_with_the_reason()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var peer = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "peer-gone", driver = "cloud", url = $"http://127.0.0.1:{port}/", token = "slt_x" })).Json(201);
        Assert.That(peer["state"]!.GetValue<string>(), Is.EqualTo("ERROR"), peer.ToJsonString());
        Assert.That(peer["stateReason"]!.GetValue<string>(), Does.Contain("does not answer").And.Contain($"127.0.0.1:{port}"));
    }

    [Test, CancelAfter(120_000)]
    public async Task An_image_missing_from_the_peers_Marketplace_fails_the_launch_with_the_reason()
    {
        await AddPeerAsync(_peer.AdminToken, "peer-img");
        var only = TestImages.CreateQcow2(_images, "local-only", "24M");
        await (await _admin.PostAsJsonAsync("/api/v1/images", new { name = "local-only", path = only })).Json(201);

        var id = await RunAsync(onPeer: "peer-img", image: "local-only");
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "FAILED", 60);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("is not in the Marketplace of peer cloud peer-img").And.Contain("upload its signed entry there"));
        Assert.That(await InstancesAsync(_peerAdmin), Is.Empty, "nothing was made on the peer");
    }

    /// <summary>Adds an EC2 peer host: the peer's own /ec2/ endpoint (or a relay to it), with an access key made on the peer.</summary>
    async Task<JsonNode> AddEc2PeerAsync(string name, int? port = null)
    {
        var key = await (await _peerAdmin.PostAsJsonAsync("/api/v1/users/admin/access-keys", new { })).Json(201);
        var url = port is null ? new Uri(_peer.BaseAddress, "/ec2/").ToString() : $"http://127.0.0.1:{port}/ec2/";
        return await (await _admin.PostAsJsonAsync("/api/v1/hosts", new
        {
            name, driver = "cloud", kind = "ec2", url, region = "stratuslab-1",
            accessKeyId = key["accessKeyId"]!.GetValue<string>(), secretAccessKey = key["secretAccessKey"]!.GetValue<string>(),
        })).Json(201);
    }

    /// <summary>The peer's instance that an EC2 launch made for a local instance (RunInstances names it after the local one), newest first.</summary>
    async Task<JsonNode> PeerInstanceNamedAsync(string name) =>
        (await (await _peerAdmin.GetAsync("/api/v1/instances")).Json(200)).AsArray()
            .Where(i => i!["name"]!.GetValue<string>() == name).OrderByDescending(i => i!["id"]!.GetValue<long>()).First()!;

    async Task<JsonNode> WaitPeerStateAsync(long peerId, string state) =>
        await (await _peerAdmin.GetAsync($"/api/v1/instances/{peerId}/wait?state={state}&timeout=30")).Json(200);

    [Test, CancelAfter(180_000)]
    public async Task An_ec2_peer_runs_the_instance_with_its_i_id_passes_stop_and_start_through_and_a_kill_terminates_it_there()
    {
        var host = await AddEc2PeerAsync("peer-ec2-run");
        Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("OK"), host.ToJsonString());
        var id = await RunAsync(onPeer: "peer-ec2-run");
        var running = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        Assert.That(running["host"]!.GetValue<string>(), Is.EqualTo("peer-ec2-run"));
        var remoteId = running["remoteId"]!.GetValue<string>();
        Assert.That(remoteId, Does.Match("^i-[0-9a-f]{17}$"), "the remote id is the EC2 instance id");

        var there = await PeerInstanceNamedAsync(running["name"]!.GetValue<string>());
        Assert.That(there["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), there.ToJsonString());
        Assert.That(there["instanceType"]!.GetValue<string>(), Is.EqualTo("t1.micro"), "1 CPU and 512 MiB: the peer's smallest type that holds them");
        var identifier = (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray()
            .Single(i => i!["names"]!.AsArray().Any(n => n!.GetValue<string>() == "shared"))!["identifier"]!.GetValue<string>();
        var peerImage = (await (await _peerAdmin.GetAsync("/api/v1/images")).Json(200)).AsArray()
            .Single(i => i!["names"]!.AsArray().Any(n => n!.GetValue<string>() == there["image"]!.GetValue<string>()) || i["identifier"]?.GetValue<string>() == there["image"]!.GetValue<string>())!;
        Assert.That(peerImage["identifier"]!.GetValue<string>(), Is.EqualTo(identifier), "the peer runs the image of the same Marketplace identifier");
        var address = there["nics"]!.AsArray().FirstOrDefault()?["ip"]?.GetValue<string>();
        var ssh = there["portForwards"]?.AsArray().FirstOrDefault(p => p!["guestPort"]!.GetValue<int>() == 22)?["hostAddress"]?.GetValue<string>();
        Assert.That(running["remoteAddress"]?.GetValue<string>(), Is.EqualTo(ssh ?? address).And.Not.Null, "the address is the one the peer gave: " + there.ToJsonString());
        var peerId = there["id"]!.GetValue<long>();

        var suspend = await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/suspend", null)).Problem(409);
        Assert.That(suspend["detail"]!.GetValue<string>(), Does.Contain("EC2 has no suspend").And.Contain("stop it instead"));

        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/stop", null)).Json(202);
        var stopped = await InstanceApiTests.WaitAsync(_admin, id, "STOPPED", 60);
        Assert.That(stopped["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"), stopped.ToJsonString());
        Assert.That((await (await _peerAdmin.GetAsync($"/api/v1/instances/{peerId}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"));

        await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/start", null)).Json(202);
        var again = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60);
        Assert.That(again["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), again.ToJsonString());
        Assert.That(again["remoteId"]!.GetValue<string>(), Is.EqualTo(remoteId), "the same EC2 instance runs again");
        Assert.That((await (await _peerAdmin.GetAsync($"/api/v1/instances/{peerId}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));

        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        var done = await InstanceApiTests.WaitAsync(_admin, id, "DONE", 30);
        Assert.That(done["state"]!.GetValue<string>(), Is.EqualTo("DONE"), done.ToJsonString());
        Assert.That((await WaitPeerStateAsync(peerId, "DONE"))["state"]!.GetValue<string>(), Is.EqualTo("DONE"), "killing it here terminates it on the EC2 peer");
        var afterwards = await (await _admin.GetAsync("/api/v1/hosts/peer-ec2-run")).Json(200);
        Assert.That(afterwards["pendingRemoteDeletions"]!.AsArray(), Is.Empty, "nothing is owed to a peer that answered");
    }

    [Test, CancelAfter(120_000)]
    public async Task An_image_missing_from_an_ec2_peer_fails_the_launch_with_the_reason_and_nothing_is_made_there()
    {
        await AddEc2PeerAsync("peer-ec2-img");
        var only = TestImages.CreateQcow2(_images, "local-only-ec2", "20M");
        await (await _admin.PostAsJsonAsync("/api/v1/images", new { name = "local-only-ec2", path = only })).Json(201);

        var id = await RunAsync(onPeer: "peer-ec2-img", image: "local-only-ec2");
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "FAILED", 60);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("PROLOG"));
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("is not in the Marketplace of peer cloud peer-ec2-img")
            .And.Contain("manifest-location").And.Contain("register its signed entry there"));
        Assert.That(await InstancesAsync(_peerAdmin), Is.Empty, "nothing was made on the peer");
    }

    [TestCase("stratuslab"), TestCase("ec2"), CancelAfter(180_000)]
    public async Task A_kill_while_the_peer_is_silent_ends_the_instance_here_and_terminates_it_there_when_the_peer_answers_again(string kind)
    {
        await using var relay = new TcpRelay(_peer.BaseAddress.Port);
        var name = "peer-leak-" + kind;
        var added = kind == "ec2"
            ? await AddEc2PeerAsync(name, relay.Port)
            : await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name, driver = "cloud", url = $"http://127.0.0.1:{relay.Port}/", token = _peer.AdminToken })).Json(201);
        Assert.That(added["state"]!.GetValue<string>(), Is.EqualTo("OK"), added.ToJsonString());
        var id = await RunAsync(onPeer: name);
        var running = await InstanceApiTests.WaitAsync(_admin, id, "RUNNING", 60);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        var remoteId = running["remoteId"]!.GetValue<string>();
        var peerId = (await PeerInstanceNamedAsync(running["name"]!.GetValue<string>()))["id"]!.GetValue<long>();

        relay.Cut();
        var unknown = await InstanceApiTests.WaitAsync(_admin, id, "UNKNOWN", 30);
        Assert.That(unknown["state"]!.GetValue<string>(), Is.EqualTo("UNKNOWN"), unknown.ToJsonString());
        await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        var done = await InstanceApiTests.WaitAsync(_admin, id, "DONE", 30);
        Assert.That(done["state"]!.GetValue<string>(), Is.EqualTo("DONE"), "a silent peer does not keep the instance alive here: " + done.ToJsonString());
        var owed = (await (await _admin.GetAsync($"/api/v1/hosts/{name}")).Json(200))["pendingRemoteDeletions"]!.AsArray();
        Assert.That(owed.Select(o => o!["remoteId"]!.GetValue<string>()).ToList(), Is.EqualTo(new[] { remoteId }), "the remote instance is not forgotten: " + owed.ToJsonString());
        Assert.That(owed[0]!["instanceId"]!.GetValue<long>(), Is.EqualTo(id));
        Assert.That(owed[0]!["reason"]!.GetValue<string>(), Does.Contain("killed while the peer"));
        Assert.That((await (await _peerAdmin.GetAsync($"/api/v1/instances/{peerId}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"),
            "the instance still runs on the peer while it is cut off");
        var shown = new StringWriter();
        Assert.That(await StratusLab.Server.Cli.ClientCli.RunAsync(["host-show", name, "--endpoint", _local.BaseAddress.ToString(), "--token", _local.AdminToken], shown, new StringWriter()),
            Is.EqualTo(0));
        Assert.That(shown.ToString(), Does.Contain("1 instance(s) still to terminate there").And.Contain($"{remoteId} (instance {id})"), shown.ToString());
        var refused = await (await _admin.DeleteAsync($"/api/v1/hosts/{name}")).Problem(409);
        Assert.That(refused["detail"]!.GetValue<string>(), Does.Contain("still owed the termination of 1 instance(s)").And.Contain(remoteId).And.Contain("?force=true"));

        relay.Restore();
        var ended = await WaitPeerStateAsync(peerId, "DONE");
        Assert.That(ended["state"]!.GetValue<string>(), Is.EqualTo("DONE"), "the owed termination reached the peer once it answered: " + ended.ToJsonString());
        JsonArray left = [];
        for (var i = 0; i < 20; i++)
        {
            left = (await (await _admin.GetAsync($"/api/v1/hosts/{name}")).Json(200))["pendingRemoteDeletions"]!.AsArray();
            if (left.Count == 0) break;
            await Task.Delay(500);
        }
        Assert.That(left, Is.Empty, "a confirmed termination is no longer owed: " + left.ToJsonString());
    }

    [Test, CancelAfter(180_000)]
    public async Task A_launch_whose_answer_is_lost_is_found_by_its_client_token_and_terminated_on_the_ec2_peer_when_it_answers_again()
    {
        await using var relay = new TcpRelay(_peer.BaseAddress.Port);
        var added = await AddEc2PeerAsync("peer-lost", relay.Port);
        Assert.That(added["state"]!.GetValue<string>(), Is.EqualTo("OK"), added.ToJsonString());
        // The peer launches the instance, and goes silent before its RunInstances answer gets back.
        relay.LoseAnswerTo = "Action=RunInstances";
        var id = await RunAsync(onPeer: "peer-lost");
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "FAILED", 60);
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("does not answer"));
        Assert.That(relay.AnswersLost, Is.EqualTo(1), "the answer to RunInstances was lost");
        var there = await PeerInstanceNamedAsync(failed["name"]!.GetValue<string>());
        Assert.That(there["state"]!.GetValue<string>(), Is.Not.EqualTo("DONE"), "the peer did launch it: " + there.ToJsonString());
        var owed = (await (await _admin.GetAsync("/api/v1/hosts/peer-lost")).Json(200))["pendingRemoteDeletions"]!.AsArray();
        Assert.That(owed, Has.Count.EqualTo(1), owed.ToJsonString());
        Assert.That(owed[0]!["remoteId"]!.GetValue<string>(), Does.StartWith("client-token:stratuslab-" + id + "-"), "owed by the launch's client token, as no i- id came back");
        Assert.That(owed[0]!["reason"]!.GetValue<string>(), Does.Contain("its launch got no answer"));

        relay.LoseAnswerTo = null;
        relay.Restore();
        Assert.That((await WaitPeerStateAsync(there["id"]!.GetValue<long>(), "DONE"))["state"]!.GetValue<string>(), Is.EqualTo("DONE"),
            "found by its client token (DescribeInstances filter client-token) and terminated once the peer answered");
        JsonArray left = [];
        for (var i = 0; i < 20; i++)
        {
            left = (await (await _admin.GetAsync("/api/v1/hosts/peer-lost")).Json(200))["pendingRemoteDeletions"]!.AsArray();
            if (left.Count == 0) break;
            await Task.Delay(500);
        }
        Assert.That(left, Is.Empty, left.ToJsonString());
    }

    [Test, CancelAfter(60_000)]
    public async Task Peer_cloud_hosts_refuse_bad_input_with_the_field()
    {
        var noToken = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "p", driver = "cloud", url = _peer.BaseAddress.ToString() })).Problem(400);
        Assert.That(noToken.ToJsonString(), Does.Contain("token"));
        var badUrl = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "p", driver = "cloud", url = "ftp://x/", token = "t" })).Problem(400);
        Assert.That(badUrl["detail"]!.GetValue<string>(), Does.Contain("http(s) URL"));
        var badKind = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "p", driver = "cloud", url = _peer.BaseAddress.ToString(), kind = "azure", token = "t" })).Problem(400);
        Assert.That(badKind["detail"]!.GetValue<string>(), Does.Contain("stratuslab").And.Contain("ec2"));
        var urlOnSim = await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name = "p", driver = "simulated", cpus = 1, memoryMiB = 512, url = "http://x/" })).Problem(400);
        Assert.That(urlOnSim["detail"]!.GetValue<string>(), Does.Contain("driver 'cloud' only"));
        Assert.That((await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().Select(h => h!["name"]!.GetValue<string>()), Does.Not.Contain("p"));
    }
}
