
// The conventional namespace of AddX extensions, so a module registers its schema in one line without a using.
using StratusLab.Server.Platform.Data;

namespace Microsoft.Extensions.DependencyInjection;

public static class ModuleSchemaRegistration
{
    /// <summary>
    /// Registers the calling module's embedded migrations (<c>Modules/&lt;Module&gt;/Migrations/*.sql</c>, key = folder name in lower case).
    /// <paramref name="legacyUserVersions"/>: see <see cref="ModuleSchema.LegacyUserVersions"/>.
    /// </summary>
    public static IServiceCollection AddStoreSchema(this IServiceCollection services, string module, IReadOnlyList<int>? legacyUserVersions = null)
    {
        if (services.Any(d => d.ServiceType == typeof(ModuleSchema) && ((ModuleSchema)d.ImplementationInstance!).Module == module))
            return services;
        services.AddSingleton(ModuleSchema.Embedded(module, legacyUserVersions));
        return services;
    }
}
