using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Marketplace.Policy;

/// <summary>The site image policy over the Marketplace's entries, with the launch audit.</summary>
internal sealed class ImagePolicy(IMarketplaceCatalog catalog, MarketplaceCatalog entries, PolicyStore store, PolicyOptions options, TimeProvider clock, ILogger<ImagePolicy> logger)
    : IImagePolicy
{
    public PolicyLists ConfigLists { get; } = new(
        options.WhitelistEndorsers, options.BlacklistEndorsers, options.WhitelistImages, options.BlacklistImages,
        options.WhitelistChecksums.Select(c => c.ToLowerInvariant()).ToList(), options.BlacklistChecksums.Select(c => c.ToLowerInvariant()).ToList());

    public async Task<PolicyRuleSet> RulesAsync() => new(ConfigLists, await store.SiteListsAsync());

    public async Task<PolicyDecision> EvaluateAsync(string imageIdentifier, CancellationToken ct = default)
    {
        var entries = await catalog.FindEntriesAsync(imageIdentifier, ct);
        return PolicyRules.Evaluate(imageIdentifier, entries, await RulesAsync(), clock.GetUtcNow());
    }

    public async Task<IReadOnlyList<MetadataEntry>> LaunchableAsync(int limit, CancellationToken ct = default)
    {
        var valid = await entries.QueryAsync(new EntryQuery(Status: "valid", Limit: limit));
        var rules = await RulesAsync();
        var now = clock.GetUtcNow();
        // One query for every valid entry, then the rules in memory: the policy's decision per identifier without a query each.
        return valid.Where(e => e.Type == "machine").GroupBy(e => e.Identifier, StringComparer.Ordinal)
            .Select(g => PolicyRules.Evaluate(g.Key, g.ToList(), rules, now))
            .Where(d => d.Accepted && d.Entry is not null).Select(d => d.Entry!).ToList();
    }

    public Task<PolicyDecision> CheckLaunchAsync(string imageIdentifier, Caller caller, CancellationToken ct = default) =>
        CheckLaunchAsync(imageIdentifier, caller, null, ct);

    public async Task<PolicyDecision> CheckLaunchAsync(string imageIdentifier, Caller caller, string? instanceId, CancellationToken ct = default)
    {
        var decision = await EvaluateAsync(imageIdentifier ?? "", ct);
        var sha1 = decision.Entry?.Sha1 ?? (ImageIdentifier.IsWellFormed(decision.Identifier) ? ImageIdentifier.ToSha1Hex(decision.Identifier) : null);
        await store.InsertAuditAsync(new AuditRecord(0, decision.At, Truncate(decision.Identifier, 100), sha1, decision.Entry?.Endorser.Email,
            caller.UserId, caller.Name, instanceId, decision.Accepted, decision.Rule, decision.Source, decision.Reason));
        if (!decision.Accepted)
            logger.LogWarning("Launch of image {Identifier} by {User} refused by the site policy ({Rule}): {Reason}",
                Truncate(decision.Identifier, 100), caller.Name, decision.Rule, decision.Reason);
        return decision;
    }

    static string Truncate(string value, int length) => value.Length > length ? value[..length] : value;
}
