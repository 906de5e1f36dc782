using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Compute;

/// <summary>The Compute section: the hypervisor driver and the instance timings.</summary>
internal sealed class ComputeOptions : IValidatedOptions
{
    public string Driver { get; set; } = "qemu";
    public string Accelerator { get; set; } = "auto";
    public string QemuBinary { get; set; } = "";
    public int ShutdownTimeoutSeconds { get; set; } = 60;
    public int SimulatedDelayMs { get; set; } = 50;
    public bool SimulatedMedia { get; set; }
    public string ApplianceImage { get; set; } = "";
    public int BootTimeoutSeconds { get; set; } = 300;
    public int MonitorIntervalSeconds { get; set; } = 5;
    /// <summary>A RUNNING or SUSPENDED VM whose QEMU (or node) stays silent this long goes UNKNOWN (a node in ERROR makes it UNKNOWN at once).</summary>
    public int UnknownAfterSeconds { get; set; } = 60;
    public int MaxConcurrentDeployments { get; set; } = 32;
    /// <summary>The default per-request ready timeout (seconds after RUNNING); 0: an instance is never flagged not ready.</summary>
    public int ReadyTimeoutSeconds { get; set; }
    /// <summary>Each instance's serial console log is cut to its newest part beyond this size.</summary>
    public int ConsoleLogMaxKiB { get; set; } = 1024;
    /// <summary>DONE and FAILED instances (and their console logs) are deleted this long after they ended.</summary>
    public int EndedInstanceRetentionHours { get; set; } = 168;
    /// <summary>How often running, not yet ready guests are probed (SSH banner, readyPort).</summary>
    public int ReadyProbeIntervalSeconds { get; set; } = 2;
    /// <summary>How often SSH nodes that answer are searched for VMs no live instance owns there (one left running by a node that was evacuated while dead).</summary>
    public int NodeSweepSeconds { get; set; } = 30;

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.OneOf("Compute:Driver", Driver, "qemu", "simulated");
        problems.OneOf("Compute:Accelerator", Accelerator, "auto", "kvm", "tcg");
        problems.Range("Compute:ShutdownTimeoutSeconds", ShutdownTimeoutSeconds, 1, 3600);
        problems.Range("Compute:SimulatedDelayMs", SimulatedDelayMs, 0, 600_000);
        problems.Range("Compute:BootTimeoutSeconds", BootTimeoutSeconds, 5, 3600);
        problems.Range("Compute:MonitorIntervalSeconds", MonitorIntervalSeconds, 1, 3600);
        problems.Range("Compute:UnknownAfterSeconds", UnknownAfterSeconds, 1, 86_400);
        problems.Range("Compute:NodeSweepSeconds", NodeSweepSeconds, 1, 86_400);
        problems.Range("Compute:MaxConcurrentDeployments", MaxConcurrentDeployments, 1, 1024);
        problems.Range("Compute:ReadyTimeoutSeconds", ReadyTimeoutSeconds, 0, 86_400);
        problems.Range("Compute:ConsoleLogMaxKiB", ConsoleLogMaxKiB, 16, 1024 * 1024);
        problems.Range("Compute:EndedInstanceRetentionHours", EndedInstanceRetentionHours, 1, 24 * 3650);
        problems.Range("Compute:ReadyProbeIntervalSeconds", ReadyProbeIntervalSeconds, 1, 3600);
        if (ApplianceImage.Length > 0 && !File.Exists(ApplianceImage))
            problems.Add($"Compute:ApplianceImage = '{ApplianceImage}' does not exist; accepted values: empty (look in ~/.cache/stratuslab/appliance), or the path of a built appliance image.");
        return problems;
    }
}
