using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Policy;

/// <summary>See <see cref="IPolicyAdministration"/>.</summary>
internal sealed class PolicyAdministration(ImagePolicy policy, PolicyStore store) : IPolicyAdministration
{
    public async Task<PolicyOverview> GetAsync(Caller caller, CancellationToken ct = default)
    {
        RequireAdmin(caller);
        var rules = await policy.RulesAsync();
        var change = await store.LastChangeAsync();
        return new PolicyOverview(ToSet(rules.Config), ToSet(rules.Site), ToSet(rules.Effective), change?.At, change?.By, policy.UrlImages, policy.VolumeImages);
    }

    public async Task<IReadOnlyList<LaunchAuditEntry>> AuditAsync(Caller caller, LaunchAuditQuery q, CancellationToken ct = default)
    {
        RequireAdmin(caller);
        return (await store.QueryAuditAsync(new AuditQuery(q.Identifier, q.User, q.Accepted, q.Since, q.Until, q.Limit, q.Offset)))
            .Select(r => new LaunchAuditEntry(r.Id, r.At, r.Identifier, r.Sha1, r.Endorser, r.UserId, r.UserName, r.InstanceId, r.Accepted, r.Rule, r.Source, r.Reason))
            .ToList();
    }

    internal static PolicyListSet ToSet(PolicyLists l) => new(l.WhitelistEndorsers, l.BlacklistEndorsers, l.WhitelistImages, l.BlacklistImages,
        l.WhitelistChecksums, l.BlacklistChecksums);

    internal static PolicyLists ToLists(PolicyListSet l) => new(l.WhitelistEndorsers, l.BlacklistEndorsers, l.WhitelistImages, l.BlacklistImages,
        l.WhitelistChecksums, l.BlacklistChecksums);

    static void RequireAdmin(Caller caller)
    {
        if (!caller.IsAdmin) throw new ForbiddenException("Only administrators may see the site image policy and its audit trail; ask an administrator.");
    }
}
