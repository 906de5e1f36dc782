namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>Maps driver names from config and API to drivers.</summary>
internal sealed class HypervisorRegistry(IEnumerable<IHypervisorDriver> drivers)
{
    readonly Dictionary<string, IHypervisorDriver> _byName = drivers.ToDictionary(d => d.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _byName.Keys;

    public IHypervisorDriver Get(string name) =>
        _byName.TryGetValue(name, out var driver) ? driver : throw new InvalidOperationException($"no hypervisor driver named '{name}'");
}
