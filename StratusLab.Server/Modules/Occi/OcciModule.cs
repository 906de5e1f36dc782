using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Occi;

/// <summary>OCCI 1.1 (GFD.183/184/185) at /-/, /compute/, /storage/, /network/, /link/... : a front door over the modules' contracts.</summary>
internal static class OcciModule
{
    public static IServiceCollection AddOcciModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("occi");
        services.AddSingleton<OcciStore>();
        services.AddSingleton<OcciDoor>();
        return services;
    }
}
