using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Pdisk.Contracts;

/// <summary>Pdisk's share of quota usage, for audits without a running server ('stratuslab admin check').</summary>
public static class PdiskQuota
{
    /// <summary>What volumes hold: the storage quota of every volume row.</summary>
    public static IQuotaHolder Holder { get; } = new VolumeQuotaHolder();
}
