using StratusLab.Server.Modules.Monitoring.Accounting;
using StratusLab.Server.Modules.Monitoring.Contracts;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Monitoring;

/// <summary>
/// Monitoring and accounting in one module: both are built from the same sample pass (one pull of counters from
/// Compute, one transaction), and a usage record is the per-period sum of the deltas the samples see.
/// </summary>
internal static class MonitoringModule
{
    public static IServiceCollection AddMonitoringModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("monitoring");
        services.AddModuleOptions<MonitoringOptions>(configuration, "Monitoring");
        services.AddSingleton<MonitoringStore>();
        services.AddSingleton<MonitoringGauges>();
        services.AddSingleton<KpiService>();
        services.AddSingleton<IKpiReader>(sp => sp.GetRequiredService<KpiService>());
        services.AddSingleton<UsageReports>();
        services.AddSingleton<MonitoringSampler>();
        services.AddHostedService(sp => sp.GetRequiredService<MonitoringSampler>());
        return services;
    }

    public static void MapMonitoringEndpoints(this WebApplication app)
    {
        MonitoringEndpoints.MapMonitoringEndpoints(app);
        app.MapAccountingEndpoints();
    }
}
