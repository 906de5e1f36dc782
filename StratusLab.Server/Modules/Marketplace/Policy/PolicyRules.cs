using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;

namespace StratusLab.Server.Modules.Marketplace.Policy;

/// <summary>The six lists of a site image policy. Values are e-mails, image identifiers and hex checksums.</summary>
internal sealed record PolicyLists(
    IReadOnlyList<string> WhitelistEndorsers, IReadOnlyList<string> BlacklistEndorsers,
    IReadOnlyList<string> WhitelistImages, IReadOnlyList<string> BlacklistImages,
    IReadOnlyList<string> WhitelistChecksums, IReadOnlyList<string> BlacklistChecksums)
{
    public static readonly PolicyLists Empty = new([], [], [], [], [], []);

    public PolicyLists Union(PolicyLists other) => new(
        Merge(WhitelistEndorsers, other.WhitelistEndorsers), Merge(BlacklistEndorsers, other.BlacklistEndorsers),
        Merge(WhitelistImages, other.WhitelistImages), Merge(BlacklistImages, other.BlacklistImages),
        Merge(WhitelistChecksums, other.WhitelistChecksums), Merge(BlacklistChecksums, other.BlacklistChecksums));

    static IReadOnlyList<string> Merge(IReadOnlyList<string> a, IReadOnlyList<string> b) =>
        a.Concat(b).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
}

/// <summary>The policy in force: the config file's lists and those set through the API ("site"); both always apply.</summary>
internal sealed record PolicyRuleSet(PolicyLists Config, PolicyLists Site)
{
    public PolicyLists Effective => Config.Union(Site);
}

/// <summary>
/// Pure evaluation of the site image policy. For each endorser's latest entry, in this order: blacklisted image,
/// checksum or endorser refuses; deprecated or expired refuses; a non-empty whitelist that does not list the image,
/// one of its checksums or its endorser refuses. The image may run when at least one entry survives; the newest
/// surviving entry is the one to launch.
/// </summary>
internal static class PolicyRules
{
    public static PolicyDecision Evaluate(string identifier, IReadOnlyList<MetadataEntry> entries, PolicyRuleSet rules, DateTimeOffset at)
    {
        if (!ImageIdentifier.IsWellFormed(identifier))
            return Refuse(identifier, "invalid-identifier", "request",
                $"Refused: '{Platform.Http.Validate.Trim(identifier)}' is not a Marketplace image identifier (27 characters of A-Z a-z 0-9 - _).", null, [], at);
        if (Source(rules, r => r.BlacklistImages, identifier, exact: true) is { } imageSource)
            return Refuse(identifier, "blacklist-image", imageSource, $"Refused: the image {identifier} is on the site's image blacklist ({imageSource}).",
                entries.FirstOrDefault(), entries.Select(e => Candidate(e, false, "blacklist-image", imageSource, "image blacklisted")).ToList(), at);
        if (entries.Count == 0)
            return Refuse(identifier, "no-entry", "marketplace",
                $"Refused: the Marketplace has no published entry for {identifier}; only Marketplace images may run. Upload its signed metadata ('stratuslab upload-metadata') or choose another image.",
                null, [], at);

        var candidates = entries.OrderByDescending(e => e.Created).Select(e => Judge(identifier, e, rules)).ToList();
        var index = candidates.FindIndex(c => c.Accepted);
        if (index >= 0)
        {
            var chosen = candidates[index];
            return new PolicyDecision(identifier, true, chosen.Rule, chosen.Source,
                $"Accepted: the entry by {chosen.Endorser} (created {MetadataXml.Format(chosen.Created)}) {chosen.Reason}.",
                entries.OrderByDescending(e => e.Created).ElementAt(index), candidates, at);
        }
        var first = candidates[0];
        var reason = candidates.Count == 1
            ? $"Refused: the only entry, by {first.Endorser}, {first.Reason}."
            : $"Refused: none of the {candidates.Count} endorsers' entries may run; the newest, by {first.Endorser}, {first.Reason}.";
        return Refuse(identifier, first.Rule, first.Source, reason, entries.OrderByDescending(e => e.Created).First(), candidates, at);
    }

