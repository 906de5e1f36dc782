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

    /// <summary>The switches for launches that are not Marketplace entries (config only).</summary>
    public string UrlImages => options.UrlImages;
    public string VolumeImages => options.VolumeImages;

    public async Task<PolicyRuleSet> RulesAsync() => new(ConfigLists, await store.SiteListsAsync());

    public async Task<PolicyDecision> EvaluateAsync(string imageIdentifier, CancellationToken ct = default)
    {
        var entries = await catalog.FindEntriesAsync(imageIdentifier, ct);
        return PolicyRules.Evaluate(imageIdentifier, entries, await RulesAsync(), clock.GetUtcNow());
    }

    /// <summary>The last answer of <see cref="LaunchableAsync"/>: for which change count and limit, and until when (the first expiry).</summary>
    sealed record LaunchableAnswer(long Changes, int Limit, DateTimeOffset Until, IReadOnlyList<MetadataEntry> Entries);

    LaunchableAnswer? _launchable;

    public async Task<IReadOnlyList<MetadataEntry>> LaunchableAsync(int limit, CancellationToken ct = default)
    {
        // Read before computing: a write meanwhile moves the counter past it, so the answer is not reused after that write.
        var changes = await store.ChangesAsync();
        var now = clock.GetUtcNow();
        if (Volatile.Read(ref _launchable) is { } last && last.Changes == changes && last.Limit == limit && now < last.Until) return last.Entries;
        var valid = await entries.QueryAsync(new EntryQuery(Status: "valid", Limit: limit));
        var rules = await RulesAsync();
        // One query for every valid entry, then the rules in memory: the policy's decision per identifier without a query each.
        var launchable = valid.Where(e => e.Type == "machine").GroupBy(e => e.Identifier, StringComparer.Ordinal)
            .Select(g => PolicyRules.Evaluate(g.Key, g.ToList(), rules, now))
            .Where(d => d.Accepted && d.Entry is not null).Select(d => d.Entry!).ToList();
        // The answer holds until an entry it read expires (time changes an entry's status without a write).
        var until = valid.Select(e => e.Valid).Where(v => v is not null).Select(v => v!.Value).DefaultIfEmpty(DateTimeOffset.MaxValue).Min();
        Volatile.Write(ref _launchable, new LaunchableAnswer(changes, limit, until, launchable));
        return launchable;
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

    public PolicyDecision EvaluateSource(LaunchSource source, string reference, Caller caller)
    {
        var (key, setting, what) = source == LaunchSource.Url
            ? ("Policy:UrlImages", options.UrlImages, "URL images")
            : ("Policy:VolumeImages", options.VolumeImages, "volumes as boot disks");
        var rule = (source == LaunchSource.Url ? "url-images-" : "volume-images-") + setting;
        var (accepted, reason) = setting switch
        {
            "deny" => (false, $"{key} is 'deny': this site runs no {what}; use a Marketplace image (stratuslab search-image)"),
            "admins-only" when !caller.IsAdmin => (false, $"{key} is 'admins-only': only administrators may launch {what}; use a Marketplace image (stratuslab search-image)"),
            "admins-only" => (true, $"{key} is 'admins-only' and {caller.Name} is an administrator"),
            _ => (true, $"{key} is 'allow'"),
        };
        return new PolicyDecision(reference, accepted, rule, "config", reason, null, [], clock.GetUtcNow());
    }

    public async Task<PolicyDecision> CheckSourceLaunchAsync(LaunchSource source, string reference, Caller caller, string? instanceId, CancellationToken ct = default)
    {
        var decision = EvaluateSource(source, reference, caller);
        await store.InsertAuditAsync(new AuditRecord(0, decision.At, Truncate(reference, 100), null, null,
            caller.UserId, caller.Name, instanceId, decision.Accepted, decision.Rule, decision.Source, decision.Reason));
        if (!decision.Accepted)
            logger.LogWarning("Launch of {Source} image {Reference} by {User} refused by the site policy ({Rule}): {Reason}",
                source, Truncate(reference, 100), caller.Name, decision.Rule, decision.Reason);
        return decision;
    }

    static string Truncate(string value, int length) => value.Length > length ? value[..length] : value;
}
