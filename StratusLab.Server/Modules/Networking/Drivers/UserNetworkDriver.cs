namespace StratusLab.Server.Modules.Networking.Drivers;

/// <summary>
/// QEMU user-mode networking (the embedded default): each VM has its own slirp, so nothing on the host changes and no
/// root is needed. The lease's address is the slirp DHCP address and the context's ETHn_IP; PAT ports are QEMU hostfwd
/// rules on Networking:PatAddress. Security groups do not apply: the guest is reachable only through its PAT ports.
/// </summary>
internal sealed class UserNetworkDriver : INetworkDriver
{
    public string Name => "user";
    public bool HasHostSide => false;
    public string? TapOf(NicSpec nic) => null;
    public Task PreBootAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct) => Task.CompletedTask;
    public Task PostBootAsync(NetworkSpec network, NicSpec nic, CancellationToken ct) => Task.CompletedTask;
    public Task CleanAsync(NetworkSpec network, NicSpec nic, IReadOnlyList<NicSpec> served, CancellationToken ct) => Task.CompletedTask;
    public Task ApplyRulesAsync(NetworkSpec network, NicSpec nic, CancellationToken ct) => Task.CompletedTask;
    public Task ReconcileAsync(IReadOnlyList<(NetworkSpec Network, IReadOnlyList<NicSpec> Nics)> live, CancellationToken ct) => Task.CompletedTask;
    public Task TearDownAsync(NetworkSpec network, CancellationToken ct) => Task.CompletedTask;

    // Each VM's slirp is private: any subnet is fine, even the host's own.
    public Task<string?> WhyUnusableAsync(Ranges.Subnet subnet, CancellationToken ct) => Task.FromResult<string?>(null);
}
