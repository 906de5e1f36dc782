namespace StratusLab.Server.Platform.Contracts;

/// <summary>
/// An instance as the modules below Compute see it (Pdisk, Networking, Scheduling reconcilers):
/// who owns it, where it runs, and whether it has ended (DONE or FAILED) so its resources can go.
/// </summary>
public sealed record InstanceEntry(long Id, string Name, long OwnerId, string? Host, string Driver, bool Ended);

/// <summary>
/// Answers "is this instance alive, and who owns it". Compute implements it; it lives in Platform so that
/// lower modules can ask without depending on Compute (which depends on them).
/// </summary>
public interface IInstanceDirectory
{
    /// <summary>The instance, or null when no such instance exists.</summary>
    Task<InstanceEntry?> FindAsync(long instanceId, CancellationToken ct = default);

    /// <summary>Ids of the instances that hold a host (placed and not yet DONE or FAILED).</summary>
    Task<IReadOnlyList<long>> ListPlacedAsync(CancellationToken ct = default);
}
