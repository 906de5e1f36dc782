using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Cli;

/// <summary>Key pairs, user data and connect-instance from the command line, against a real in-process server (simulated VMs).</summary>
public class KeyAndConnectCliTests
{
    TestServer _server = null!;
    string _dir = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        // Simulated VMs hold no PAT port unless asked: connect-instance needs one to build its ssh command.
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Networking:SimulatedPorts"] = "true" });
        await TestImages.RegisterDefaultAsync(_server);
        _dir = TempDir.Create("cli-keys");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _server.DisposeAsync();
        TempDir.Delete(_dir);
    }

    // The endpoint and token go first, so that everything after '--' stays the remote command.
    async Task<(int Code, string Out, string Err)> RunAsync(string command, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ClientCli.RunAsync([command, "--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken, .. args], output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Test, CancelAfter(60_000)]
    public async Task Keys_are_imported_listed_used_by_name_and_deleted()
    {
        var (_, publicKey) = await HostTools.SshKeyAsync(_dir);
        var pub = Path.Combine(_dir, "id_ed25519.pub");
        var imported = await RunAsync("key-import", "cli-key", pub);
        Assert.That(imported.Code, Is.EqualTo(0), imported.Err);
        Assert.That(imported.Out, Does.Contain("imported key cli-key SHA256:"));
        var list = await RunAsync("describe-keys", "--json");
        Assert.That(JsonNode.Parse(list.Out)!.AsArray().Select(k => k!["publicKey"]!.GetValue<string>()), Does.Contain(publicKey));

        var userData = Path.Combine(_dir, "user-data.yaml");
        await File.WriteAllTextAsync(userData, "#cloud-config\nruncmd:\n  - echo hi\n");
        var run = await RunAsync("run-instance", "--key-name", "cli-key", "--user-data", userData, "--hostname", "cli-host", "--context-method", "nocloud", "--json");
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        var instance = JsonNode.Parse(run.Out)!;
        Assert.That(instance["keyName"]!.GetValue<string>(), Is.EqualTo("cli-key"));
        Assert.That(instance["hostname"]!.GetValue<string>(), Is.EqualTo("cli-host"));
        Assert.That(instance["contextMethod"]!.GetValue<string>(), Is.EqualTo("nocloud"));

        var missing = await RunAsync("run-instance", "--user-data", Path.Combine(_dir, "nope.yaml"));
        Assert.That(missing.Code, Is.EqualTo(2));
        Assert.That(missing.Err, Does.Contain("--user-data"));
        var unknown = await RunAsync("run-instance", "--key-name", "no-such-key");
        Assert.That(unknown.Code, Is.Not.EqualTo(0));
        Assert.That(unknown.Err, Does.Contain("no-such-key"));

        Assert.That((await RunAsync("delete-key", "cli-key")).Code, Is.EqualTo(0));
        var again = await RunAsync("delete-key", "cli-key");
        Assert.That(again.Code, Is.Not.EqualTo(0));
        Assert.That(again.Err, Does.Contain("cli-key"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Connect_instance_takes_a_user_and_runs_a_remote_command_returning_its_exit_code()
    {
        var run = await RunAsync("run-instance", "--json");
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        var id = JsonNode.Parse(run.Out)!["id"]!.ToString();
        // A simulated guest never reports ready; its forwarded ports exist once it is RUNNING.
        using (var http = _server.Client())
            Assert.That((await Modules.Compute.InstanceApiTests.WaitAsync(http, long.Parse(id), "RUNNING", 30))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));

        var asRoot = await RunAsync("connect-instance", id, "--json");
        Assert.That(asRoot.Code, Is.EqualTo(0), asRoot.Err);
        Assert.That(JsonNode.Parse(asRoot.Out)!["command"]!.AsArray().Select(a => a!.GetValue<string>()), Does.Contain("root@127.0.0.1"));
        var asDebian = await RunAsync("connect-instance", id, "-u", "debian", "--json");
        Assert.That(JsonNode.Parse(asDebian.Out)!["command"]!.AsArray().Select(a => a!.GetValue<string>()), Does.Contain("debian@127.0.0.1"));

        // A simulated VM has no SSH server behind its forwarded port: ssh itself fails (255), and that code comes back;
        // '-a' belongs to the remote command, not to connect-instance.
        var remote = await RunAsync("connect-instance", id, "--user", "debian", "--", "uname", "-a");
        Assert.That(remote.Err, Does.Not.Contain("unknown option"));
        Assert.That(remote.Code, Is.EqualTo(255));
    }

    [Test, CancelAfter(90_000)]
    public async Task Console_log_prints_the_log_its_tail_and_follows_it_until_the_instance_ends()
    {
        var run = await RunAsync("run-instance", "--name", "cli-console", "--json");
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        var id = JsonNode.Parse(run.Out)!["id"]!.GetValue<long>();
        using var http = _server.Client();
        Assert.That((await Modules.Compute.InstanceApiTests.WaitAsync(http, id, "RUNNING", 30))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));

        var all = await RunAsync("console-log", id.ToString());
        Assert.That(all.Code, Is.EqualTo(0), all.Err);
        Assert.That(all.Out, Does.Contain("cli-console booted"));
        var tail = await RunAsync("console-log", id.ToString(), "--tail", "1");
        Assert.That(tail.Code, Is.EqualTo(0), tail.Err);
        Assert.That(tail.Out.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), "--tail 1 prints one line: " + tail.Out);
        Assert.That(all.Out.TrimEnd('\n'), Does.EndWith(tail.Out.TrimEnd('\n')), "and it is the newest");
        var bad = await RunAsync("console-log", id.ToString(), "--tail", "ten");
        Assert.That(bad.Code, Is.Not.EqualTo(0));
        Assert.That(bad.Err, Does.Contain("tail"));
        var missing = await RunAsync("console-log", "999999");
        Assert.That(missing.Code, Is.EqualTo(1));
        Assert.That(missing.Err, Does.Contain("999999"));

        // --follow keeps printing until the instance ends, then returns on its own.
        var follow = RunAsync("console-log", id.ToString(), "--follow");
        await Task.Delay(1500);
        Assert.That(follow.IsCompleted, Is.False, "--follow waits for more lines while the instance runs");
        Assert.That((await RunAsync("kill-instance", id.ToString())).Code, Is.EqualTo(0));
        var followed = await follow.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.That(followed.Code, Is.EqualTo(0), followed.Err);
        Assert.That(followed.Out, Does.Contain("cli-console booted").And.Contain("killed"), "the lines before and the ones written as it ended");
    }

    [Test, CancelAfter(90_000)]
    public async Task A_launch_that_gets_no_key_warns_and_says_how_to_make_one()
    {
        // A separate process, with a HOME that has no ~/.ssh, as a user with no stored key pair.
        var home = TempDir.Create("cli-home");
        try
        {
            var token = await _server.CreateUserAsync("nokey" + Guid.NewGuid().ToString("N")[..6]);
            var environment = new Dictionary<string, string?> { ["HOME"] = home, ["XDG_CONFIG_HOME"] = null, ["STRATUSLAB_TOKEN"] = null, ["STRATUSLAB_ENDPOINT"] = null };
            async Task<(int Exit, string Out, string Err)> Cli(params string[] args) => await HostTools.RunAsync("dotnet",
                [Platform.ServerProcessTests.BinaryPath(), .. args, "--endpoint", _server.BaseAddress.ToString(), "--token", token], TimeSpan.FromSeconds(60), environment);

            var bare = await Cli("run-instance", "--name", "keyless");
            Assert.That(bare.Exit, Is.EqualTo(0), bare.Err);
            Assert.That(bare.Err, Does.Contain("warning: this instance gets no SSH key").And.Contain("ssh-keygen").And.Contain("key-import"));

            var (_, publicKey) = await HostTools.SshKeyAsync(home);
            var imported = await Cli("key-import", "default", Path.Combine(home, "id_ed25519.pub"));
            Assert.That(imported.Exit, Is.EqualTo(0), imported.Err);
            var keyed = await Cli("run-instance", "--name", "keyed", "--json");
            Assert.That(keyed.Exit, Is.EqualTo(0), keyed.Err);
            Assert.That(keyed.Err, Does.Not.Contain("warning"), "the default key pair is used, so no warning");
            Assert.That(JsonNode.Parse(keyed.Out)!["keyName"]!.GetValue<string>(), Is.EqualTo("default"));
            Assert.That(publicKey, Does.StartWith("ssh-ed25519 "));
        }
        finally
        {
            TempDir.Delete(home);
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task Image_register_takes_what_the_image_needs_and_launches_follow_it()
    {
        var path = TestImages.CreateQcow2(Path.Combine(_server.DataDir, "cli-req"), "cli-req", "8M");
        var name = "cli-req-" + Guid.NewGuid().ToString("N")[..6];
        var registered = await RunAsync("image-register", name, path, "--min-memory", "512", "--min-cpu", "1", "--min-disk", "1",
            "--default-user", "debian", "--context-method", "nocloud", "--os", "debian", "--json");
        Assert.That(registered.Code, Is.EqualTo(0), registered.Err);
        var needs = JsonNode.Parse(registered.Out)!["requirements"]!;
        Assert.That(needs.ToJsonString(), Does.Contain("\"minMemoryMiB\":512").And.Contain("\"minCpu\":1").And.Contain("\"minDiskGiB\":1")
            .And.Contain("\"defaultUser\":\"debian\"").And.Contain("\"contextMethod\":\"nocloud\"").And.Contain("\"os\":\"debian\""));

        var small = await RunAsync("run-instance", name, "--type", "t1.tiny");
        Assert.That(small.Code, Is.EqualTo(1));
        Assert.That(small.Err, Does.Contain("128 MiB").And.Contain("512 MiB"));
        var run = await RunAsync("run-instance", name, "--json");
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        var instance = JsonNode.Parse(run.Out)!;
        Assert.That(instance["memoryMiB"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(512));
        Assert.That(instance["loginUser"]!.GetValue<string>(), Is.EqualTo("debian"));
        Assert.That(instance["contextMethod"]!.GetValue<string>(), Is.EqualTo("nocloud"));
        var bad = await RunAsync("image-register", name + "-x", path, "--context-method", "cloudstack");
        Assert.That(bad.Code, Is.Not.EqualTo(0));
        Assert.That(bad.Err, Does.Contain("cloudstack"));
        Assert.That((await RunAsync("kill-instance", instance["id"]!.ToString())).Code, Is.EqualTo(0));
    }

    [Test]
    public void The_ssh_command_uses_the_image_login_user_unless_one_is_given()
    {
        var instance = JsonNode.Parse("""{"portForwards":[{"guestPort":22,"hostAddress":"127.0.0.1","hostPort":15022}],"loginUser":"debian"}""")!;
        var command = ComputeCommands.SshCommand(instance, null, "/k", ["uname", "-a"])!;
        Assert.That(string.Join(' ', command), Does.Contain("-p 15022").And.Contain("-i /k").And.EndWith("debian@127.0.0.1 -- uname -a"));
        Assert.That(ComputeCommands.SshCommand(instance, "alma", null, [])!.Last(), Is.EqualTo("alma@127.0.0.1"));
        Assert.That(ComputeCommands.SshCommand(JsonNode.Parse("""{"portForwards":[]}""")!, null, null, []), Is.Null);
    }
}
