using System.Data;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>An amount of the resources quotas count. Limits use -1 for unlimited.</summary>
public sealed record ResourceAmount(long Vms, long Cpus, long MemoryMiB, long StorageGiB)
{
    public static readonly ResourceAmount Zero = new(0, 0, 0, 0);

    public ResourceAmount Plus(ResourceAmount o) => new(Vms + o.Vms, Cpus + o.Cpus, MemoryMiB + o.MemoryMiB, StorageGiB + o.StorageGiB);
    public ResourceAmount Minus(ResourceAmount o) => new(Vms - o.Vms, Cpus - o.Cpus, MemoryMiB - o.MemoryMiB, StorageGiB - o.StorageGiB);
}

/// <summary>One resource a request would push past its limit.</summary>
public sealed record QuotaExcess(string Resource, long Limit, long Used, long Requested)
{
    public override string ToString() => $"{Resource}: {Used} used + {Requested} requested > limit {Limit}";
}

/// <summary>
/// A reservation would push a user past a quota (409). <see cref="Exceeded"/> lists each resource over its limit;
/// the problem document carries it as "exceeded".
/// </summary>
public sealed class QuotaExceededException : DomainException
{
    public QuotaExceededException(string user, IReadOnlyList<QuotaExcess> exceeded)
        : base(Rejection.Conflict,
            $"Quota exceeded for user '{user}': {string.Join("; ", exceeded)}. " +
            "Free resources (terminate instances, delete volumes) or ask an administrator to raise the quota.")
    {
        Exceeded = exceeded;
        Extensions["exceeded"] = exceeded;
    }

    public IReadOnlyList<QuotaExcess> Exceeded { get; }
}

/// <summary>A user's limits and what they use now.</summary>
public sealed record QuotaView(string User, ResourceAmount Limits, ResourceAmount Usage);

/// <summary>Pure quota arithmetic.</summary>
public static class QuotaMath
{
    public const long Unlimited = -1;

    public static IReadOnlyList<QuotaExcess> Excesses(ResourceAmount limits, ResourceAmount usage, ResourceAmount request)
    {
        var list = new List<QuotaExcess>();
        void Check(string name, long limit, long used, long requested)
        {
            if (requested > 0 && limit != Unlimited && used + requested > limit)
                list.Add(new QuotaExcess(name, limit, used, requested));
        }
        Check("vms", limits.Vms, usage.Vms, request.Vms);
        Check("cpus", limits.Cpus, usage.Cpus, request.Cpus);
        Check("memoryMiB", limits.MemoryMiB, usage.MemoryMiB, request.MemoryMiB);
        Check("storageGiB", limits.StorageGiB, usage.StorageGiB, request.StorageGiB);
        return list;
    }

    /// <summary>Usage after giving back <paramref name="release"/>, never below zero.</summary>
    public static ResourceAmount Release(ResourceAmount usage, ResourceAmount release) => new(
        Math.Max(0, usage.Vms - release.Vms), Math.Max(0, usage.Cpus - release.Cpus),
        Math.Max(0, usage.MemoryMiB - release.MemoryMiB), Math.Max(0, usage.StorageGiB - release.StorageGiB));
}

/// <summary>Reserves and releases quota atomically; used by every module that consumes resources.</summary>
public interface IQuotaLedger
{
    /// <summary>Adds <paramref name="amount"/> to the user's usage, or throws a 409 naming every exceeded limit.</summary>
    Task ReserveAsync(long userId, ResourceAmount amount, CancellationToken ct = default);

    /// <summary>Gives back what a reservation took.</summary>
    Task ReleaseAsync(long userId, ResourceAmount amount, CancellationToken ct = default);



    Task<QuotaView> GetAsync(long userId, CancellationToken ct = default);

    /// <summary>
    /// <see cref="ReserveAsync(long, ResourceAmount, CancellationToken)"/> inside the caller's write transaction, so the
    /// usage changes with the rows that justify it, or not at all.
    /// </summary>
    Task ReserveAsync(IDbTransaction tx, long userId, ResourceAmount amount);

    /// <summary><see cref="ReleaseAsync(long, ResourceAmount, CancellationToken)"/> inside the caller's write transaction.</summary>
    Task ReleaseAsync(IDbTransaction tx, long userId, ResourceAmount amount);
}

/// <summary>
/// A module whose rows hold quota (Compute's instances, Pdisk's volumes): what each user's rows hold now. The stored
/// usage must equal the sum over all holders; <see cref="QuotaAudit"/> compares and recomputes.
/// </summary>
public interface IQuotaHolder
{
    /// <summary>The module, for reports ("compute", "pdisk").</summary>
    string Name { get; }

    /// <summary>Per user id, what the module's rows hold, read on <paramref name="c"/> (in <paramref name="tx"/> when given).</summary>
    Task<IReadOnlyDictionary<long, ResourceAmount>> HeldAsync(IDbConnection c, IDbTransaction? tx);
}

/// <summary>A user whose stored usage differs from what their instances and volumes hold.</summary>
public sealed record QuotaDrift(long UserId, string User, ResourceAmount Stored, ResourceAmount Held)
{
    public override string ToString() =>
        $"quota drift for user '{User}' (id {UserId}): stored usage vms={Stored.Vms} cpus={Stored.Cpus} memoryMiB={Stored.MemoryMiB} storageGiB={Stored.StorageGiB}, " +
        $"held by instances and volumes vms={Held.Vms} cpus={Held.Cpus} memoryMiB={Held.MemoryMiB} storageGiB={Held.StorageGiB}";
}

/// <summary>Compares stored quota usage with what the holders' rows hold, and recomputes it (start-up, 'stratuslab admin check --repair').</summary>
public static class QuotaAudit
{
    /// <summary>
    /// Every user whose stored usage differs from the sum over <paramref name="holders"/>; with <paramref name="repair"/>
    /// the usage is set to that sum in the same transaction. Works on the store directly (the store must be migrated).
    /// </summary>
    public static Task<IReadOnlyList<QuotaDrift>> CheckAsync(Store store, IEnumerable<IQuotaHolder> holders, bool repair, CancellationToken ct = default) =>
        Identity.QuotaLedger.AuditAsync(new IdentityStore(store), holders, repair, ct);
}

/// <summary>Looks users up for other modules.</summary>
public interface IUserDirectory
{
    Task<UserSummary?> FindAsync(long userId, CancellationToken ct = default);
    Task<UserSummary?> FindByNameAsync(string name, CancellationToken ct = default);

    /// <summary>A group's name, or null when there is no such group.</summary>
    Task<string?> GroupNameAsync(long groupId, CancellationToken ct = default);

    /// <summary>A group's id by name, or null when there is no such group.</summary>
    Task<long?> GroupIdAsync(string name, CancellationToken ct = default);

    /// <summary>The user who owns what the site itself keeps (cached image origins, saved images): the admin user, else user 1.</summary>
    Task<long> SiteOwnerIdAsync(CancellationToken ct = default);
}

/// <summary>A user as other modules see it.</summary>
public sealed record UserSummary(long Id, string Name, string Role, long PrimaryGroupId);
