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

    /// <summary>
    /// The latest valid entries matching <paramref name="text"/> in title, description, OS, endorser or tags (all when null),
    /// as the Marketplace pages search them; at most <paramref name="limit"/> (1..500).
    /// </summary>
    Task<IReadOnlyList<MetadataEntry>> SearchAsync(string? text, int limit = 50, CancellationToken ct = default);
}

/// <summary>The site branding of the human pages (Marketplace:Pages), so every page of the binary looks like one product.</summary>
public interface ISiteBranding
{
    /// <summary>The site title (Marketplace:Pages:Title).</summary>
    string Title { get; }
    /// <summary>The shared stylesheet (colours from Marketplace:Pages) and logo paths.</summary>
    string StylesheetPath { get; }
    string LogoPath { get; }
}
