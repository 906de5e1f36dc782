using System.Diagnostics;
using System.Net.Http.Json;

namespace StratusLab.Server.Tests.Support;

/// <summary>Small real disk images for tests, made with qemu-img.</summary>
public static class TestImages
{
    /// <summary>Creates an empty qcow2 of the given virtual size.</summary>
    public static string CreateQcow2(string directory, string name, string size = "16M")
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name + ".qcow2");
        var psi = new ProcessStartInfo("qemu-img", ["create", "-q", "-f", "qcow2", path, size]) { RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        Assert.That(process.WaitForExit(30_000), Is.True, "qemu-img create timed out");
        Assert.That(process.ExitCode, Is.EqualTo(0), process.StandardError.ReadToEnd());
        return path;
    }

    /// <summary>The disk space a file really takes (its allocated blocks, as du counts them), not its length.</summary>
    public static long AllocatedBytes(string path)
    {
        var psi = new ProcessStartInfo("du", ["--block-size=1", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(psi)!;
        Assert.That(process.WaitForExit(30_000), Is.True, "du timed out");
        Assert.That(process.ExitCode, Is.EqualTo(0), process.StandardError.ReadToEnd());
        return long.Parse(process.StandardOutput.ReadToEnd().Split('\t')[0]);
    }

    /// <summary>Registers a small image as the server's default image and returns its name.</summary>
    public static async Task<string> RegisterDefaultAsync(TestServer server, string name = "test-image")
    {
        var path = CreateQcow2(Path.Combine(server.DataDir, "test-source"), name);
        using var admin = server.Client();
        var response = await admin.PostAsJsonAsync("/api/v1/images", new { name, path, @default = true });
        await response.Json(201);
        return name;
    }
}
