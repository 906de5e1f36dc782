using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Images;

internal sealed partial class ImageCache
{
    public const string ApplianceName = Platform.Configuration.Appliance.Name;

    /// <summary>Downloads an image into the cache without starting anything (admin prefetch).</summary>
    public async Task<CacheRow> PrefetchAsync(string image, CancellationToken ct)
    {
        var reference = await ParseAsync(image);
        if (reference.Kind == ImageSourceKind.Volume) throw new InvalidInputException("image", "A volume is already local; only Marketplace images and URLs are prefetched.");
        var key = reference.Kind == ImageSourceKind.Url ? "url:" + reference.Value : reference.Value;
        var wasReady = (await store.GetAsync(key))?.State == "ready";
        try { await EnsureOriginAsync(key, reference, ct); }
        catch (ImageUnavailableException e) { throw new InvalidInputException("image", $"The image could not be cached: {e.Message}", unprocessable: true); }
        if (wasReady) await store.HitAsync(key); // a prefetch of a cached image counts as a use for LRU eviction
        return (await store.GetAsync(key))!;
    }

    /// <summary>Removes a cached image now (admin evict); 409 while instances use copy-on-write clones of it.</summary>
    public async Task EvictAsync(string image, CancellationToken ct)
    {
        var reference = await ParseAsync(image);
        var key = reference.Kind == ImageSourceKind.Url ? "url:" + reference.Value : reference.Value;
        var row = await store.GetAsync(key) ?? throw new NotFoundException($"Cached image '{image}'");
        if (_inFlight.ContainsKey(key)) throw new ConflictException($"Image '{image}' is being downloaded; evict it when the download ends.");
        await RemoveAsync(row, ct);
    }

    async Task RemoveAsync(CacheRow row, CancellationToken ct)
    {
        if (row.OriginUuid is { } uuid && await volumes.FindAsync(Guid.Parse(uuid), ct) is not null)
            await volumes.DeleteAsync(Guid.Parse(uuid), ct); // 409 naming the snapshots while clones exist
        await store.DeleteAsync(row.Key);
        Evictions.Add(1);
        logger.LogInformation("Image {Key} evicted from the cache", row.Key);
    }

    /// <summary>Evicts least-recently-used images without clones while the cache is over Images:MaxCacheMiB, and any idle past Images:MaxIdleHours.</summary>
    public async Task<int> EvictAsync(CancellationToken ct)
    {
        var rows = (await store.ListAsync()).Where(r => r.State == "ready" && !_inFlight.ContainsKey(r.Key))
            .OrderBy(r => r.LastUsedAt ?? r.CreatedAt).ToList();
        var total = rows.Sum(r => r.SizeBytes ?? 0);
        var idleLimit = images.MaxIdleHours > 0 ? DateTimeOffset.UtcNow.AddHours(-images.MaxIdleHours) : DateTimeOffset.MinValue;
        var evicted = 0;
        foreach (var row in rows)
        {
            var idle = (row.LastUsedAt ?? row.CreatedAt) < idleLimit;
            if (total <= MaxCacheBytes && !idle) continue;
            try
            {
                await RemoveAsync(row, ct);
                total -= row.SizeBytes ?? 0;
                evicted++;
            }
            catch (ConflictException e)
            {
                logger.LogDebug("Image {Key} stays cached: {Reason}", row.Key, e.Detail);
            }
        }
        return evicted;
    }

    /// <summary>Gives a local image file a short name: a site-signed Marketplace entry, then cached as an ORIGIN.</summary>
    public async Task<CacheRow> RegisterLocalAsync(string name, string path, bool isDefault, CancellationToken ct, ImageRequirements? needs = null)
    {
        if (!File.Exists(path)) throw new InvalidInputException("path", $"'{path}' does not exist on the server; give the path of a qcow2 or raw image file.");
        var info = await qemuImg.InfoAsync(path, ct);
        var format = info.Format;
        if (format is not ("qcow2" or "raw")) throw new InvalidInputException("path", $"'{path}' is a {format} image; give a qcow2 or raw image.", unprocessable: true);
        if (info.BackingFile is not null) throw new InvalidInputException("path", $"'{path}' depends on a backing file; flatten it first (qemu-img convert -O qcow2).", unprocessable: true);
        var entry = await marketplace.RegisterSiteImageAsync(path, new SiteImageInfo
        {
            Title = name == ApplianceName ? "StratusLab test appliance" : name,
            Description = name == ApplianceName ? "Tiny Debian-based appliance: busybox, dropbear, context CD, guest API ready report." : null,
            Format = format,
            Os = needs?.Os ?? "linux",
            Tags = [name],
            MinMemoryMiB = needs?.MinMemoryMiB,
            MinCpu = needs?.MinCpu,
            MinDiskGiB = needs?.MinDiskGiB,
            DefaultUser = needs?.DefaultUser,
            ContextMethod = needs?.ContextMethod,
        }, ct);
        await store.SetNameAsync(name, entry.Identifier, isDefault);
        return await PrefetchAsync(entry.Identifier, ct);
    }

    /// <summary>On start: interrupted downloads are marked for resumption; the bundled appliance is registered (the default image).</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        var interrupted = await store.MarkInterruptedAsync();
        if (interrupted > 0) logger.LogInformation("{Count} image download(s) were interrupted by a restart; the next request resumes them", interrupted);
        // Compute:ApplianceImage read as configuration text: Images does not depend on Compute, and Compute validates the key.
        var path = Platform.Configuration.Appliance.ImagePath(configuration["Compute:ApplianceImage"]);
        if (path is null)
        {
            logger.LogWarning("The test appliance is not built yet, so there is no default image: run scripts/appliance/build.sh (scripts/run.sh does it)");
            return;
        }
        var names = await store.NamesAsync();
        await RegisterLocalAsync(ApplianceName, path, isDefault: !names.Any(n => n.IsDefault) || names.Any(n => n.IsDefault && n.Name == ApplianceName), ct);
    }
}
