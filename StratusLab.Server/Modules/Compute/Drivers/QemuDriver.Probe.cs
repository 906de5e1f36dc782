namespace StratusLab.Server.Modules.Compute.Drivers;

internal sealed partial class QemuDriver
{
    const int ProbeSuccessExitCode = Platform.Host.QemuProbe.SuccessExitCode;

    /// <summary>The probe's arguments: boot the sector with the given accelerator (pure).</summary>
    public static IReadOnlyList<string> ProbeArguments(string accelerator, string image) => Platform.Host.QemuProbe.Arguments(accelerator, image);

    /// <summary>The kernel probe's arguments: boot a Linux kernel without a root fs, so it panics and QEMU exits (pure).</summary>
    public static IReadOnlyList<string> KernelProbeArguments(string accelerator, string kernel, string serialLog) =>
        Platform.Host.QemuProbe.KernelArguments(accelerator, kernel, serialLog);

    /// <summary>
    /// Boots a real guest with <paramref name="accelerator"/>; returns null when it worked, else why not.
    /// A Linux kernel (the appliance's) is the honest test: on nested hosts KVM passes simple real-mode code
    /// and then hangs or fails in the kernel. Without a kernel, a boot sector is the fallback.
    /// </summary>
    async Task<string?> ProbeAsync(string accelerator, CancellationToken ct)
    {
        if (accelerator == "kvm" && !KvmDeviceUsable(out var why)) return why;
        var kernel = ProbeKernel();
        if (kernel is not null) return await KernelProbeAsync(accelerator, kernel, ct);
        var dir = Directory.CreateTempSubdirectory("stratuslab-probe-");
        try
        {
            var image = Path.Combine(dir.FullName, "probe.img");
            await File.WriteAllBytesAsync(image, Platform.Host.QemuProbe.BootSector(), ct);
            try
            {
                var result = await _runner.RunAsync(new Platform.Host.ToolCommand(Binary, ProbeArguments(accelerator, image))
                {
                    Timeout = TimeSpan.FromSeconds(accelerator == "kvm" ? 5 : 30),
                    AcceptedExitCodes = [ProbeSuccessExitCode],
                }, ct);
                return result.ExitCode == ProbeSuccessExitCode ? null : $"exit code {result.ExitCode}";
            }
            catch (Platform.Host.ToolFailedException e) { return FirstLine(e.StandardError) ?? $"exit code {e.ExitCode}"; }
            catch (Platform.Host.ToolTimeoutException) { return "the probe guest did not finish booting in time"; }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    async Task<string?> KernelProbeAsync(string accelerator, string kernel, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("stratuslab-probe-");
        try
        {
            var serial = Path.Combine(dir.FullName, "serial.log");
            try
            {
                await _runner.RunAsync(new Platform.Host.ToolCommand(Binary, KernelProbeArguments(accelerator, kernel, serial))
                {
                    Timeout = TimeSpan.FromSeconds(accelerator == "kvm" ? 10 : 60),
                }, ct);
            }
            catch (Platform.Host.ToolFailedException e) { return FirstLine(e.StandardError) ?? $"exit code {e.ExitCode}"; }
            catch (Platform.Host.ToolTimeoutException) { return "a Linux kernel did not get through its boot in time (it hangs under this accelerator)"; }
            var log = File.Exists(serial) ? await File.ReadAllTextAsync(serial, ct) : "";
            return log.Contains(Platform.Host.QemuProbe.KernelEndOfBoot, StringComparison.Ordinal) ? null : "the probe kernel stopped without reaching its end of boot";
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>The kernel used to probe: the one built next to the test appliance (stratuslab-appliance.vmlinuz).</summary>
    string? ProbeKernel() => Platform.Configuration.Appliance.KernelPath(compute.ApplianceImage);

    static bool KvmDeviceUsable(out string why)
    {
        why = "";
        if (!File.Exists("/dev/kvm")) { why = "/dev/kvm does not exist"; return false; }
        try
        {
            using var f = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return true;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            why = $"/dev/kvm is not usable: {e.Message}";
            return false;
        }
    }

    static string? FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
}
