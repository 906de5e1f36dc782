using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Mail;
using StratusLab.Server.Modules.Marketplace.Policy;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Marketplace;

internal static class MarketplaceModule
{
    public static IServiceCollection AddMarketplaceModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("marketplace", legacyUserVersions: [4]);
        services.AddModuleOptions<MarketplaceOptions>(configuration, "Marketplace");
        services.AddModuleOptions<PolicyOptions>(configuration, "Policy");
        services.AddSingleton<MarketplaceStore>();
        services.AddSingleton<SiteKey>();
        services.AddSingleton<IMailSender, SmtpMailSender>();
        services.AddSingleton<MarketplaceCatalog>();
        services.AddSingleton<IMarketplaceCatalog>(sp => sp.GetRequiredService<MarketplaceCatalog>());
        services.AddSingleton<ISiteBranding, Pages.SiteBranding>();
        services.AddSingleton<PolicyStore>();
        services.AddSingleton<ImagePolicy>();
        services.AddSingleton<IImagePolicy>(sp => sp.GetRequiredService<ImagePolicy>());
        services.AddSingleton<IPolicyAdministration, Policy.PolicyAdministration>();
        services.AddHostedService<MarketplaceStartup>();
        return services;
    }
}

/// <summary>First start: generates the site key in the background, so the server is ready at once and site registrations wait for it.</summary>
internal sealed class MarketplaceStartup(SiteKey siteKey, ILogger<MarketplaceStartup> logger) : IHostedService
{
    Task? _work;

    public Task StartAsync(CancellationToken ct)
    {
        _work = Task.Run(async () =>
        {
            try { await siteKey.GetAsync(); }
            catch (Exception e) { logger.LogError(e, "Cannot load or create the site signing key {Path}", siteKey.Path); }
        }, CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => _work ?? Task.CompletedTask;
}
