namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>Hypervisor drivers are keyed services named as in config and the API ("qemu", "simulated").</summary>
internal static class HypervisorDrivers
{
    public static IServiceCollection AddHypervisorDriver<T>(this IServiceCollection services, string name) where T : class, IHypervisorDriver
    {
        services.AddSingleton<T>();
        services.AddKeyedSingleton<IHypervisorDriver>(name, (sp, _) => sp.GetRequiredService<T>());
        services.AddSingleton<IHypervisorDriver>(sp => sp.GetRequiredService<T>());
        return services;
    }

    /// <summary>The driver an instance row names; an unknown name is a bug (the name was validated on the way in).</summary>
    public static IHypervisorDriver GetHypervisor(this IServiceProvider services, string name) =>
        services.GetKeyedService<IHypervisorDriver>(name) ?? throw new InvalidOperationException($"no hypervisor driver named '{name}'");
}
