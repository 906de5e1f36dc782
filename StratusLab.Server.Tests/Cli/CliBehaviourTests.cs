using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Cli;

/// <summary>The CLI's behaviour against a real in-process server (simulated VMs): globals anywhere, waits, prefixes, errors, login.</summary>
[NonParallelizable]
public class CliBehaviourTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await TestImages.RegisterDefaultAsync(_server);
    }

    [OneTimeTearDown] public async Task Stop() => await _server.DisposeAsync();

    async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ClientCli.RunAsync(["--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken, .. args], output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public async Task Global_options_go_before_after_or_between_the_command_words()
    {
        var before = await Run("describe-instance-types", "--json");
        Assert.That(before.Code, Is.Zero, before.Err);
        var after = new StringWriter();
        Assert.That(await ClientCli.RunAsync(["describe-instance-types", "--token", _server.AdminToken, "--json", "--endpoint", _server.BaseAddress.ToString()], after, new StringWriter()), Is.Zero);
        Assert.That(after.ToString(), Is.EqualTo(before.Out));
        Assert.That(JsonNode.Parse(before.Out)!.AsArray().Select(t => t!["name"]!.GetValue<string>()), Does.Contain("m1.small"));
    }

    // Simulated guests run no agent, so they reach RUNNING but never report ready: --wait shows the way there, then times out.
    [Test, CancelAfter(90_000)]
    public async Task Run_instance_wait_shows_each_state_from_the_event_stream_and_json_stays_clean()
    {
        var human = await Run("run-instance", "--name", "watched", "--wait", "--timeout", "6");
        var lines = human.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains("instance ") && l.Contains("watched")).ToList();
        Assert.That(lines[0], Does.Contain("watched: PENDING"), "the state at launch first");
        Assert.That(lines, Has.Some.Contains("watched: RUNNING"), "then the changes as they come");
        Assert.That(lines.Select(l => l[(l.IndexOf(": ") + 2)..]), Is.Unique, "each state once");
        Assert.That(human.Code, Is.EqualTo(1), "not ready within --timeout");
        Assert.That(human.Err, Does.Contain("timed out before every instance was ready"));
        Assert.That(human.Out, Does.Contain("watched").And.Contain("RUNNING"), "the instance as it is at the end");

        var json = await Run("run-instance", "--name", "watched-json", "-w", "--timeout", "4", "--json");
        var view = JsonNode.Parse(json.Out)!;
        Assert.That(view["name"]!.GetValue<string>(), Is.EqualTo("watched-json"), "stdout is the instance's JSON and nothing else");
        Assert.That(view["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        Assert.That(json.Err, Does.Not.Contain("PENDING"), "--json: no progress lines");
    }

    [Test, CancelAfter(90_000)]
    public async Task Done_instances_are_hidden_unless_all_is_asked()
    {
        var run = await Run("run-instance", "--name", "ended-one", "--json");
        var id = JsonNode.Parse(run.Out)!["id"]!.GetValue<long>();
        for (var i = 0; i < 150 && !(await Run("describe-instance", id.ToString(), "--json")).Out.Contains("\"RUNNING\""); i++) await Task.Delay(200);
        Assert.That((await Run("kill-instance", id.ToString())).Code, Is.Zero);
        for (var i = 0; i < 150 && !(await Run("describe-instance", id.ToString(), "--json")).Out.Contains("\"DONE\""); i++) await Task.Delay(200);
        var listed = await Run("describe-instance");
        Assert.That(listed.Out, Does.Not.Contain("ended-one"));
        var all = await Run("describe-instance", "--all");
        Assert.That(all.Out, Does.Contain("ended-one").And.Contain("DONE"));
        var byId = await Run("describe-instance", id.ToString());
        Assert.That(byId.Out, Does.Contain("ended-one"), "asked by ID, it is shown");
    }

    [Test, CancelAfter(120_000)]
    public async Task Volumes_are_named_by_unique_prefix_and_ambiguous_ones_list_the_candidates()
    {
        var uuids = new List<string>();
        string? shared = null;
        // Pigeonhole: among 17 UUIDs two share their first hex digit.
        for (var i = 0; i < 17 && shared is null; i++)
        {
            var created = await Run("create-volume", "-s", "1", "--tag", "prefix-test", "--json");
            Assert.That(created.Code, Is.Zero, created.Err);
            var uuid = JsonNode.Parse(created.Out)!["uuid"]!.GetValue<string>();
            shared = uuids.FirstOrDefault(u => u[0] == uuid[0]) is { } twin ? CommonPrefix(twin, uuid) : null;
            uuids.Add(uuid);
        }
        Assert.That(shared, Is.Not.Null);
        var all = JsonNode.Parse((await Run("describe-volumes", "--json")).Out)!.AsArray().Select(v => v!["uuid"]!.GetValue<string>()).ToList();
        var ambiguous = await Run("describe-volumes", shared!);
        Assert.That(ambiguous.Code, Is.EqualTo(2), ambiguous.Err);
        Assert.That(ambiguous.Err, Does.Contain($"'{shared}' starts").And.Contain("give more characters"));
        foreach (var u in all.Where(u => u.StartsWith(shared!)).Take(5)) Assert.That(ambiguous.Err, Does.Contain(u));

        var target = uuids[^1];
        var unique = Enumerable.Range(1, 36).Select(n => target[..n]).First(p => all.Count(u => u.StartsWith(p)) == 1);
        var described = await Run("describe-volumes", unique, "--json");
        Assert.That(described.Code, Is.Zero, described.Err);
        Assert.That(JsonNode.Parse(described.Out)!["uuid"]!.GetValue<string>(), Is.EqualTo(target));
        var table = await Run("describe-volumes", unique);
        Assert.That(table.Out, Does.Contain("1G"));

        var none = await Run("delete-volume", "ffffffff-ffff");
        Assert.That(none.Err, Does.Contain("no volume you can see"));
        foreach (var u in uuids) await Run("delete-volume", u);
    }

    static string CommonPrefix(string a, string b) => new(a.Zip(b).TakeWhile(p => p.First == p.Second).Select(p => p.First).ToArray());

    [Test]
    public async Task Server_refusals_name_the_flags_not_the_api_fields()
    {
        var memory = await Run("run-instance", "--memory", "100000");
        Assert.That(memory.Code, Is.EqualTo(1), memory.Err);
        Assert.That(memory.Err, Does.Contain("--memory").And.Not.Contain("memoryMiB").And.Not.Contain("(400)"));
        var size = await Run("create-volume", "-s", "99999");
        Assert.That(size.Code, Is.EqualTo(1), size.Err);
        Assert.That(size.Err, Does.Contain("--size").And.Not.Contain("'size'"));
    }

    [Test]
    public async Task Login_exchanges_a_password_for_a_token_and_stores_it()
    {
        var config = TempDir.Create("cli-login");
        var previousConfig = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        var previousIn = Console.In;
        try
        {
            var name = "login" + Guid.NewGuid().ToString("N")[..6];
            Assert.That((await Run("user-add", name, "--password", "long-enough-1")).Code, Is.Zero);
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", config);

            Console.SetIn(new StringReader("wrong-password\n"));
            var wrong = new StringWriter();
            Assert.That(await ClientCli.RunAsync(["login", "--endpoint", _server.BaseAddress.ToString(), "--username", name, "--password-stdin"], new StringWriter(), wrong), Is.EqualTo(1));
            Assert.That(wrong.ToString(), Does.Contain("wrong user name or password"));
            Assert.That(File.Exists(Path.Combine(config, "stratuslab", "client.json")), Is.False, "nothing stored on failure");

            Console.SetIn(new StringReader("long-enough-1\n"));
            var output = new StringWriter();
            var error = new StringWriter();
            Assert.That(await ClientCli.RunAsync(["login", "--endpoint", _server.BaseAddress.ToString(), "--username", name, "--password-stdin"], output, error), Is.Zero, error.ToString());
            var path = Path.Combine(config, "stratuslab", "client.json");
            Assert.That(output.ToString(), Does.Contain($"logged in to {_server.BaseAddress} as {name}").And.Contain(path));
            var stored = JsonNode.Parse(File.ReadAllText(path))!;
            Assert.That(stored["endpoint"]!.GetValue<string>(), Is.EqualTo(_server.BaseAddress.ToString()));
            Assert.That(File.GetUnixFileMode(path), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));

            // No --endpoint, no --token: the stored ones are used, as that user.
            var users = new StringWriter();
            Assert.That(await ClientCli.RunAsync(["user-list", "--json"], users, new StringWriter()), Is.Zero);
            Assert.That(JsonNode.Parse(users.ToString())!.AsArray().Select(u => u!["name"]!.GetValue<string>()), Is.EqualTo(new[] { name }), "a user sees only themselves");
        }
        finally
        {
            Console.SetIn(previousIn);
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", previousConfig);
            TempDir.Delete(config);
        }
    }

    [Test]
    public async Task Without_a_token_the_error_names_STRATUSLAB_DATA_and_the_admin_token_path()
    {
        var config = TempDir.Create("cli-notoken");
        var previous = (Environment.GetEnvironmentVariable("XDG_CONFIG_HOME"), Environment.GetEnvironmentVariable("STRATUSLAB_DATA"), Environment.GetEnvironmentVariable("STRATUSLAB_TOKEN"));
        try
        {
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", config);
            Environment.SetEnvironmentVariable("STRATUSLAB_DATA", Path.Combine(config, "no-data"));
            Environment.SetEnvironmentVariable("STRATUSLAB_TOKEN", null);
            var error = new StringWriter();
            Assert.That(await ClientCli.RunAsync(["user-list", "--endpoint", _server.BaseAddress.ToString()], new StringWriter(), error), Is.EqualTo(1));
            Assert.That(error.ToString(), Does.Contain("STRATUSLAB_DATA").And.Contain(Path.Combine(config, "no-data", "admin.token")).And.Contain("stratuslab login"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", previous.Item1);
            Environment.SetEnvironmentVariable("STRATUSLAB_DATA", previous.Item2);
            Environment.SetEnvironmentVariable("STRATUSLAB_TOKEN", previous.Item3);
            TempDir.Delete(config);
        }
    }
}
