using System.Runtime.CompilerServices;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Compute's side of monitoring (see <see cref="IInstanceStats"/>): rows from the store, counters from each VM's driver.</summary>
internal sealed class InstanceStats(ComputeStore store, IServiceProvider services, InstanceEvents events, ILogger<InstanceStats> logger) : IInstanceStats
{
    /// <summary>States in which a VM process exists and has counters.</summary>
    static readonly HashSet<InstanceState> Live = [InstanceState.Running, InstanceState.Suspended, InstanceState.Shutdown];

    /// <summary>At most this many VMs are asked at once: QMP and /proc reads are quick, but 100 VMs must not open 100 sockets together.</summary>
    const int Parallelism = 8;

    public async Task<IReadOnlyList<InstanceSnapshot>> SnapshotAsync(DateTimeOffset endedSince, CancellationToken ct = default)
    {
        var rows = await store.ListForStatsAsync(endedSince);
        var result = new InstanceSnapshot[rows.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, rows.Count), new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
            async (i, token) =>
            {
                var row = rows[i];
                InstanceCounters? counters = null;
                if (Live.Contains(row.StateValue))
                {
                    try
                    {
                        counters = await services.GetHypervisor(row.Driver).StatsAsync(new VmRef(row.Id, row.VmDir, (int?)row.Pid),
                            new VmStatsRequest(row.Cpu, row.MemoryMib, row.StartedAt ?? row.PlacedAt ?? row.CreatedAt), token);
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
                    {
                        // One slow or vanished VM costs its own sample, not the pass.
                        logger.LogDebug("Instance {Id}: no counters this pass: {Error}", row.Id, e.Message);
                    }
                }
                result[i] = new InstanceSnapshot(row.Id, row.Name, row.OwnerId, row.GroupId, row.Image, row.InstanceType, row.Cpu, row.MemoryMib,
                    row.State, row.Host, row.Driver, row.CreatedAt, row.StartedAt, row.EndedAt, counters);
            });
        return result;
    }

    public async Task<IReadOnlyDictionary<string, long>> CountByStateAsync(CancellationToken ct = default)
    {
        var counts = await store.CountByStateAsync();
        return Enum.GetValues<InstanceState>().Select(InstanceStateMachine.Name)
            .ToDictionary(s => s, s => counts.TryGetValue(s, out var n) ? n : 0);
    }

    public async IAsyncEnumerable<InstanceStateChange> WatchAsync([EnumeratorCancellation] CancellationToken ct)
    {
        using var subscription = events.Subscribe();
        await foreach (var e in subscription.Reader.ReadAllAsync(ct))
            yield return new InstanceStateChange(e.Id, e.State, e.Time);
    }
}
