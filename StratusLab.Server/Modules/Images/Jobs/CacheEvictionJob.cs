using Quartz;

namespace StratusLab.Server.Modules.Images.Jobs;

/// <summary>Evicts least-recently-used and idle images from the cache.</summary>
[DisallowConcurrentExecution]
internal sealed class CacheEvictionJob(ImageCache cache) : IJob
{
    public static readonly JobKey Key = new("image-eviction", "images");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct) => await cache.EvictAsync(ct);
}
