using System.Diagnostics;
using System.Text.RegularExpressions;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// The README's "Using it" block, as written, against a fresh data dir and real QEMU guests: first what scripts/run.sh
/// does once the server is up (scripts/setup-client.sh: the command on PATH, the client config, a key), then each
/// line of the block through bash with the built binary, as a newcomer would type it.
/// </summary>
[NonParallelizable]
public class ReadmeUsingItHostTests
{
    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "README.md")) && Directory.Exists(Path.Combine(dir.FullName, "scripts"))) return dir.FullName;
        throw new InvalidOperationException("the repository root (README.md, scripts/) is not above the test directory");
    }

    /// <summary>The commands between the readme-using-it markers, one per line.</summary>
    public static IReadOnlyList<string> UsingItBlock(string readme)
    {
        var match = Regex.Match(readme, @"<!-- readme-using-it:begin -->\s*```sh\n(?<block>.*?)```\s*<!-- readme-using-it:end -->", RegexOptions.Singleline);
        Assert.That(match.Success, "README.md has the marked 'Using it' block");
        return match.Groups["block"].Value.Split('\n').Where(l => l.Trim().Length > 0).ToList();
    }

    [Test, CancelAfter(900_000)]
    public async Task The_readme_using_it_block_works_as_written_on_a_fresh_data_dir()
    {
        HostTools.AppliancePath();
        var root = RepositoryRoot();
        var lines = UsingItBlock(File.ReadAllText(Path.Combine(root, "README.md")));
        var home = TempDir.Create("readme-home");
        Process? agent = null;
        var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:Driver"] = "qemu",
            ["Compute:Accelerator"] = "auto",
            ["Compute:ShutdownTimeoutSeconds"] = "30",
            ["Compute:BootTimeoutSeconds"] = "180",
        });
        try
        {
            var bin = Path.Combine(home, "bin");
            var binary = Path.Combine(TestContext.CurrentContext.TestDirectory, "stratuslab");
            var sock = Path.Combine(home, "agent.sock");
            var environment = new Dictionary<string, string?>
            {
                ["HOME"] = home,
                ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"),
                ["STRATUSLAB_DATA"] = server.DataDir,
                ["STRATUSLAB_BIN_DIR"] = bin,
                ["SSH_AUTH_SOCK"] = sock,
                ["XDG_CONFIG_HOME"] = null,
                ["STRATUSLAB_ENDPOINT"] = null,
                ["STRATUSLAB_TOKEN"] = null,
                ["COLUMNS"] = "160",
            };
            var endpoint = server.BaseAddress.ToString().TrimEnd('/');

            var setup = await HostTools.RunAsync("bash", [Path.Combine(root, "scripts", "setup-client.sh"), binary, endpoint], TimeSpan.FromSeconds(120), environment);
            Assert.That(setup.Exit, Is.Zero, setup.Err);
            Assert.That(setup.Err, Does.Contain($"the 'stratuslab' command is {bin}/stratuslab").And.Contain("made an SSH key pair"));
            Assert.That(File.Exists(Path.Combine(home, ".config", "stratuslab", "client.json")), "the client config is written");

            // ssh finds keys in the passwd home, not $HOME: the newcomer's key is offered through an agent instead.
            agent = Process.Start(new ProcessStartInfo("ssh-agent", ["-D", "-a", sock]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            for (var i = 0; i < 50 && !File.Exists(sock); i++) await Task.Delay(100);
            var added = await HostTools.RunAsync("ssh-add", [Path.Combine(home, ".ssh", "id_ed25519")], TimeSpan.FromSeconds(20), environment);
            Assert.That(added.Exit, Is.Zero, added.Err);

            var transcript = new List<string>();
            foreach (var line in lines)
            {
                var timeout = line.Contains("--wait") ? TimeSpan.FromSeconds(300) : TimeSpan.FromSeconds(120);
                var clock = Stopwatch.StartNew();
                var (exit, output, error) = await HostTools.RunAsync("bash", ["-c", line], timeout, environment);
                transcript.Add($"$ {line}\n{output}{error}(exit {exit}, {clock.Elapsed.TotalSeconds:0.0} s)");
                TestContext.Out.WriteLine(transcript[^1]);
                Assert.That(exit, Is.Zero, $"README line failed: {line}\n{error}\n{output}");
                if (line.StartsWith("stratuslab connect-instance")) Assert.That(output, Does.Contain("Linux"), "the command ran in the guest");
                if (line.StartsWith("stratuslab run-instance")) Assert.That(error, Does.Contain("RUNNING").And.Contain("(ready)"), "the states are shown");
                if (line.StartsWith("stratuslab describe-volumes")) Assert.That(output, Does.Contain("data").And.Contain("1G"));
            }
        }
        finally
        {
            if (agent is not null) { try { agent.Kill(); } catch (InvalidOperationException) { } agent.Dispose(); }
            var dataDir = server.DataDir;
            await server.DisposeAsync();
            HostTools.KillQemu(dataDir);
            TempDir.Delete(home);
        }
    }
}
