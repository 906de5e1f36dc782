using StratusLab.Server.Cli;
using StratusLab.Server.Modules.Compute;
using StratusLab.Server.Modules.Context;
using StratusLab.Server.Modules.Identity;
using StratusLab.Server.Modules.Images;
using StratusLab.Server.Modules.Networking;
using StratusLab.Server.Modules.Pdisk;
using StratusLab.Server.Modules.Scheduling;
using StratusLab.Server.Modules.Marketplace;
using StratusLab.Server.Platform;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;

// stratuslab serve | stratuslab admin <command> | stratuslab <client command>
return args switch
{
    ["serve", .. var rest] => await Program.ServeAsync(rest),
    ["admin", .. var rest] => await AdminCli.RunAsync(rest),
    _ => await ClientCli.RunAsync(args),
};

public partial class Program
{
    /// <summary>The server: every module named here, in order.</summary>
    public static async Task<WebApplication> BuildServerAsync(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddStratusLabSources(args);
        configure?.Invoke(builder);
        var options = builder.AddPlatform();

        builder.Services.AddIdentityModule(builder.Configuration);
        builder.Services.AddMarketplaceModule(builder.Configuration);
        builder.Services.AddContextModule(builder.Configuration);
        builder.Services.AddImagesModule(builder.Configuration);
        builder.Services.AddComputeModule(builder.Configuration);
        builder.Services.AddNetworkingModule(builder.Configuration);
        builder.Services.AddPdiskModule(builder.Configuration);
        builder.Services.AddSchedulingModule(builder.Configuration);
        builder.AddJobs(options, IdentityModule.ConfigureJobs, SchedulingModule.ConfigureJobs, ImagesModule.ConfigureJobs, PdiskModule.ConfigureJobs);

        DataDirectory.Prepare(options);
        var dataLock = DataDirectory.Lock(options);
        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(dataLock.Dispose);
        Migrator.Migrate(app.Services.GetRequiredService<Store>());
        app.UsePlatform();

        app.MapIdentityEndpoints();
        app.MapMarketplaceEndpoints();
        app.MapImagesEndpoints();
        app.MapComputeEndpoints();
        app.MapNetworkingEndpoints();
        app.MapPdiskEndpoints();
        app.MapSchedulingEndpoints();
        app.MapGuestEndpoints();

        await app.Services.GetRequiredService<IdentityBootstrap>().EnsureAdminAsync();
        await app.Services.GetRequiredService<NetworkingBootstrap>().EnsureDefaultNetworkAsync();
        return app;
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
        var options = app.Services.GetRequiredService<ServerOptions>();
        app.Lifetime.ApplicationStarted.Register(() =>
            Console.WriteLine($"StratusLab Server ready on {options.Urls} (data dir {options.DataDir}, admin token in {options.AdminTokenPath})"));
        await app.RunAsync();
        return 0;
    }
}