    static PolicyCandidate Judge(string identifier, MetadataEntry e, PolicyRuleSet rules)
    {
        var checksums = e.Checksums.Select(c => c.Value).Append(e.Sha1).ToList();
        if (checksums.Select(c => Source(rules, r => r.BlacklistChecksums, c)).FirstOrDefault(s => s is not null) is { } cs)
            return Candidate(e, false, "blacklist-checksum", cs, $"has a checksum on the site's checksum blacklist ({cs})");
        if (Source(rules, r => r.BlacklistEndorsers, e.Endorser.Email) is { } es)
            return Candidate(e, false, "blacklist-endorser", es, $"is by an endorser on the site's endorser blacklist ({es})");
        if (e.Status == EntryStatus.Deprecated)
            return Candidate(e, false, "deprecated", "marketplace", $"is deprecated{(e.DeprecatedBy is { } by ? $" by {by}" : "")}: {e.Deprecated}");
        if (e.Status == EntryStatus.Expired)
            return Candidate(e, false, "expired", "marketplace", $"expired on {MetadataXml.Format(e.Valid!.Value)}");
        if (e.Status != EntryStatus.Valid)
            return Candidate(e, false, "pending", "marketplace", "is not published yet");

        var effective = rules.Effective;
        var matched = new List<(string Rule, string Source)>();
        if (effective.WhitelistImages.Count > 0)
        {
            if (Source(rules, r => r.WhitelistImages, identifier, exact: true) is not { } s)
                return Candidate(e, false, "whitelist-image", Origin(rules, r => r.WhitelistImages), "is for an image that is not on the site's image whitelist");
            matched.Add(("whitelist-image", s));
        }
        if (effective.WhitelistChecksums.Count > 0)
        {
            if (checksums.Select(c => Source(rules, r => r.WhitelistChecksums, c)).FirstOrDefault(x => x is not null) is not { } s)
                return Candidate(e, false, "whitelist-checksum", Origin(rules, r => r.WhitelistChecksums), "has no checksum on the site's checksum whitelist");
            matched.Add(("whitelist-checksum", s));
        }
        if (effective.WhitelistEndorsers.Count > 0)
        {
            if (Source(rules, r => r.WhitelistEndorsers, e.Endorser.Email) is not { } s)
                return Candidate(e, false, "whitelist-endorser", Origin(rules, r => r.WhitelistEndorsers), "is by an endorser who is not on the site's endorser whitelist");
            matched.Add(("whitelist-endorser", s));
        }
        return matched.Count == 0
            ? Candidate(e, true, "default-allow", "default", "is valid and no rule of the site refuses it")
            : Candidate(e, true, matched[^1].Rule, matched[^1].Source, $"is valid and on the site's {string.Join(" and ", matched.Select(m => m.Rule.Replace("whitelist-", "") + " whitelist"))}");
    }

    static PolicyCandidate Candidate(MetadataEntry e, bool accepted, string rule, string source, string reason) =>
        new(e.Endorser.Email, e.Created, e.Status, accepted, rule, source, reason);

    static PolicyDecision Refuse(string identifier, string rule, string source, string reason, MetadataEntry? entry, IReadOnlyList<PolicyCandidate> candidates, DateTimeOffset at) =>
        new(identifier, false, rule, source, reason, entry, candidates, at);

    /// <summary>"config" or "site" when the list holds the value (config first), else null. Identifiers match exactly, others ignoring case.</summary>
    static string? Source(PolicyRuleSet rules, Func<PolicyLists, IReadOnlyList<string>> list, string value, bool exact = false)
    {
        var comparison = exact ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        if (list(rules.Config).Any(v => string.Equals(v, value, comparison))) return "config";
        if (list(rules.Site).Any(v => string.Equals(v, value, comparison))) return "site";
        return null;
    }

    static string Origin(PolicyRuleSet rules, Func<PolicyLists, IReadOnlyList<string>> list) =>
        list(rules.Config).Count > 0 ? (list(rules.Site).Count > 0 ? "config+site" : "config") : "site";
}
