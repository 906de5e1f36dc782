using System.Data;
using Dapper;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>What volumes hold: each volume row's storage quota (whole GiB), in every state until the row is removed.</summary>
internal sealed class VolumeQuotaHolder : IQuotaHolder
{
    public string Name => "pdisk";

    public async Task<IReadOnlyDictionary<long, ResourceAmount>> HeldAsync(IDbConnection c, IDbTransaction? tx) =>
        (await c.QueryAsync<(long OwnerId, long Gib)>("""
            SELECT owner_id, SUM(quota_gib) FROM pdisk_volumes WHERE quota_gib > 0 GROUP BY owner_id
            """, transaction: tx))
        .ToDictionary(r => r.OwnerId, r => new ResourceAmount(0, 0, 0, r.Gib));
}
