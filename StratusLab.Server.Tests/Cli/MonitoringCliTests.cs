using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Cli;

/// <summary>describe-metrics, usage and host-add as the CLI speaks them, against a real in-process server sampling every second (simulated VMs).</summary>
[NonParallelizable]
public class MonitoringCliTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Monitoring:SampleIntervalSeconds"] = "1" });
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

    [Test, CancelAfter(120_000)]
    public async Task Describe_metrics_shows_the_samples_of_a_running_instance_and_usage_its_record()
    {
        var run = await Run("run-instance", "--name", "measured", "--json");
        Assert.That(run.Code, Is.Zero, run.Err);
        var id = JsonNode.Parse(run.Out)!["id"]!.GetValue<long>().ToString();
        JsonNode? metrics = null;
        for (var i = 0; i < 100; i++)
        {
            var json = await Run("describe-metrics", id, "--since", "5m", "--json");
            Assert.That(json.Code, Is.Zero, json.Err);
            metrics = JsonNode.Parse(json.Out);
            if (metrics!["samples"]!.AsArray().Count >= 2) break;
            await Task.Delay(300);
        }
        Assert.That(metrics!["samples"]!.AsArray(), Has.Count.GreaterThanOrEqualTo(2), "a sample a second");

        var human = await Run("describe-metrics", id, "--since", "5m");
        Assert.That(human.Code, Is.Zero, human.Err);
        Assert.That(human.Out, Does.Contain($"instance {id}:").And.Contain("raw samples").And.Contain("simulated driver"));
        Assert.That(human.Out, Does.Contain("CPU %").And.Contain("RSS").And.Contain("NET RX"), "a table of the samples");

        var bad = await Run("describe-metrics", id, "--since", "yesterday-ish");
        Assert.That(bad.Code, Is.EqualTo(1));
        Assert.That(bad.Err, Does.Contain("--since"), "the server's field named as the flag that set it");

        JsonNode? record = null;
        for (var i = 0; i < 100 && record is null; i++)
        {
            var usage = await Run("usage", "--json");
            Assert.That(usage.Code, Is.Zero, usage.Err);
            record = JsonNode.Parse(usage.Out)!.AsArray().FirstOrDefault(r => r!["instanceName"]!.GetValue<string>() == "measured");
            if (record is null) await Task.Delay(300);
        }
        Assert.That(record, Is.Not.Null, "a usage record for the instance");
        var table = await Run("usage");
        Assert.That(table.Out, Does.Contain($"{id} measured"));
        var byImage = await Run("usage", "--by", "image");
        Assert.That(byImage.Out, Does.Contain("INSTANCES").And.Contain(record!["image"]!.GetValue<string>()));
        var csv = await Run("usage", "--format", "csv");
        Assert.That(csv.Code, Is.Zero, csv.Err);
        Assert.That(csv.Out.Split('\n')[0], Does.Contain("instanceId").Or.Contain("instance_id").IgnoreCase, "the server's CSV header as is");
        Assert.That(csv.Out, Does.Contain("measured"));
        var apel = await Run("usage-apel");
        Assert.That(apel.Code, Is.Zero, apel.Err);
        Assert.That(apel.Out, Does.StartWith("APEL-cloud-message: v0.4"));
        var wrongFormat = await Run("usage", "--format", "xml");
        Assert.That(wrongFormat.Code, Is.Not.Zero);
        Assert.That(wrongFormat.Err, Does.Contain("--format"));
    }

    [Test]
    public async Task Host_add_takes_a_simulated_host_or_an_ssh_node_and_says_which_flags_belong_to_which()
    {
        var sim = await Run("host-add", "sim-cli", "--cpus", "8", "--memory", "8192");
        Assert.That(sim.Code, Is.Zero, sim.Err);
        Assert.That(sim.Out, Does.Contain("added host sim-cli (simulated, 8 CPU, 8192 MiB)"));
        var hosts = await Run("describe-hosts");
        Assert.That(hosts.Out, Does.Contain("sim-cli"));
        Assert.That((await Run("host-delete", "sim-cli")).Code, Is.Zero);

        var noSize = await Run("host-add", "sim-2", "--cpus", "8");
        Assert.That(noSize.Code, Is.EqualTo(2));
        Assert.That(noSize.Err, Does.Contain("--cpus N and --memory MiB"));
        var mixed = await Run("host-add", "sim-3", "--cpus", "8", "--memory", "8192", "--driver", "simulated", "--ssh-port", "2222");
        Assert.That(mixed.Code, Is.EqualTo(2));
        Assert.That(mixed.Err, Does.Contain("are for SSH nodes"));
        var sshWithoutTarget = await Run("host-add", "node-x", "--driver", "ssh");
        Assert.That(sshWithoutTarget.Code, Is.EqualTo(2));
        Assert.That(sshWithoutTarget.Err, Does.Contain("--ssh USER@ADDRESS"));
        var optionLike = await Run("host-add", "node-y", "--ssh", "-oProxyCommand=x");
        Assert.That(optionLike.Code, Is.Not.Zero, "an ssh target that reads as an ssh option is refused by the server");
        Assert.That((await Run("describe-hosts")).Out, Does.Not.Contain("node-y"));
    }
}
