using StratusLab.Server.Modules.Ec2.Auth;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>The EC2 Query API (2016-11-15 subset) at /ec2/: a front door over the modules' contracts.</summary>
internal static class Ec2Module
{
    public static IServiceCollection AddEc2Module(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("ec2");
        services.AddModuleOptions<Ec2Options>(configuration, "Ec2");
        services.AddSingleton<Ec2Store>();
        services.AddSingleton<Ec2Authenticator>();
        services.AddSingleton<Ec2Actions>();
        return services;
    }
}
