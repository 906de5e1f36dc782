using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>
/// The site image policy: an image may run only if a valid (published, not expired, not deprecated) Marketplace entry
/// for it survives the site's blacklists and whitelists of endorsers, image identifiers and checksums.
/// </summary>
public interface IImagePolicy
{
    /// <summary>Evaluates the policy for <paramref name="imageIdentifier"/> without recording anything (for checks and previews).</summary>
    Task<PolicyDecision> EvaluateAsync(string imageIdentifier, CancellationToken ct = default);

    /// <summary>
    /// The machine images the policy lets run now: for each identifier with a valid entry (at most <paramref name="limit"/>
    /// entries, newest first), the entry a launch would use, when the policy accepts it. Front doors list these (OCCI os_tpl).
    /// </summary>
    Task<IReadOnlyList<MetadataEntry>> LaunchableAsync(int limit, CancellationToken ct = default);

    /// <summary>
    /// Evaluates the policy for a launch by <paramref name="caller"/> and writes the audit record (accepted or refused:
    /// identifier, checksum, endorser, user, time, rule). Call it at every launch, cached image or not; launch only when
    /// <see cref="PolicyDecision.Accepted"/>. An identifier that is not in StratusLab form is refused, not thrown.
    /// </summary>
    Task<PolicyDecision> CheckLaunchAsync(string imageIdentifier, Caller caller, CancellationToken ct = default);

    /// <summary>As <see cref="CheckLaunchAsync(string, Caller, CancellationToken)"/>, recording the instance the launch is for.</summary>
    Task<PolicyDecision> CheckLaunchAsync(string imageIdentifier, Caller caller, string? instanceId, CancellationToken ct = default);

    /// <summary>
    /// The site's switch (Policy:UrlImages, Policy:VolumeImages: allow, deny, admins-only) for a launch whose image is not a
    /// Marketplace entry, judged for <paramref name="caller"/>, without recording anything.
    /// </summary>
    PolicyDecision EvaluateSource(LaunchSource source, string reference, Caller caller);

    /// <summary>
    /// As <see cref="EvaluateSource"/>, and writes the same launch audit record as a Marketplace image (the URL or volume uuid
    /// as its identifier). Call it at every launch from a URL or a volume; launch only when <see cref="PolicyDecision.Accepted"/>.
    /// </summary>
    Task<PolicyDecision> CheckSourceLaunchAsync(LaunchSource source, string reference, Caller caller, string? instanceId, CancellationToken ct = default);
}

/// <summary>Where a launch's image comes from when it is not a Marketplace entry.</summary>
public enum LaunchSource
{
    /// <summary>An http(s) URL, downloaded into the image cache.</summary>
    Url,
    /// <summary>A persistent volume used as the boot disk.</summary>
    Volume,
}

/// <summary>
/// The policy's answer. <see cref="Rule"/> names the rule that decided (e.g. "blacklist-endorser", "whitelist-image",
/// "no-entry", "expired", "deprecated", "default-allow"), <see cref="Source"/> where it comes from ("config", "site"
/// for rules set through the API, "marketplace" for entry status), <see cref="Reason"/> says it for humans.
/// <see cref="Entry"/> is the entry a launch should use when accepted (newest surviving), or the one refused.
/// </summary>
public sealed record PolicyDecision(
    string Identifier,
    bool Accepted,
    string Rule,
    string Source,
    string Reason,
    MetadataEntry? Entry,
    IReadOnlyList<PolicyCandidate> Candidates,
    DateTimeOffset At);

/// <summary>How the policy judged one endorser's latest entry for the image.</summary>
public sealed record PolicyCandidate(string Endorser, DateTimeOffset Created, EntryStatus Status, bool Accepted, string Rule, string Source, string Reason);
