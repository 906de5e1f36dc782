using Microsoft.Extensions.DependencyInjection.Extensions;
using Quartz;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Transfers;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Images;

internal static class ImagesModule
{
    public static IServiceCollection AddImagesModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("images", legacyUserVersions: [7]);
        services.AddModuleOptions<ImagesOptions>(configuration, "Images");
        services.AddSingleton<ImagesStore>();
        services.AddHttpDownloader();
        services.TryAddSingleton<QemuImg>();
        services.AddSingleton<ImageCache>();
        services.AddSingleton<IImageCache>(sp => sp.GetRequiredService<ImageCache>());
        services.AddSingleton<IImageCacheAdministration, ImageCacheAdministration>();
        services.AddSingleton<IImageCatalog, ImageCatalog>();
        services.AddHostedService<ImagesHost>();
        return services;
    }

    public static void ConfigureJobs(IQuartzBuilder q) =>
        q.ScheduleJob<Jobs.CacheEvictionJob>(
            t => t.WithIdentity("image-eviction", "images").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromMinutes(5)).RepeatForever()),
            j => j.WithIdentity(Jobs.CacheEvictionJob.Key));
}

/// <summary>Marks interrupted downloads and registers the bundled appliance before the server listens, so the first request finds the default image.</summary>
internal sealed class ImagesHost(ImageCache cache, ILogger<ImagesHost> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try { await cache.StartAsync(cancellationToken); }
        catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Registering the test appliance failed"); }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
