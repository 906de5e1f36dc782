using System.Data;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Quota limits (per user, else the configured defaults) and usage, changed in one write transaction.</summary>
internal sealed class QuotaLedger(IdentityStore store, IdentityOptions options) : IQuotaLedger, IUserDirectory
{
    public Task ReserveAsync(long userId, ResourceAmount amount, CancellationToken ct = default) =>
        store.Store.WriteAsync((_, tx) => ReserveAsync(tx, userId, amount), ct);

    public Task ReleaseAsync(long userId, ResourceAmount amount, CancellationToken ct = default) =>
        store.Store.WriteAsync((_, tx) => ReleaseAsync(tx, userId, amount), ct);

    public async Task ReserveAsync(IDbTransaction tx, long userId, ResourceAmount amount)
    {
        var c = tx.Connection ?? throw new InvalidOperationException("the transaction has no connection");
        var limits = await LimitsAsync(c, tx, userId);
        var usage = ToAmount(await store.GetUsageAsync(c, tx, userId));
        var excesses = QuotaMath.Excesses(limits, usage, amount);
        if (excesses.Count > 0)
        {
            var user = await store.FindUserAsync(userId, c, tx);
            throw new QuotaExceededException(user?.Name ?? "", excesses);
        }
        await store.SetUsageAsync(c, tx, userId, usage.Plus(amount));
    }

    public async Task ReleaseAsync(IDbTransaction tx, long userId, ResourceAmount amount)
    {
        var c = tx.Connection ?? throw new InvalidOperationException("the transaction has no connection");
        var usage = ToAmount(await store.GetUsageAsync(c, tx, userId));
        await store.SetUsageAsync(c, tx, userId, QuotaMath.Release(usage, amount));
    }

    /// <summary>See <see cref="QuotaAudit.CheckAsync"/>: one write transaction, so no reservation slips in between reading and repairing.</summary>
    internal static Task<IReadOnlyList<QuotaDrift>> AuditAsync(IdentityStore store, IEnumerable<IQuotaHolder> holders, bool repair, CancellationToken ct) =>
        store.Store.WriteAsync<IReadOnlyList<QuotaDrift>>(async (c, tx) =>
        {
            var held = new Dictionary<long, ResourceAmount>();
            foreach (var holder in holders)
                foreach (var (userId, amount) in await holder.HeldAsync(c, tx))
                    held[userId] = held.GetValueOrDefault(userId, ResourceAmount.Zero).Plus(amount);
            var stored = await store.ListUsageAsync(c, tx);
            var drifts = new List<QuotaDrift>();
            foreach (var userId in stored.Keys.Union(held.Keys).Order())
            {
                var s = stored.GetValueOrDefault(userId, ResourceAmount.Zero);
                var h = held.GetValueOrDefault(userId, ResourceAmount.Zero);
                if (s == h) continue;
                var user = await store.FindUserAsync(userId, c, tx);
                drifts.Add(new QuotaDrift(userId, user?.Name ?? $"(deleted user {userId})", s, h));
                if (repair && user is not null) await store.SetUsageAsync(c, tx, userId, h);
            }
            return drifts;
        }, ct);

    public async Task<QuotaView> GetAsync(long userId, CancellationToken ct = default)
    {
        await using var c = await store.Store.OpenAsync(ct);
        var user = await store.FindUserAsync(userId) ?? throw new NotFoundException($"User {userId}");
        return new QuotaView(user.Name, await LimitsAsync(c, null, userId), ToAmount(await store.GetUsageAsync(c, null, userId)));
    }

    internal async Task<ResourceAmount> LimitsAsync(IDbConnection c, IDbTransaction? tx, long userId)
    {
        var row = await store.FindQuotaAsync(c, tx, userId);
        var d = options.DefaultQuota;
        return new ResourceAmount(row?.Vms ?? d.Vms, row?.Cpus ?? d.Cpus, row?.MemoryMib ?? d.MemoryMiB, row?.StorageGib ?? d.StorageGiB);
    }

    static ResourceAmount ToAmount(UsageRow u) => new(u.Vms, u.Cpus, u.MemoryMib, u.StorageGib);

    public async Task<UserSummary?> FindAsync(long userId, CancellationToken ct = default)
    {
        var u = await store.FindUserAsync(userId);
        return u is null ? null : new UserSummary(u.Id, u.Name, u.Role, u.PrimaryGroup);
    }

    public async Task<UserSummary?> FindByNameAsync(string name, CancellationToken ct = default)
    {
        var u = await store.FindUserAsync(name);
        return u is null ? null : new UserSummary(u.Id, u.Name, u.Role, u.PrimaryGroup);
    }

    public async Task<string?> GroupNameAsync(long groupId, CancellationToken ct = default) => (await store.FindGroupAsync(groupId))?.Name;

    public async Task<long?> GroupIdAsync(string name, CancellationToken ct = default) => (await store.FindGroupAsync(name))?.Id;

    public async Task<long> SiteOwnerIdAsync(CancellationToken ct = default) => (await FindByNameAsync("admin", ct))?.Id ?? 1;
}
