using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>Cloud-init requests and key pairs over HTTP (simulated driver, real context media).</summary>
public class CloudInitRequestTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    const string KeyA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0jZ2Wc6vYp6hJqkF1bUQp3m6w1kq2a8V9n3i0xRmH a@host";
    const string KeyB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7kq2a8V9n3i0xRmHGq0jZ2Wc6vYp6hJqkF1bUQp3m6 b@host";

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:SimulatedMedia"] = "true",
            ["Compute:BootTimeoutSeconds"] = "30",
        });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    async Task<HttpClient> UserAsync(string prefix) => _server.Client(await _server.CreateUserAsync(Unique(prefix)));

    [Test]
    public async Task User_data_over_64_KiB_is_refused_with_400_naming_the_size()
    {
        using var http = await UserAsync("ud");
        var problem = await (await http.PostAsJsonAsync("/api/v1/instances", new { userData = "#!/bin/sh\n" + new string('x', 70_000) })).Problem(400);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("64 KiB"));
        Assert.That((await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Is.Empty, "nothing was created");
    }

    [Test]
    public async Task Declared_cloud_config_that_does_not_parse_is_refused_with_400()
    {
        using var http = await UserAsync("cc");
        var problem = await (await http.PostAsJsonAsync("/api/v1/instances", new { userData = "#cloud-config\nruncmd: [\"unclosed\n  - {\n" })).Problem(400);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("not valid YAML"));
    }

    [Test]
    public async Task An_unknown_key_name_is_refused_with_400_naming_it()
    {
        using var http = await UserAsync("kn");
        var problem = await (await http.PostAsJsonAsync("/api/v1/instances", new { keyName = "no-such-key" })).Problem(400);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("'no-such-key'").And.Contain("key-import"));
    }

    [TestCase("contextMethod", "cloudstack")]
    [TestCase("hostname", "bad_host!")]
    [TestCase("hostname", "-leading")]
    public async Task Bad_cloud_init_fields_are_refused_with_400(string field, string value)
    {
        using var http = await UserAsync("bf");
        var body = new JsonObject { [field] = value };
        var problem = await (await http.PostAsync("/api/v1/instances", Http.RawJson(body.ToJsonString()))).Problem(400);
        Assert.That(problem.ToJsonString(), Does.Contain(field));
    }

    [Test]
    public async Task Key_pairs_are_imported_listed_made_default_and_deleted_and_stay_private()
    {
        using var http = await UserAsync("keys");
        var first = await (await http.PostAsJsonAsync("/api/v1/keys", new { name = "laptop", publicKey = KeyA + "\n" })).Json(201);
        Assert.That(first["isDefault"]!.GetValue<bool>(), Is.True, "the first key is the default");
        Assert.That(first["fingerprint"]!.GetValue<string>(), Does.StartWith("SHA256:"));
        var second = await (await http.PostAsJsonAsync("/api/v1/keys", new { name = "ci", publicKey = KeyB })).Json(201);
        Assert.That(second["isDefault"]!.GetValue<bool>(), Is.False);
        await (await http.PostAsJsonAsync("/api/v1/keys", new { name = "LAPTOP", publicKey = KeyB })).Problem(409);
        var bad = await (await http.PostAsJsonAsync("/api/v1/keys", new { name = "bad", publicKey = "-----BEGIN OPENSSH PRIVATE KEY-----" })).Problem(400);
        Assert.That(bad["detail"]!.GetValue<string>(), Does.Contain("not an OpenSSH public key"));
        var mismatched = await (await http.PostAsJsonAsync("/api/v1/keys", new { name = "bad", publicKey = "ssh-rsa " + KeyA.Split(' ')[1] })).Problem(400);
        Assert.That(mismatched["detail"]!.GetValue<string>(), Does.Contain("not a ssh-rsa key"));

        await (await http.PostAsync("/api/v1/keys/ci/default", null)).Json(200);
        var list = (await (await http.GetAsync("/api/v1/keys")).Json(200)).AsArray();
        Assert.That(list.Select(k => $"{k!["name"]}:{k["isDefault"]}"), Is.EqualTo(new[] { "ci:true", "laptop:false" }));

        using var other = await UserAsync("other");
        await (await other.GetAsync("/api/v1/keys/ci")).Problem(404);
        await (await other.DeleteAsync("/api/v1/keys/ci")).Problem(404);
        Assert.That((await (await other.GetAsync("/api/v1/keys")).Json(200)).AsArray(), Is.Empty);

        Assert.That((int)(await http.DeleteAsync("/api/v1/keys/ci")).StatusCode, Is.EqualTo(204));
        var after = (await (await http.GetAsync("/api/v1/keys")).Json(200)).AsArray();
        Assert.That(after.Select(k => $"{k!["name"]}:{k["isDefault"]}"), Is.EqualTo(new[] { "laptop:true" }), "the remaining key became the default");
        await (await http.DeleteAsync("/api/v1/keys/ci")).Problem(404);
    }

    [Test, CancelAfter(120_000)]
    public async Task A_launch_gets_the_named_or_default_key_a_unique_instance_id_and_becomes_ready_by_phone_home()
    {
        using var http = await UserAsync("launch");
        await (await http.PostAsJsonAsync("/api/v1/keys", new { name = "main", publicKey = KeyA })).Json(201);
        await (await http.PostAsJsonAsync("/api/v1/keys", new { name = "spare", publicKey = KeyB })).Json(201);

        var byDefault = await InstanceApiTests.CreateAsync(http, new { name = "one", contextMethod = "nocloud", hostname = "web-1", userData = "#cloud-config\nruncmd:\n  - touch /marker\n" });
        var named = await InstanceApiTests.CreateAsync(http, new { name = "two", keyName = "SPARE" });
        Assert.That(byDefault["keyName"]!.GetValue<string>(), Is.EqualTo("main"));
        Assert.That(named["keyName"]!.GetValue<string>(), Is.EqualTo("spare"));
        Assert.That(byDefault["contextMethod"]!.GetValue<string>(), Is.EqualTo("nocloud"));
        Assert.That(named["contextMethod"]!.GetValue<string>(), Is.EqualTo("opennebula"));
        Assert.That(byDefault["hostname"]!.GetValue<string>(), Is.EqualTo("web-1"));
        var uid1 = byDefault["instanceUid"]!.GetValue<string>();
        var uid2 = named["instanceUid"]!.GetValue<string>();
        Assert.That(uid1, Does.Match("^i-[0-9a-f]{16}$"));
        Assert.That(uid1, Is.Not.EqualTo(uid2));

        var id = byDefault["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(http, id, "RUNNING", 60);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        Assert.That(running["ready"]!.GetValue<bool>(), Is.False);

        // The seed on the instance's CD, read back from the ISO as the guest would.
        var iso = Path.Combine(_server.DataDir, "instances", id.ToString(), "context.iso");
        var meta = await IsoFileAsync(iso, "/meta-data");
        Assert.That(meta, Does.Contain($"\"instance-id\": \"{uid1}\"").And.Contain("\"local-hostname\": \"web-1\"").And.Contain(KeyA));
        Assert.That(await IsoFileAsync(iso, "/user-data"), Is.EqualTo("#cloud-config\nruncmd:\n  - touch /marker\n"));
        var vendor = await IsoFileAsync(iso, "/vendor-data");
        var url = System.Text.RegularExpressions.Regex.Match(vendor, "\"url\": \"([^\"]+)\"").Groups[1].Value;
        Assert.That(url, Does.Contain("/guest/v1/phone-home/slg_"));

        // cloud-init's phone_home posts a form to that URL (the host part is the guest's view of the server).
        using var anonymous = _server.Client(null);
        var path = new Uri(url).AbsolutePath;
        await (await anonymous.PostAsync(path + "x", new FormUrlEncodedContent([new("instance_id", uid1)]))).Problem(401);
        var phoned = await anonymous.PostAsync(path, new FormUrlEncodedContent([new("instance_id", uid1), new("hostname", "web-1")]));
        Assert.That((int)phoned.StatusCode, Is.EqualTo(204), await phoned.Content.ReadAsStringAsync());
        var ready = await InstanceApiTests.WaitAsync(http, id, "ready", 30);
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True);
        Assert.That(ready["readySource"]!.GetValue<string>(), Is.EqualTo("phone-home"));
        Assert.That(ready["readyAt"], Is.Not.Null);

        // The OpenNebula instance's context.sh carries its own id and the named key.
        var namedId = named["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(http, namedId, "RUNNING", 60);
        var script = await IsoFileAsync(Path.Combine(_server.DataDir, "instances", namedId.ToString(), "context.iso"), "/context.sh");
        Assert.That(script, Does.Contain($"VMID='{uid2}'").And.Contain($"SSH_PUBLIC_KEY='{KeyB}'").And.Contain("NETWORK='YES'"));
    }

    [Test, CancelAfter(120_000)]
    public async Task A_ready_port_marks_the_instance_ready_only_once_its_service_answers_through_the_pat_forward()
    {
        using var http = await UserAsync("port");
        await (await http.PostAsJsonAsync("/api/v1/instances", new { readyPort = 0 })).Problem(400);
        var created = await InstanceApiTests.CreateAsync(http, new { name = "svc", readyPort = 8080, forwardPorts = new[] { 8080 } });
        Assert.That(created["readyPort"]!.GetValue<int>(), Is.EqualTo(8080));
        var id = created["id"]!.GetValue<long>();
        var running = await InstanceApiTests.WaitAsync(http, id, "RUNNING", 60);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
        var forward = running["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 8080)!;
        var hostPort = forward["hostPort"]!.GetValue<int>();

        // A simulated VM has no QEMU holding its PAT port: the test plays the forward. First a forward that accepts but
        // whose service says nothing (QEMU accepts on the guest's behalf even when nothing listens inside): not ready.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, hostPort);
        listener.Start();
        var answer = false;
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            var held = new List<System.Net.Sockets.TcpClient>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var client = await listener.AcceptTcpClientAsync(stop.Token);
                    held.Add(client);
                    if (!Volatile.Read(ref answer)) continue;
                    var stream = client.GetStream();
                    var buffer = new byte[64];
                    // An HTTP-like service: it answers once it was sent something (the probe's blank line).
                    _ = await stream.ReadAsync(buffer, stop.Token);
                    await stream.WriteAsync("HTTP/1.0 200 OK\r\n\r\n"u8.ToArray(), stop.Token);
                }
            }
            catch (OperationCanceledException) { }
            finally { foreach (var c in held) c.Dispose(); }
        });
        try
        {
            // Three probe passes (2 s apart, each waiting up to 3 s for an answer).
            await Task.Delay(TimeSpan.FromSeconds(10));
            var silent = await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200);
            Assert.That(silent["ready"]!.GetValue<bool>(), Is.False, "an accepted connection with no answer is not a service: " + silent.ToJsonString());

            Volatile.Write(ref answer, true);
            var ready = await InstanceApiTests.WaitAsync(http, id, "ready", 30);
            Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, ready.ToJsonString());
            Assert.That(ready["readySource"]!.GetValue<string>(), Is.EqualTo("port"));
            Assert.That(ready["readyAt"], Is.Not.Null);
        }
        finally
        {
            stop.Cancel();
            listener.Stop();
            await serving;
            await http.DeleteAsync($"/api/v1/instances/{id}");
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task The_guest_token_opens_only_its_own_instances_guest_api_and_dies_with_the_instance()
    {
        using var http = await UserAsync("gtok");
        var id = (await InstanceApiTests.CreateAsync(http, new { name = "tok" }))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "RUNNING", 60))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        var script = await IsoFileAsync(Path.Combine(_server.DataDir, "instances", id.ToString(), "context.iso"), "/context.sh");
        var token = System.Text.RegularExpressions.Regex.Match(script, "STRATUSLAB_TOKEN='([^']+)'").Groups[1].Value;
        Assert.That(token, Does.StartWith("slg_"), script);

        using var guest = _server.Client(token);
        Assert.That((int)(await guest.GetAsync("/guest/v1/context")).StatusCode, Is.EqualTo(200), "the token reads its own context");
        foreach (var path in new[] { "/api/v1/instances", $"/api/v1/instances/{id}", $"/api/v1/instances/{id}/console", "/api/v1/keys", "/api/v1/images" })
            Assert.That((int)(await guest.GetAsync(path)).StatusCode, Is.EqualTo(401), $"GET {path} with the guest token");
        Assert.That((int)(await guest.PostAsJsonAsync("/api/v1/instances", new { name = "from-inside" })).StatusCode, Is.EqualTo(401));
        Assert.That((int)(await guest.DeleteAsync($"/api/v1/instances/{id}")).StatusCode, Is.EqualTo(401));

        await (await http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "DONE", 60))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        Assert.That((int)(await guest.GetAsync("/guest/v1/context")).StatusCode, Is.EqualTo(401), "the token died with its instance");
        Assert.That((int)(await guest.PutAsync("/guest/v1/ready", null)).StatusCode, Is.EqualTo(401));
    }

    static async Task<string> IsoFileAsync(string iso, string path)
    {
        var psi = new ProcessStartInfo("isoinfo", ["-R", "-i", iso, "-x", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        Assert.That(process.WaitForExit(10_000), Is.True, "isoinfo timed out");
        Assert.That(process.ExitCode, Is.EqualTo(0), await process.StandardError.ReadToEndAsync());
        return output;
    }
}
