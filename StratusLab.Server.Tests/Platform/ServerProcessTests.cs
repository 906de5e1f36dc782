using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

/// <summary>The real binary, as a user starts it: data dir, admin token file, restart keeps the data.</summary>
[NonParallelizable]
public class ServerProcessTests
{
    string _dataDir = "";

    [SetUp] public void Create() => _dataDir = TempDir.Create("binary");
    [TearDown] public void Remove() => TempDir.Delete(_dataDir);

    public static string BinaryPath()
    {
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "stratuslab.dll");
        Assert.That(File.Exists(path), Is.True, path);
        return path;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static Process StartServer(string dataDir, int port, params (string Key, string Value)[] env)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { BinaryPath(), "serve", "--data-dir", dataDir, "--urls", $"http://127.0.0.1:{port}" }) info.ArgumentList.Add(a);
        info.Environment["STRATUSLAB__Compute__Driver"] = "simulated";
        foreach (var (k, v) in env) info.Environment[k] = v;
        var process = Process.Start(info)!;
        var output = Output.GetValue(process, _ => new System.Text.StringBuilder());
        void Record(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            TestContext.Progress.WriteLine("[server] " + line);
        }
        process.OutputDataReceived += (_, e) => Record(e.Data);
        process.ErrorDataReceived += (_, e) => Record(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Process, System.Text.StringBuilder> Output = new();

    /// <summary>Everything the server printed so far.</summary>
    public static string PrintedBy(Process process)
    {
        var output = Output.GetValue(process, _ => new System.Text.StringBuilder());
        lock (output) return output.ToString();
    }

    public static async Task WaitHealthy(int port, Process process, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            Assert.That(process.HasExited, Is.False, "the server exited during start-up");
            try
            {
                var response = await http.GetAsync($"http://127.0.0.1:{port}/health");
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        Assert.Fail($"no healthy /health on port {port} within {timeout}");
    }

    public static void Kill(Process process)
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit(10_000);
    }

    [Test, CancelAfter(120_000)]
    public async Task The_binary_starts_writes_a_private_admin_token_and_keeps_its_data_across_a_restart()
    {
        var port = FreePort();
        var server = StartServer(_dataDir, port);
        string token;
        try
        {
            await WaitHealthy(port, server, TimeSpan.FromSeconds(60));
            var tokenFile = Path.Combine(_dataDir, "admin.token");
            Assert.That(File.GetUnixFileMode(tokenFile), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            token = File.ReadAllText(tokenFile).Trim();
            using var http = new HttpClient();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var created = await http.PostAsync($"http://127.0.0.1:{port}/api/v1/users", Http.RawJson("""{"name":"persisted-user"}"""));
            Assert.That((int)created.StatusCode, Is.EqualTo(201));
        }
        finally { Kill(server); }

        // A second start on the same data dir: same token, same users, no new admin.
        var again = StartServer(_dataDir, port);
        try
        {
            await WaitHealthy(port, again, TimeSpan.FromSeconds(60));
            Assert.That(File.ReadAllText(Path.Combine(_dataDir, "admin.token")).Trim(), Is.EqualTo(token));
            using var http = new HttpClient();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var user = await http.GetAsync($"http://127.0.0.1:{port}/api/v1/users/persisted-user");
            Assert.That((int)user.StatusCode, Is.EqualTo(200));
        }
        finally { Kill(again); }
    }

    [Test, CancelAfter(60_000)]
    public async Task Invalid_settings_in_several_modules_stop_start_up_with_exit_code_2_and_every_key_named()
    {
        var port = FreePort();
        var server = StartServer(_dataDir, port, ("STRATUSLAB__Compute__Driver", "vmware"), ("STRATUSLAB__Pdisk__FileFormat", "vmdk"),
            ("STRATUSLAB__Networking__MaxNicsPerInstance", "0"));
        try
        {
            await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(50));
            server.WaitForExit();
            Assert.That(server.ExitCode, Is.EqualTo(2));
            Assert.That(PrintedBy(server), Does.Contain("stratuslab serve: invalid configuration:")
                .And.Contain("Compute:Driver = 'vmware' is not accepted; accepted values: qemu, simulated.")
                .And.Contain("Pdisk:FileFormat = 'vmdk' is not accepted; accepted values: raw, qcow2.")
                .And.Contain("Networking:MaxNicsPerInstance = 0 is out of range; accepted values: 1..16."));
        }
        finally { Kill(server); }
    }

    [Test, CancelAfter(90_000)]
    public async Task A_server_that_cannot_listen_exits_non_zero_and_says_why()
    {
        // The port is taken by someone else: start-up fails after the modules are built, when Kestrel binds.
        using var squatter = new TcpListener(System.Net.IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((System.Net.IPEndPoint)squatter.LocalEndpoint).Port;
        var server = StartServer(_dataDir, port);
        try
        {
            await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(80));
            server.WaitForExit();
            Assert.That(server.ExitCode, Is.Not.EqualTo(0), PrintedBy(server));
            Assert.That(server.ExitCode, Is.EqualTo(1), "a fatal start-up error is exit code 1 (2 is for invalid configuration)");
            Assert.That(PrintedBy(server), Does.Contain("stratuslab serve: the server stopped on a fatal error:").And.Contain(port.ToString()));
        }
        finally { Kill(server); }
    }
}
