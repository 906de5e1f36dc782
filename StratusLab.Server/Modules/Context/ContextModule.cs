using StratusLab.Server.Modules.Context.Contracts;

namespace StratusLab.Server.Modules.Context;

internal static class ContextModule
{
    public static IServiceCollection AddContextModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<IContextMedia, ContextMediaBuilder>();
        return services;
    }
}
