using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Modules.Scheduling.Expressions;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>Validates placement attributes at submit time; capacity is released back through <see cref="IHostAllocations"/>.</summary>
internal sealed class PlacementRules(SchedulingStore store, SchedulerSignal signal) : IPlacementRules, IHostAllocations
{
    public void Validate(string? requirements, string? policy)
    {
        if (requirements is not null)
        {
            try { Expr.Parse(requirements, HostState.AttributeNames); }
            catch (ExpressionException e) { throw ExpressionProblem("requirements", requirements, e); }
        }
        if (policy is not null)
        {
            try { Policy.Parse(policy); }
            catch (ExpressionException e) { throw ExpressionProblem("policy", policy, e); }
            catch (ArgumentException e) { throw new InvalidInputException("policy", e.Message); }
        }
    }

    static InvalidInputException ExpressionProblem(string field, string text, ExpressionException e)
    {
        var offset = field == "policy" && text.StartsWith("rank:", StringComparison.Ordinal) ? 5 : 0;
        var column = e.Position + offset;
        var error = new InvalidInputException(field, $"'{field}' has an error at column {column + 1}: {e.Message}.\n  {text}\n  {new string(' ', column)}^");
        error.Extensions["column"] = column + 1;
        return error;
    }

    public async Task<PlacementObstacle?> WhyNeverFitsAsync(long cpu, long memoryMiB, int count, CancellationToken ct = default)
    {
        // Disabled (drained) hosts count: they come back, and requests wait PENDING for them meanwhile.
        var hosts = await store.ListHostsAsync();
        if (hosts.Count == 0) return new("hosts", "no host is registered; an administrator must add one (POST /api/v1/hosts).");
        var biggest = $"the largest host has {hosts.Max(h => h.Cpus)} CPU and {hosts.Max(h => h.MemoryMib)} MiB; choose a smaller size";
        if (hosts.All(h => h.Cpus < cpu))
            return new("cpu", $"one instance needs {cpu} CPU, but {biggest}.");
        if (hosts.All(h => h.MemoryMib < memoryMiB))
            return new("memory", $"one instance needs {memoryMiB} MiB, but {biggest}.");
        if (hosts.All(h => h.Cpus < cpu || h.MemoryMib < memoryMiB))
            return new("cpu", $"one instance needs {cpu} CPU and {memoryMiB} MiB together, but no host has both; {biggest}.");
        var fits = hosts.Sum(h => Math.Min(h.Cpus / cpu, h.MemoryMib / memoryMiB));
        if (count > fits)
            return new("count", $"{count} instances of {cpu} CPU / {memoryMiB} MiB can never run at once: all hosts together hold at most {fits}.");
        return null;
    }

    public async Task ReleaseAsync(long instanceId, CancellationToken ct = default)
    {
        if (await store.ReleaseAsync(instanceId) > 0) signal.Wake();
    }

    public async Task MoveAsync(long instanceId, string host, CancellationToken ct = default)
    {
        await store.MoveAllocationAsync(instanceId, host);
        signal.Wake();
    }
}
