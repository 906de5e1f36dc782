using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>The six lists of a site image policy (e-mails, image identifiers, hex checksums).</summary>
public sealed record PolicyListSet(
    IReadOnlyList<string> WhitelistEndorsers, IReadOnlyList<string> BlacklistEndorsers,
    IReadOnlyList<string> WhitelistImages, IReadOnlyList<string> BlacklistImages,
    IReadOnlyList<string> WhitelistChecksums, IReadOnlyList<string> BlacklistChecksums);

/// <summary>The site image policy: the config file's lists, those set through the API, both together, and who changed them last.</summary>
public sealed record PolicyOverview(PolicyListSet Config, PolicyListSet Site, PolicyListSet Effective, DateTimeOffset? UpdatedAt, string? UpdatedBy,
    string UrlImages, string VolumeImages);

/// <summary>One launch decision of the audit trail.</summary>
public sealed record LaunchAuditEntry(long Id, DateTimeOffset At, string Identifier, string? Sha1, string? Endorser, long? UserId, string UserName,
    string? InstanceId, bool Accepted, string Rule, string Source, string Reason);

/// <summary>Filters of the audit trail; null means any. Newest first.</summary>
public sealed record LaunchAuditQuery(string? Identifier = null, string? User = null, bool? Accepted = null, DateTimeOffset? Since = null,
    DateTimeOffset? Until = null, int Limit = 100, int Offset = 0);

/// <summary>The site image policy and its launch audit trail, for administrators only (403 otherwise): the REST API and the dashboard read them here.</summary>
public interface IPolicyAdministration
{
    Task<PolicyOverview> GetAsync(Caller caller, CancellationToken ct = default);

    Task<IReadOnlyList<LaunchAuditEntry>> AuditAsync(Caller caller, LaunchAuditQuery query, CancellationToken ct = default);

    /// <summary>
    /// Replaces the site's lists (those set through the API; the configuration file's stay), each value checked: e-mail
    /// addresses for endorsers, image identifiers, hex checksums. InvalidInputException names the list at fault
    /// (whitelistEndorsers, blacklistImages, ...) and nothing is changed. Returns the policy now in force.
    /// </summary>
    Task<PolicyOverview> SetSiteListsAsync(Caller caller, PolicyListSet lists, CancellationToken ct = default);
}
