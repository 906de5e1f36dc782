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

    /// <summary>The cache key of an image reference (a Marketplace identifier, or "url:" and the URL).</summary>
    public async Task<string> KeyOfAsync(string image)
    {
        var reference = await ParseAsync(image);
        return reference.Kind == ImageSourceKind.Url ? "url:" + reference.Value : reference.Value;
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
        // An unfinished download of this image goes with it: nothing of a removed image stays on disk.
        var (partial, downloaded) = PartialFilesOf(row.Key);
        File.Delete(partial);
        File.Delete(downloaded);
        await store.DeleteAsync(row.Key);
        Evictions.Add(1);
        logger.LogInformation("Image {Key} evicted from the cache", row.Key);
    }

    /// <summary>
    /// Evicts least-recently-used images without clones while the cache is over Images:MaxCacheMiB, any idle past
    /// Images:MaxIdleHours, and superseded versions of URL images once no clone uses them; removes partial downloads
    /// untouched for Images:PartialMaxAgeMinutes.
    /// </summary>
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
            // A superseded version (key '<url>#<identifier>') serves no new launch: it stays only while clones use it.
            var superseded = row.Key.StartsWith("url:", StringComparison.Ordinal) && row.Identifier is { } id && row.Key.EndsWith("#" + id, StringComparison.Ordinal);
            if (total <= MaxCacheBytes && !idle && !superseded) continue;
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
        await RemovePartialsAsync(ct);
        return evicted;
    }

    /// <summary>
    /// Partial files (interrupted downloads, leftovers of a save or an unpacking) that no running transfer writes and that
    /// are older than Images:PartialMaxAgeMinutes are removed; the next request for such an image starts from zero.
    /// </summary>
    async Task<int> RemovePartialsAsync(CancellationToken ct)
    {
        var dir = Path.Combine(CacheDir, "partial");
        if (!Directory.Exists(dir)) return 0;
        var busy = _inFlight.Keys.Select(k => Path.GetFileNameWithoutExtension(PartialFilesOf(k).Partial)).ToHashSet();
        var cutoff = DateTime.UtcNow.AddMinutes(-images.PartialMaxAgeMinutes);
        var rows = (await store.ListAsync()).ToDictionary(r => Path.GetFileNameWithoutExtension(PartialFilesOf(r.Key).Partial), r => r);
        var removed = 0;
        foreach (var file in Directory.GetFiles(dir))
        {
            ct.ThrowIfCancellationRequested();
            // Companion files (.img.raw, .img.qcow2) belong to the transfer of their stem.
            var stem = Path.GetFileName(file).Split('.')[0];
            if (busy.Contains(stem) || _saving.ContainsKey(stem) || File.GetLastWriteTimeUtc(file) > cutoff) continue;
            // A download may have started since the list was taken.
            if (_inFlight.Keys.Any(k => Path.GetFileNameWithoutExtension(PartialFilesOf(k).Partial) == stem)) continue;
            File.Delete(file);
            removed++;
            if (rows.TryGetValue(stem, out var row) && row.State != "ready")
                logger.LogInformation("Partial download of image {Key} removed after {Minutes} min untouched (Images:PartialMaxAgeMinutes); the next request starts again",
                    row.Key, images.PartialMaxAgeMinutes);
            else
                logger.LogInformation("Leftover partial file {File} removed", file);
        }
        return removed;
    }

    /// <summary>The image's download was cut short by a server stop (it resumes, with Range, on the next request).</summary>
    public async Task<bool> DownloadInterruptedAsync(ImageReference reference, CancellationToken ct = default)
    {
        if (reference.Kind is not (ImageSourceKind.Marketplace or ImageSourceKind.Url)) return false;
        var key = reference.Kind == ImageSourceKind.Url ? "url:" + reference.Value : reference.Value;
        if (await store.GetAsync(key) is not { } row || row.State == "ready") return false;
        return row.State == "downloading" || row.Error == ImagesStore.Interrupted || File.Exists(PartialFilesOf(key).Partial);
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
