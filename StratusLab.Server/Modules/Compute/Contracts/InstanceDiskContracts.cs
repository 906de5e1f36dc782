namespace StratusLab.Server.Modules.Compute.Contracts;

/// <summary>An instance as other modules see it.</summary>
public sealed record InstanceSummary(long Id, string Name, long OwnerId, InstanceState State, string? Host, string Driver);

/// <summary>Instance lookups for Networking's reconciler (hot-plug moved to Pdisk.Contracts.IInstanceHotPlug; new code uses Platform.Contracts.IInstanceDirectory).</summary>
public interface IInstanceDisks
{
    /// <summary>The instance, or null when no such instance exists.</summary>
    Task<InstanceSummary?> FindAsync(long instanceId, CancellationToken ct = default);
}
