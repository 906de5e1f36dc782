namespace StratusLab.Server.Modules.Scheduling.Contracts;

/// <summary>Wakes the scheduler: a new PENDING instance, freed capacity, a host change.</summary>
public interface ISchedulerSignal
{
    void Wake();
}

/// <summary>Host capacity held by instances from placement until they end.</summary>
public interface IHostAllocations
{
    /// <summary>Gives an instance's capacity back (it ended, failed or was never started); wakes the scheduler.</summary>
    Task ReleaseAsync(long instanceId, CancellationToken ct = default);
}

/// <summary>Checks what an instance request asks of placement, before anything is written.</summary>
public interface IPlacementRules
{
    /// <summary>Throws a 400 naming the field when the requirement expression or policy is invalid.</summary>
    void Validate(string? requirements, string? policy);

    /// <summary>Null when <paramref name="count"/> instances of this size could ever fit on the registered hosts (disabled ones included: they come back), else why not (with the numbers).</summary>
    Task<PlacementObstacle?> WhyNeverFitsAsync(long cpu, long memoryMiB, int count, CancellationToken ct = default);
}

/// <summary>Why a request can never be placed: <see cref="Resource"/> is "cpu", "memory", "count" or "hosts".</summary>
public sealed record PlacementObstacle(string Resource, string Reason);
