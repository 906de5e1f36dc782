using StratusLab.Server.Modules.Services.Contracts;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Services;

/// <summary>Multi-VM services with roles, dependencies and elasticity (StratusLab's Claudia, OpenNebula's OneFlow).</summary>
internal static class ServicesModule
{
    public static IServiceCollection AddServicesModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("services");
        services.AddModuleOptions<ServicesOptions>(configuration, "Services");
        services.AddSingleton<ServiceStore>();
        services.AddSingleton<TemplateValidator>();
        services.AddSingleton<ServiceManager>();
        services.AddSingleton<IServices>(sp => sp.GetRequiredService<ServiceManager>());
        services.AddHostedService<ServiceEvaluator>();
        return services;
    }

    public static void MapServicesEndpoints(this WebApplication app) => ServicesEndpoints.Map(app);
}
