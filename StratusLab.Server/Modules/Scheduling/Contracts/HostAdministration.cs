using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Scheduling.Contracts;

/// <summary>
/// Scheduling's application service for administrators (the REST API and the dashboard's hosts page): the hosts with
/// their capacity, draining a host (no new placement; what runs there keeps running) and simulated hosts. Every
/// operation is for administrators only (403 otherwise).
/// </summary>
public interface IHostAdministration
{
    Task<IReadOnlyList<HostSummary>> ListAsync(Caller caller, CancellationToken ct = default);

    /// <summary>Drains (<paramref name="enabled"/> false) or returns a host to placement; 404 for an unknown host.</summary>
    Task<HostSummary> SetEnabledAsync(Caller caller, string name, bool enabled, CancellationToken ct = default);

    /// <summary>Adds a simulated host (capacity without a machine, to model a larger site); 409 when the name is taken.</summary>
    Task<HostSummary> AddSimulatedAsync(Caller caller, string name, long cpus, long memoryMiB, CancellationToken ct = default);
}
