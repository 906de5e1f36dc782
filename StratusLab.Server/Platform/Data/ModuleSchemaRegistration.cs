using StratusLab.Server.Platform.Data;

// The conventional namespace of AddX extensions, so a module registers its schema in one line without a using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>How a module hands its store schema to the <see cref="Migrator"/>: one line in its AddXModule.</summary>
public static class ModuleSchemaRegistration
{
    /// <summary>
    /// Registers a module's embedded migrations (<c>Modules/&lt;Module&gt;/Migrations/*.sql</c>; <paramref name="module"/> is the folder name in lower case). Registering the same module twice keeps the first.
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
