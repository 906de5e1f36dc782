using StratusLab.Server.Cli;
using StratusLab.Server.Modules.Compute;
using StratusLab.Server.Modules.Context;
using StratusLab.Server.Modules.Ec2;
using StratusLab.Server.Modules.Identity;
using StratusLab.Server.Modules.Images;
using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Occi;
using StratusLab.Server.Modules.Pdisk;
using StratusLab.Server.Modules.Scheduling;
using StratusLab.Server.Modules.Web;
using StratusLab.Server.Modules.Marketplace;
using StratusLab.Server.Modules.Monitoring;
using StratusLab.Server.Modules.Services;
using StratusLab.Server.Platform;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;

// stratuslab serve | stratuslab admin <command> | stratuslab <client command>: one command line (Cli/ClientCli.cs)
return await ClientCli.RunAsync(args);

public partial class Program
{
    /// <summary>The server: every module named here, in order.</summary>
    public static async Task<WebApplication> BuildServerAsync(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddStratusLabSources(args);
        configure?.Invoke(builder);
        var options = builder.AddPlatform();

        AddModules(builder.Services, builder.Configuration);
        builder.AddJobs(options, IdentityModule.ConfigureJobs, SchedulingModule.ConfigureJobs, ImagesModule.ConfigureJobs, PdiskModule.ConfigureJobs(builder.Configuration),
            NetworkingModule.ConfigureJobs(builder.Configuration));

        var app = builder.Build();
        FileStream dataLock;
        try
        {
            // Every module's options at once, so one start lists every invalid key, before the data dir is touched.
            ServerConfiguration.ValidateAtStartup(app.Services);
            DataDirectory.Prepare(options);
            dataLock = DataDirectory.Lock(options);
        }
        catch (Exception e) when (e is ConfigurationException or DataDirectoryException)
        {
            await app.DisposeAsync();
            throw;
        }
        app.Lifetime.ApplicationStopped.Register(dataLock.Dispose);
        Migrator.Migrate(app.Services.GetRequiredService<Store>(), app.Services.GetServices<ModuleSchema>());
        app.UsePlatform();

        app.MapIdentityEndpoints();
        app.MapKeyPairEndpoints();
        app.MapMarketplaceEndpoints();
        app.MapImagesEndpoints();
        app.MapComputeEndpoints();
        app.MapNetworkingEndpoints();
        app.MapPdiskEndpoints();
        app.MapSchedulingEndpoints();
        app.MapGuestEndpoints();
        app.MapEc2Endpoints();
        app.MapOcciEndpoints();
        app.MapMonitoringEndpoints();
        app.MapServicesEndpoints();
        app.MapWebEndpoints();

        await app.Services.GetRequiredService<IdentityBootstrap>().EnsureAdminAsync();
        await app.Services.GetRequiredService<IdentityBootstrap>().RecomputeQuotaUsageAsync(app.Services.GetServices<StratusLab.Server.Modules.Identity.Contracts.IQuotaHolder>());
        await app.Services.GetRequiredService<NetworkingBootstrap>().EnsureDefaultNetworkAsync();
        return app;
    }

    /// <summary>Every module, in order; the order is also the order their store migrations run in.</summary>
    public static void AddModules(IServiceCollection services, IConfiguration configuration)
    {
        services.AddIdentityModule(configuration);
        services.AddMarketplaceModule(configuration);
        services.AddContextModule(configuration);
        services.AddImagesModule(configuration);
        services.AddComputeModule(configuration);
        services.AddNetworkingModule(configuration);
        services.AddPdiskModule(configuration);
        services.AddSchedulingModule(configuration);
        services.AddEc2Module(configuration);
        services.AddOcciModule(configuration);
        services.AddMonitoringModule(configuration);
        services.AddServicesModule(configuration);
        services.AddWebModule(configuration);
    }

    /// <summary>The store schema of every module, in module order, for what migrates without a server ('stratuslab admin', tests).</summary>
    public static IReadOnlyList<ModuleSchema> StoreSchemas()
    {
        var services = new ServiceCollection();
        AddModules(services, new ConfigurationBuilder().Build());
        return ModuleSchema.RegisteredIn(services);
    }

    public static async Task<int> ServeAsync(string[] args)
    {
        WebApplication app;
        try
        {
            app = await BuildServerAsync(args);
        }
        catch (Exception e) when (e is ConfigurationException or StoreTooNewException or DataDirectoryException)
        {
            Console.Error.WriteLine($"stratuslab serve: {e.Message}");
            return 2;
        }
        catch (Exception e)
        {
            // Any other start-up failure (the store, a module's bootstrap) is fatal too, and says so with a non-zero exit.
            Console.Error.WriteLine($"stratuslab serve: the server could not start: {e}");
            return 1;
        }
        var options = app.Services.GetRequiredService<ServerOptions>();
        app.Lifetime.ApplicationStarted.Register(() =>
            Console.WriteLine($"StratusLab Server ready on {options.Urls} (data dir {options.DataDir}, admin token in {options.AdminTokenPath})"));
        try
        {
            await app.RunAsync();
        }
        catch (Exception e)
        {
            // Kestrel could not listen, or a hosted service failed to start: the host never served, so this is no clean stop.
            Console.Error.WriteLine($"stratuslab serve: the server stopped on a fatal error: {e.Message}");
            await app.DisposeAsync();
            return 1;
        }
        return 0;
    }
}
