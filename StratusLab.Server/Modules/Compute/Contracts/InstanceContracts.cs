namespace StratusLab.Server.Modules.Compute.Contracts;

/// <summary>The lifecycle states of an instance (see API.md).</summary>
public enum InstanceState { Pending, Prolog, Boot, Running, Shutdown, Stopped, Suspended, Epilog, Done, Failed }

/// <summary>What the guest API needs to know about the instance behind a per-VM token.</summary>
public sealed record GuestInstance(long InstanceId, string Hostname, IReadOnlyDictionary<string, string> Context);

/// <summary>Lets the guest API (Context module) find an instance by its per-VM token and record what the guest reports.</summary>
public interface IGuestInstances
{
    /// <summary>The instance whose guest token this is, if it is still alive; else null.</summary>
    Task<GuestInstance?> FindByGuestTokenAsync(string token, CancellationToken ct = default);

    /// <summary>Marks the instance ready (the guest finished booting and applied its context).</summary>
    Task MarkReadyAsync(long instanceId, CancellationToken ct = default);

    /// <summary>Stores the latest metrics (KPIs) the guest reported.</summary>
    Task RecordMetricsAsync(long instanceId, IReadOnlyDictionary<string, double> metrics, CancellationToken ct = default);
}
