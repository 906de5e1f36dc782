namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>A fault to inject into simulated driver actions (admin API: /api/v1/simulator/faults).</summary>
/// <param name="Action">prolog, start, shutdown, kill, pause, resume, reset, query, attach or detach.</param>
/// <param name="Mode">fail (raise an error), delay (wait DelayMs then succeed) or hang (never answer until the caller gives up).</param>
/// <param name="Times">How many times it fires; null = every time.</param>
/// <param name="InstanceId">Only for this instance; null = any.</param>
/// <param name="Id">The fault's id, for DELETE.</param>
/// <param name="DelayMs">For delay: how long, in milliseconds.</param>
/// <param name="Message">For fail: the error text the action reports.</param>
/// <param name="Fired">How many times it fired so far.</param>
internal sealed record SimulatedFault(string Id, string Action, string Mode, int? Times, long? InstanceId, int DelayMs, string Message, int Fired);

/// <summary>The active faults of the simulated driver.</summary>
internal sealed class SimulatedFaults
{
    public static readonly string[] Actions = ["prolog", "start", "shutdown", "kill", "pause", "resume", "reset", "query", "attach", "detach"];
    /// <summary>silent (query only): the VM is there but does not answer, as a wedged QEMU whose QMP times out.</summary>
    public static readonly string[] Modes = ["fail", "delay", "hang", "silent"];

    readonly object _lock = new();
    readonly List<SimulatedFault> _faults = [];

    public SimulatedFault Add(string action, string mode, int? times, long? instanceId, int delayMs, string? message)
    {
        var fault = new SimulatedFault(Guid.NewGuid().ToString("N")[..8], action, mode, times, instanceId, delayMs,
            message ?? $"injected fault: simulated {action} failed", 0);
        lock (_lock) _faults.Add(fault);
        return fault;
    }

    public IReadOnlyList<SimulatedFault> List() { lock (_lock) return _faults.ToList(); }

    public bool Remove(string id) { lock (_lock) return _faults.RemoveAll(f => f.Id == id) > 0; }

    public void Clear() { lock (_lock) _faults.Clear(); }

    readonly HashSet<string> _down = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A simulated host outage: its VMs' state cannot be read (UNKNOWN) and no action reaches them until it ends.</summary>
    public void SetDown(string host, bool down)
    {
        lock (_lock) { if (down) _down.Add(host); else _down.Remove(host); }
    }

    /// <summary>True while at least one simulated host is in an outage.</summary>
    public bool AnyDown
    {
        get { lock (_lock) return _down.Count > 0; }
    }

    public bool IsDown(string? host)
    {
        if (host is null) return false;
        lock (_lock) return _down.Contains(host);
    }

    /// <summary>The fault that would fire for this action now, if any (consumes nothing).</summary>
    public SimulatedFault? Peek(string action, long instanceId)
    {
        lock (_lock) return _faults.FirstOrDefault(f => f.Action == action && (f.InstanceId is null || f.InstanceId == instanceId));
    }

    /// <summary>The fault that fires for this action now, if any (consumes one of its times).</summary>
    public SimulatedFault? Take(string action, long instanceId)
    {
        lock (_lock)
        {
            var index = _faults.FindIndex(f => f.Action == action && (f.InstanceId is null || f.InstanceId == instanceId));
            if (index < 0) return null;
            var fault = _faults[index] with { Fired = _faults[index].Fired + 1 };
            if (fault.Times is { } times && fault.Fired >= times) _faults.RemoveAt(index);
            else _faults[index] = fault;
            return fault;
        }
    }
}
