using System.Data;
using Dapper;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>What instances hold: one VM, its CPUs and memory for each row whose quota_held is set (from admission until it ends).</summary>
internal sealed class InstanceQuotaHolder : IQuotaHolder
{
    public string Name => "compute";

    public async Task<IReadOnlyDictionary<long, ResourceAmount>> HeldAsync(IDbConnection c, IDbTransaction? tx) =>
        (await c.QueryAsync<(long OwnerId, long Vms, long Cpus, long MemoryMib)>("""
            SELECT owner_id, COUNT(*), SUM(cpu), SUM(memory_mib) FROM compute_instances WHERE quota_held = 1 GROUP BY owner_id
            """, transaction: tx))
        .ToDictionary(r => r.OwnerId, r => new ResourceAmount(r.Vms, r.Cpus, r.MemoryMib, 0));
}
