using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Jobs;

namespace StratusLab.Server.Modules.Networking;

public static class NetworkingModule
{
    public static IServiceCollection AddNetworkingModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<NetworkingStore>();
        services.AddSingleton<UserNetworkDriver>();
        services.AddSingleton<BridgeNetworkDriver>();
        services.AddSingleton<INetworkDriver>(sp => sp.GetRequiredService<UserNetworkDriver>());
        services.AddSingleton<INetworkDriver>(sp => sp.GetRequiredService<BridgeNetworkDriver>());
        services.AddSingleton<NetworkDriverRegistry>();
        services.AddSingleton<InstanceNetworking>();
        services.AddSingleton<IInstanceNetworking>(sp => sp.GetRequiredService<InstanceNetworking>());
        services.AddSingleton<NetworkRequests>();
        services.AddSingleton<SecurityGroupRequests>();
        services.AddSingleton<NetworkingBootstrap>();
        services.AddHostedService<NetworkReconciler>();
        return services;
    }
}
