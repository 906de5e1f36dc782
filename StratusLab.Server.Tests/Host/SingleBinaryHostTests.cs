using System.Diagnostics;
using StratusLab.Server.Tests.Platform;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// The release build: 'scripts/build.sh --release' makes one self-contained file that runs from an empty directory with
/// no .NET on PATH and no DOTNET_ROOT: the server, a client command and an admin command. It may run alongside other
/// fixtures: the publish writes only the Release linux-x64 outputs and .artifacts/release, which no other test uses, and
/// the server it starts has a free port and its own directory.
/// </summary>
public class SingleBinaryHostTests
{
    string _dir = "";
    string _binary = "";

    static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "stratuslab.sln"))) dir = dir.Parent;
        Assert.That(dir, Is.Not.Null, "the repository root (stratuslab.sln) is not above the test directory");
        return dir!.FullName;
    }

    [OneTimeSetUp]
    public async Task Publish()
    {
        var root = RepositoryRoot();
        // Publishing is the slow part (the runtime pack, crossgen): once for the fixture, bounded.
        var built = await HostTools.RunAsync(Path.Combine(root, "scripts", "build.sh"), ["--release"], TimeSpan.FromMinutes(15));
        Assert.That(built.Exit, Is.EqualTo(0), built.Err);
        var published = built.Out.Trim().Split('\n')[^1];
        Assert.That(File.Exists(published), Is.True, built.Out);
        _dir = TempDir.Create("single-binary");
        _binary = Path.Combine(_dir, "stratuslab");
        File.Copy(published, _binary);
        File.SetUnixFileMode(_binary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // A PATH with the machine's tools (qemu-img, ...) but no dotnet: links to everything in the system bin directories but it.
        _path = Path.Combine(Path.GetTempPath(), "stratuslab-tests", "nodotnet-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_path);
        foreach (var bin in new[] { "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin" }.Where(Directory.Exists))
            foreach (var file in Directory.EnumerateFileSystemEntries(bin))
            {
                var link = Path.Combine(_path, Path.GetFileName(file));
                if (Path.GetFileName(file) != "dotnet" && !File.Exists(link) && !Directory.Exists(link)) File.CreateSymbolicLink(link, file);
            }
    }

    string _path = "";

    [OneTimeTearDown]
    public void Remove()
    {
        TempDir.Delete(_dir);
        TempDir.Delete(_path);
    }

    /// <summary>No dotnet on PATH, no DOTNET_ROOT: what a Debian box without .NET gives the binary.</summary>
    ProcessStartInfo WithoutDotnet(params string[] args)
    {
        var info = new ProcessStartInfo(_binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("DOTNET_", StringComparison.Ordinal) || k.StartsWith("STRATUSLAB", StringComparison.Ordinal)).ToList())
            info.Environment.Remove(key);
        info.Environment["PATH"] = _path;
        info.Environment["DOTNET_BUNDLE_EXTRACT_BASE_DIR"] = Path.Combine(_dir, "extract");
        return info;
    }

    async Task<(int Exit, string Out, string Err)> RunAsync(TimeSpan timeout, params string[] args)
    {
        using var process = Process.Start(WithoutDotnet(args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try { await process.WaitForExitAsync().WaitAsync(timeout); }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"stratuslab {string.Join(' ', args)} did not end within {timeout}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    [Test, CancelAfter(300_000)]
    public async Task The_one_file_serves_and_answers_a_client_and_an_admin_command_from_an_empty_directory_without_dotnet()
    {
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { _binary }), "the binary is alone in its directory");
        var which = await HostTools.RunAsync("/bin/sh", ["-c", $"PATH={_path}; command -v dotnet || echo none"], TimeSpan.FromSeconds(10));
        Assert.That(which.Out.Trim(), Is.EqualTo("none"), "the binary runs with a PATH on which there is no dotnet");
        Assert.That(new FileInfo(_binary).Length, Is.GreaterThan(40L << 20), "self-contained: the runtime is inside (a framework-dependent apphost is ~80 KB)");
        var dataDir = Path.Combine(_dir, "data");
        var port = ServerProcessTests.FreePort();
        var info = WithoutDotnet("serve", "--data-dir", dataDir, "--urls", $"http://127.0.0.1:{port}");
        info.Environment["STRATUSLAB__Compute__Driver"] = "simulated";
        using var server = Process.Start(info)!;
        var output = new System.Text.StringBuilder();
        server.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        server.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            await ServerProcessTests.WaitHealthy(port, server, TimeSpan.FromSeconds(120));
            var ready = output.ToString();
            Assert.That(ready, Does.Contain("StratusLab Server ready on"), ready);
            Assert.That(ready, Does.Match(@"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "), "log lines carry UTC timestamps");

            var client = await RunAsync(TimeSpan.FromSeconds(60), "describe-instance", "--endpoint", $"http://127.0.0.1:{port}",
                "--token", File.ReadAllText(Path.Combine(dataDir, "admin.token")).Trim(), "--json");
            Assert.That(client.Exit, Is.EqualTo(0), client.Err);
            Assert.That(client.Out.Trim(), Does.StartWith("["), client.Out);

            using var http = new HttpClient();
            var page = await http.GetStringAsync($"http://127.0.0.1:{port}/marketplace");
            Assert.That(page, Does.Contain("StratusLab Marketplace"), "the Marketplace pages travel inside the binary");
            var docs = await http.GetAsync($"http://127.0.0.1:{port}/docs/index.html");
            Assert.That((int)docs.StatusCode, Is.EqualTo(200), "so do the Swagger UI assets");
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }

        // The admin commands work on the data dir once the server stopped.
        var check = await RunAsync(TimeSpan.FromSeconds(120), "admin", "check", "--data-dir", dataDir);
        Assert.That(check.Exit, Is.EqualTo(0), check.Out + check.Err);
    }
}
