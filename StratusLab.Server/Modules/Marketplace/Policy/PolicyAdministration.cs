using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

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

    public async Task<PolicyOverview> SetSiteListsAsync(Caller caller, PolicyListSet l, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) throw new ForbiddenException("Only administrators may change the site image policy; ask an administrator.");
        var lists = new PolicyLists(
            Emails(l.WhitelistEndorsers, "whitelistEndorsers"), Emails(l.BlacklistEndorsers, "blacklistEndorsers"),
            Identifiers(l.WhitelistImages, "whitelistImages"), Identifiers(l.BlacklistImages, "blacklistImages"),
            Checksums(l.WhitelistChecksums, "whitelistChecksums"), Checksums(l.BlacklistChecksums, "blacklistChecksums"));
        await store.ReplaceSiteListsAsync(lists, caller.Name);
        return await GetAsync(caller, ct);
    }

    static IReadOnlyList<string> Emails(IReadOnlyList<string>? values, string field) => Each(values, field, v =>
        MetadataXml.EmailPattern().IsMatch(v) ? v : throw new InvalidInputException(field, $"'{field}' contains '{Validate.Trim(v)}', which is not an e-mail address."));

    static IReadOnlyList<string> Identifiers(IReadOnlyList<string>? values, string field) => Each(values, field, v =>
        ImageIdentifier.IsWellFormed(v) ? v : throw new InvalidInputException(field, $"'{field}' contains '{Validate.Trim(v)}', which is not an image identifier (27 characters of A-Z a-z 0-9 - _)."));

    static IReadOnlyList<string> Checksums(IReadOnlyList<string>? values, string field) => Each(values, field, v =>
        v.Length is 32 or 40 or 56 or 64 or 96 or 128 && v.All(Uri.IsHexDigit) ? v.ToLowerInvariant()
            : throw new InvalidInputException(field, $"'{field}' contains '{Validate.Trim(v)}', which is not a hex MD5, SHA-1 or SHA-2 checksum."));

    static IReadOnlyList<string> Each(IReadOnlyList<string>? values, string field, Func<string, string> check)
    {
        if (values is { Count: > 10_000 }) throw new InvalidInputException(field, $"'{field}' has more than 10000 values.");
        return (values ?? []).Select(v => check(v.Trim())).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
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
