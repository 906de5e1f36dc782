using System.Globalization;
using Quartz;
using StratusLab.Server.Platform.Configuration;

using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Jobs;

namespace StratusLab.Server.Modules.Networking;

internal static class NetworkingModule
{
    public static IServiceCollection AddNetworkingModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("networking", legacyUserVersions: [6]);
        services.AddModuleOptions<NetworkingOptions>(configuration, "Networking");
        services.AddSingleton<NetworkingStore>();
        services.AddKeyedSingleton<INetworkDriver, UserNetworkDriver>(NetworkDriverNames.User);
        services.AddKeyedSingleton<INetworkDriver, BridgeNetworkDriver>(NetworkDriverNames.Bridge);
        services.AddSingleton<InstanceNetworking>();
        services.AddSingleton<IInstanceNetworking>(sp => sp.GetRequiredService<InstanceNetworking>());
        services.AddSingleton<NetworkRequests>();
        services.AddSingleton<INetworks>(sp => sp.GetRequiredService<NetworkRequests>());
        services.AddSingleton<SecurityGroupRequests>();
        services.AddSingleton<ISecurityGroups>(sp => sp.GetRequiredService<SecurityGroupRequests>());
        services.AddSingleton<NetworkingBootstrap>();
        services.AddSingleton<NetworkReconciler>();
        services.AddHostedService<NetworkingStartup>();
        return services;
    }

    public static Action<IQuartzBuilder> ConfigureJobs(IConfiguration configuration) => q =>
        q.ScheduleJob<NetworkReconcileJob>(
            t => t.WithIdentity("network-reconcile", "networking").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromSeconds(ReconcileIntervalSeconds(configuration))).RepeatForever()),
            j => j.WithIdentity(NetworkReconcileJob.Key));

    // Read before the options are validated: a value the validation refuses stops the server before Quartz starts.
    static int ReconcileIntervalSeconds(IConfiguration configuration) =>
        int.TryParse(configuration["Networking:ReconcileIntervalSeconds"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? seconds : new NetworkingOptions().ReconcileIntervalSeconds;
}
