namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>The Marketplace as other modules see it: look-ups of published entries and registration of the site's own images.</summary>
public interface IMarketplaceCatalog
{
    /// <summary>
    /// The newest valid entry (published, not expired, not deprecated) for <paramref name="identifier"/> over every endorser,
    /// or null when there is none. The site policy is not applied here: use <see cref="IImagePolicy"/> for launch decisions.
    /// </summary>
    Task<MetadataEntry?> FindLatestValidAsync(string identifier, CancellationToken ct = default);

    /// <summary>The latest published entry of each endorser for <paramref name="identifier"/>, whatever its status, newest first.</summary>
    Task<IReadOnlyList<MetadataEntry>> FindEntriesAsync(string identifier, CancellationToken ct = default);

    /// <summary>
    /// Makes a local image file a Marketplace image: computes its bytes, SHA-1 and SHA-256, builds the entry
    /// (location = <see cref="SiteImageInfo.Location"/> or a file:// URL), signs it with the site key and publishes it
    /// under the site endorser (confirmed and whitelisted). Idempotent: the same file content returns the existing
    /// valid site entry instead of adding another. Throws <see cref="FileNotFoundException"/> when the file is missing.
    /// </summary>
    Task<MetadataEntry> RegisterSiteImageAsync(string imagePath, SiteImageInfo info, CancellationToken ct = default);

    /// <summary>The e-mail address the site signs its own entries with (Marketplace:SiteEndorserEmail).</summary>
    string SiteEndorserEmail { get; }
}
