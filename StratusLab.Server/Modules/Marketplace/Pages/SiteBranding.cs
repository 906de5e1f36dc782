using StratusLab.Server.Modules.Marketplace.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Pages;

/// <summary>The Marketplace pages' branding, shared with the web dashboard.</summary>
internal sealed class SiteBranding(MarketplaceOptions options) : ISiteBranding
{
    public string Title => options.Pages.Title;
    public string StylesheetPath => "/marketplace/style.css";
    public string LogoPath => "/marketplace/logo";
}
