using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>See <see cref="IHostAdministration"/>.</summary>
internal sealed class HostAdministration(SchedulingStore store, ISchedulerSignal signal) : IHostAdministration
{
    public async Task<IReadOnlyList<HostSummary>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        RequireAdmin(caller);
        return (await store.ListHostsAsync()).Select(HostInventory.ToSummary).ToList();
    }

    public async Task<HostSummary> SetEnabledAsync(Caller caller, string name, bool enabled, CancellationToken ct = default)
    {
        RequireAdmin(caller);
        if (!await store.SetEnabledAsync(name, enabled)) throw new NotFoundException($"Host '{name}'");
        if (enabled) signal.Wake();
        return HostInventory.ToSummary((await store.FindHostAsync(name))!);
    }

    public async Task<HostSummary> AddSimulatedAsync(Caller caller, string name, long cpus, long memoryMiB, CancellationToken ct = default)
    {
        RequireAdmin(caller);
        name = Validate.Name(name, "name");
        Validate.Range(cpus, "cpus", 1, 100_000);
        Validate.Range(memoryMiB, "memoryMiB", 64, 1L << 40);
        if (!await store.InsertHostAsync(name, "simulated", cpus, memoryMiB, isLocal: false))
            throw new ConflictException($"A host named '{name}' already exists; choose another name.");
        signal.Wake();
        return HostInventory.ToSummary((await store.FindHostAsync(name))!);
    }

    static void RequireAdmin(Caller caller)
    {
        if (!caller.IsAdmin) throw new ForbiddenException("Only administrators may manage hosts; ask an administrator.");
    }
}
