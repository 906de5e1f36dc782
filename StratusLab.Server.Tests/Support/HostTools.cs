using System.Diagnostics;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Tests.Support;

/// <summary>Helpers for host-tier tests that use the real tools.</summary>
public static class HostTools
{
    /// <summary>The built test appliance; scripts/test.sh builds it before the suite runs.</summary>
    public static string AppliancePath()
    {
        var path = Appliance.ImagePath(configured: null);
        Assert.That(path, Is.Not.Null, "the test appliance is not built: run scripts/appliance/build.sh (scripts/test.sh does it)");
        return path!;
    }

    /// <summary>The Debian cloud-init guest; scripts/test.sh builds it (scripts/appliance/build-cloud-guest.sh, cached).</summary>
    public static string CloudGuestPath()
    {
        var dir = Environment.GetEnvironmentVariable("STRATUSLAB_CLOUD_GUEST_DIR") is { Length: > 0 } configured ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "stratuslab", "cloud-guest");
        var path = Path.Combine(dir, "debian-12-cloudinit.qcow2");
        Assert.That(File.Exists(path), Is.True, $"the Debian cloud-init guest is not built ({path}): run scripts/appliance/build-cloud-guest.sh as root (scripts/test.sh does it)");
        return path;
    }

    /// <summary>Runs a program with a timeout and returns (exit code, stdout, stderr).</summary>
    public static async Task<(int Exit, string Out, string Err)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) psi.Environment.Remove(name); else psi.Environment[name] = value;
        using var process = Process.Start(psi)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, await stdout, await stderr + $"\n(timed out after {timeout})");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Pids of QEMU processes whose command line mentions <paramref name="marker"/> (e.g. a data dir).</summary>
    public static IReadOnlyList<int> QemuProcesses(string marker)
    {
        var pids = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.StartsWith("qemu-system", StringComparison.Ordinal) && cmdline.Contains(marker, StringComparison.Ordinal)) pids.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return pids;
    }

    /// <summary>Kills every QEMU process of a test's data dir (clean-up after a failed test).</summary>
    public static void KillQemu(string marker)
    {
        foreach (var pid in QemuProcesses(marker))
        {
            try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        }
    }

    /// <summary>A throwaway ed25519 key pair; returns (private key path, public key line).</summary>
    public static async Task<(string PrivateKey, string PublicKey)> SshKeyAsync(string directory)
    {
        var key = Path.Combine(directory, "id_ed25519");
        var result = await RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "stratuslab-test", "-f", key], TimeSpan.FromSeconds(30));
        Assert.That(result.Exit, Is.EqualTo(0), result.Err);
        return (key, (await File.ReadAllTextAsync(key + ".pub")).Trim());
    }
}
