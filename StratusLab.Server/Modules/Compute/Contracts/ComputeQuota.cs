using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Compute.Contracts;

/// <summary>Compute's share of quota usage, for audits without a running server ('stratuslab admin check').</summary>
public static class ComputeQuota
{
    /// <summary>What instances hold: VMs, CPUs and memory of every instance admitted and not yet ended.</summary>
    public static IQuotaHolder Holder { get; } = new InstanceQuotaHolder();
}
