using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Cli;

/// <summary>The client commands against a real (in-process) server.</summary>
public class ClientCliTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync();
        await TestImages.RegisterDefaultAsync(_server);
    }

    [OneTimeTearDown] public async Task Stop() => await _server.DisposeAsync();

    async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ClientCli.RunAsync([.. args, "--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken], output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public async Task Without_arguments_the_commands_are_listed()
    {
        var output = new StringWriter();
        Assert.That(await ClientCli.RunAsync([], output, new StringWriter()), Is.EqualTo(0));
        Assert.That(output.ToString(), Does.Contain("run-instance").And.Contain("user-add").And.Contain("describe-hosts").And.Contain("create-volume"));
    }

    [Test]
    public async Task Users_tokens_and_quotas_work_from_the_command_line()
    {
        var name = "cli" + Guid.NewGuid().ToString("N")[..6];
        Assert.That((await RunAsync("user-add", name, "--password", "long-enough-1")).Code, Is.EqualTo(0));
        var list = await RunAsync("user-list", "--json");
        Assert.That(JsonNode.Parse(list.Out)!.AsArray().Select(u => u!["name"]!.GetValue<string>()), Has.Member(name));
        var token = await RunAsync("token-create", "--user", name);
        Assert.That(token.Out.Trim(), Does.StartWith("slt_"));
        var quota = await RunAsync("quota-show", name);
        Assert.That(quota.Out, Does.Contain("vms").And.Contain("20"));
        var table = (await RunAsync("user-list")).Out.Split('\n');
        Assert.That(table[0], Does.Contain("SOURCE"));
        Assert.That(table.Single(l => l.Contains(name)), Does.Contain(" local "), "a user made here is a local user");
        var described = await RunAsync("describe-users", name, "admin");
        Assert.That(described.Out.Split('\n')[0], Does.Contain("SOURCE").And.Contain("SYNCED FROM DIRECTORY"));
        Assert.That(described.Out.Split('\n')[1], Does.StartWith(name).And.Contain(" local "), described.Out);
        Assert.That(described.Out.Split('\n')[2], Does.StartWith("admin"));
        Assert.That((await RunAsync("describe-users", "nobody-" + name)).Code, Is.EqualTo(1));
        var tokens = await RunAsync("token-list", "--user", name, "--json");
        Assert.That(JsonNode.Parse(tokens.Out)!.AsArray().Single()!["state"]!.GetValue<string>(), Is.EqualTo("active"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Networks_leases_and_security_groups_work_from_the_command_line_and_json_keeps_the_api_field_names()
    {
        var net = "n" + Guid.NewGuid().ToString("N")[..6];
        var group = "g" + Guid.NewGuid().ToString("N")[..6];
        var created = await RunAsync("create-network", net, "--cidr", "10.91.7.0/28", "--dns", "10.91.7.1", "--mtu", "1400");
        Assert.That(created.Code, Is.EqualTo(0), created.Err);
        Assert.That(created.Out, Does.Contain($"created network {net} (user, 10.91.7.0/28, "));
        var json = JsonNode.Parse((await RunAsync("describe-networks", net, "--json")).Out)!.AsArray().Single()!;
        Assert.That(json["mtu"]!.GetValue<int>(), Is.EqualTo(1400));
        Assert.That(json["dns"]!.AsArray().Select(d => d!.GetValue<string>()), Is.EqualTo(new[] { "10.91.7.1" }));
        Assert.That(json["used"]!.GetValue<long>(), Is.EqualTo(0));
        Assert.That(json["free"]!.GetValue<long>() + json["held"]!.GetValue<long>(), Is.EqualTo(json["size"]!.GetValue<long>()));
        Assert.That((await RunAsync("hold-address", net, "10.91.7.5")).Code, Is.EqualTo(0));
        var leases = await RunAsync("describe-leases", net, "--state", "held");
        Assert.That(leases.Out.Split('\n')[0], Does.StartWith("IP").And.Contain("MAC"));
        Assert.That(leases.Out, Does.Contain("10.91.7.5").And.Contain("held"));
        var table = await RunAsync("describe-networks", net);
        Assert.That(table.Out.Split('\n')[1], Does.Contain(net).And.Contain("10.91.7.0/28").And.Contain("10.91.7.1"), table.Out);
        Assert.That((await RunAsync("release-address", net, "10.91.7.5")).Code, Is.EqualTo(0));

        Assert.That((await RunAsync("create-security-group", group, "--description", "web in")).Out, Does.Contain($"created security group {group}"));
        var rule = await RunAsync("add-security-rule", group, "--direction", "inbound", "--protocol", "tcp", "--ports", "80-81", "--cidr", "10.0.0.0/8");
        Assert.That(rule.Out, Does.Match($"added rule [0-9]+ to {group}: inbound tcp 80-81 10.0.0.0/8 accept"), rule.Err);
        var groups = await RunAsync("describe-security-groups", group);
        Assert.That(groups.Out, Does.Contain($"{group} (owner admin, networks -)").And.Contain("80-81"));
        var ruleId = JsonNode.Parse((await RunAsync("describe-security-groups", group, "--json")).Out)!.AsArray().Single()!["rules"]!.AsArray().Single()!["id"]!.GetValue<long>();
        Assert.That((await RunAsync("delete-security-rule", group, ruleId.ToString())).Code, Is.EqualTo(0));
        Assert.That((await RunAsync("delete-security-group", group)).Code, Is.EqualTo(0));
        Assert.That((await RunAsync("delete-network", net)).Code, Is.EqualTo(0));
        Assert.That((await RunAsync("describe-networks", net)).Code, Is.EqualTo(1), "deleted");
    }

    [Test, CancelAfter(60_000)]
    public async Task Stop_instance_force_powers_off_at_once_and_rename_instance_renames()
    {
        var run = await RunAsync("run-instance", "--name", "cli-stop", "--wait", "--timeout", "30", "--json");
        var id = JsonNode.Parse(run.Out)!["id"]!.GetValue<long>().ToString();
        var stop = await RunAsync("stop-instance", id, "--force");
        Assert.That(stop.Code, Is.EqualTo(0), stop.Err);
        Assert.That(stop.Out, Does.Contain($"powered off (forced) instance {id}"));
        using var http = _server.Client();
        await InstanceApiTestsWait(http, id, "STOPPED");
        Assert.That(await http.GetStringAsync($"/api/v1/instances/{id}/console"), Does.Contain("power cut: switched off at once (forced)"));
        var renamed = await RunAsync("rename-instance", id, "cli-renamed");
        Assert.That(renamed.Code, Is.EqualTo(0), renamed.Err);
        Assert.That((await RunAsync("describe-instance", id)).Out, Does.Contain("cli-renamed").And.Contain("STOPPED"));
        var both = await RunAsync("instance-action", id, "start", "--force");
        Assert.That(both.Code, Is.Not.EqualTo(0));
        Assert.That(both.Err, Does.Contain("cannot be forced"));
        Assert.That((await RunAsync("kill-instance", id)).Code, Is.EqualTo(0));
    }

    static Task InstanceApiTestsWait(HttpClient http, string id, string state) =>
        StratusLab.Server.Tests.Modules.Compute.InstanceApiTests.WaitAsync(http, long.Parse(id), state);

    [Test, CancelAfter(60_000)]
    public async Task An_instance_is_run_described_and_killed()
    {
        var run = await RunAsync("run-instance", "--name", "cli-vm", "--wait", "--timeout", "30", "--json");
        var id = JsonNode.Parse(run.Out)!["id"]!.GetValue<long>();
        var described = await RunAsync("describe-instance", id.ToString());
        Assert.That(described.Out, Does.Contain("cli-vm").And.Contain("RUNNING"));
        Assert.That((await RunAsync("kill-instance", id.ToString())).Code, Is.EqualTo(0));
        var hosts = await RunAsync("describe-hosts");
        Assert.That(hosts.Code, Is.EqualTo(0));
        Assert.That(hosts.Out, Does.Contain("(local)"));
    }

    [TestCase(new[] { "run-instance", "--flavour", "big" }, 2, "unknown option '--flavour'")]
    [TestCase(new[] { "kill-instance", "abc" }, 2, "'abc' is not an instance ID")]
    [TestCase(new[] { "describe-instance", "999999" }, 1, "does not exist")]
    [TestCase(new[] { "no-such-command" }, 2, "unknown command")]
    public async Task Mistakes_are_one_line_errors_with_a_non_zero_exit(string[] args, int code, string message)
    {
        var result = await RunAsync(args);
        Assert.That(result.Code, Is.EqualTo(code), result.Err);
        Assert.That(result.Err, Does.Contain(message));
    }

    [Test]
    public async Task A_server_that_is_not_running_is_said_clearly()
    {
        var error = new StringWriter();
        var code = await ClientCli.RunAsync(["user-list", "--endpoint", "http://127.0.0.1:1", "--token", "slt_x"], new StringWriter(), error);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("cannot reach the StratusLab server"));
    }
}
