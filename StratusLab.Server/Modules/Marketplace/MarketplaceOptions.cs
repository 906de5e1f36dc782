using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Marketplace;

/// <summary>The Marketplace section: entry limits, the site endorser, mail and the public pages.</summary>
internal sealed class MarketplaceOptions : IValidatedOptions
{
    public long MaxEntryBytes { get; set; } = 10 * 1024 * 1024;
    public string SiteEndorserEmail { get; set; } = "site-admin@localhost";
    public int SiteEntryValidDays { get; set; } = 3650;
    public List<string> WhitelistedCertificates { get; set; } = [];
    public int MaxClockSkewMinutes { get; set; } = 10;
    public MarketplaceMailOptions Mail { get; set; } = new();
    public MarketplacePagesOptions Pages { get; set; } = new();

    const string EmailPattern = @"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$", ColourPattern = @"^#[0-9A-Fa-f]{3}([0-9A-Fa-f]{3})?$";

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.Range("Marketplace:MaxEntryBytes", MaxEntryBytes, 4096, 100L << 20);
        problems.Range("Marketplace:SiteEntryValidDays", SiteEntryValidDays, 1, 36500);
        problems.Range("Marketplace:MaxClockSkewMinutes", MaxClockSkewMinutes, 0, 1440);
        problems.EachMatches("Marketplace:SiteEndorserEmail", [SiteEndorserEmail], EmailPattern, "an e-mail address such as site-admin@localhost");
        problems.EachMatches("Marketplace:WhitelistedCertificates", WhitelistedCertificates, "^([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$", "SHA-256 (or SHA-1) certificate fingerprints in hex");
        problems.Range("Marketplace:Mail:SmtpPort", Mail.SmtpPort, 1, 65535);
        problems.EachMatches("Marketplace:Mail:From", [Mail.From], EmailPattern, "an e-mail address");
        problems.EachMatches("Marketplace:Pages colours", [Pages.PrimaryColour, Pages.AccentColour, Pages.BackgroundColour], ColourPattern, "#rgb or #rrggbb");
        if (Pages.LogoFile.Length > 0 && !File.Exists(Pages.LogoFile))
            problems.Add($"Marketplace:Pages:LogoFile = '{Pages.LogoFile}' does not exist; accepted values: empty (the built-in logo), or the path of a PNG, SVG or JPEG file.");
        return problems;
    }
}

/// <summary>Marketplace:Mail: how endorsement confirmations are sent (SMTP, or files in a pickup directory).</summary>
internal sealed class MarketplaceMailOptions
{
    public string SmtpHost { get; set; } = "";
    public int SmtpPort { get; set; } = 587;
    public bool StartTls { get; set; } = true;
    public string User { get; set; } = "";
    public string Password { get; set; } = "";
    public string From { get; set; } = "marketplace@localhost";
    public string PickupDir { get; set; } = "";
}

/// <summary>Marketplace:Pages: the title, logo and colours of the public pages.</summary>
internal sealed class MarketplacePagesOptions
{
    public string Title { get; set; } = "StratusLab Marketplace";
    public string LogoFile { get; set; } = "";
    public string PrimaryColour { get; set; } = "#1f4e79";
    public string AccentColour { get; set; } = "#e8a317";
    public string BackgroundColour { get; set; } = "#f6f8fa";
}

/// <summary>The Policy section: which endorsers, images and checksums this site accepts or refuses.</summary>
internal sealed class PolicyOptions : IValidatedOptions
{
    public List<string> WhitelistEndorsers { get; set; } = [];
    public List<string> BlacklistEndorsers { get; set; } = [];
    public List<string> WhitelistImages { get; set; } = [];
    public List<string> BlacklistImages { get; set; } = [];
    public List<string> WhitelistChecksums { get; set; } = [];
    public List<string> BlacklistChecksums { get; set; } = [];
    /// <summary>Launches from an http(s) URL image: allow, deny or admins-only.</summary>
    public string UrlImages { get; set; } = "allow";
    /// <summary>Launches that boot from a persistent volume: allow, deny or admins-only.</summary>
    public string VolumeImages { get; set; } = "allow";

    const string EmailPattern = @"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$", ImagePattern = "^[A-P][A-Za-z0-9_-]{26}$",
        ChecksumPattern = "^([0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{56}|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{96}|[0-9A-Fa-f]{128})$";

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.EachMatches("Policy:WhitelistEndorsers", WhitelistEndorsers, EmailPattern, "endorser e-mail addresses");
        problems.EachMatches("Policy:BlacklistEndorsers", BlacklistEndorsers, EmailPattern, "endorser e-mail addresses");
        problems.EachMatches("Policy:WhitelistImages", WhitelistImages, ImagePattern, "27-character image identifiers");
        problems.EachMatches("Policy:BlacklistImages", BlacklistImages, ImagePattern, "27-character image identifiers");
        problems.EachMatches("Policy:WhitelistChecksums", WhitelistChecksums, ChecksumPattern, "hex MD5, SHA-1 or SHA-2 checksums");
        problems.EachMatches("Policy:BlacklistChecksums", BlacklistChecksums, ChecksumPattern, "hex MD5, SHA-1 or SHA-2 checksums");
        problems.OneOf("Policy:UrlImages", UrlImages, "allow", "deny", "admins-only");
        problems.OneOf("Policy:VolumeImages", VolumeImages, "allow", "deny", "admins-only");
        return problems;
    }
}
