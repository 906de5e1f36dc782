using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Images;

/// <summary>See <see cref="IImageCacheAdministration"/>: the cache's entries with live progress, prefetch and evict, for administrators.</summary>
internal sealed class ImageCacheAdministration(ImageCache cache, ImagesStore store, IFreeSpaceGuard space) : IImageCacheAdministration
{
    public async Task<IReadOnlyList<CacheEntry>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        RequireAdmin(caller, "see the image cache");
        var names = await store.NamesAsync();
        return (await store.ListAsync()).Select(r => EntryOf(r, names)).ToList();
    }

    public async Task<CacheEntry> PrefetchAsync(Caller caller, string image, TimeSpan? wait = null, CancellationToken ct = default)
    {
        RequireAdmin(caller, "prefetch images");
        space.EnsureRoom("Prefetching an image");
        image = (image ?? "").Trim();
        if (image.Length == 0) throw new InvalidInputException("image", "Give a Marketplace identifier or an http(s) URL of an image to prefetch.");
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (wait is { } w) waiting.CancelAfter(w);
        try { await cache.PrefetchAsync(image, waiting.Token); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The wait is over, not the download: it goes on in the server, and the entry shows its progress.
        }
        var key = await cache.KeyOfAsync(image);
        var row = await store.GetAsync(key) ?? throw new NotFoundException($"Cached image '{image}'");
        return EntryOf(row, await store.NamesAsync());
    }

    public Task EvictAsync(Caller caller, string image, CancellationToken ct = default)
    {
        RequireAdmin(caller, "evict images");
        return cache.EvictAsync(image, ct);
    }

    CacheEntry EntryOf(CacheRow r, IReadOnlyList<NameRow> names)
    {
        var progress = r.State == "downloading" ? cache.ProgressOf(r.Key.StartsWith("url:", StringComparison.Ordinal) ? r.Key[4..] : r.Key) : null;
        var aliases = names.Where(n => n.Identifier == r.Identifier).ToList();
        return new CacheEntry(r.Source, r.Kind, r.State, r.Identifier, aliases.Select(n => n.Name).ToList(), aliases.Any(n => n.IsDefault),
            progress?.BytesDone ?? r.BytesDone, progress?.BytesTotal ?? r.BytesTotal, r.SizeBytes, r.Hits, r.Error, r.CreatedAt, r.ReadyAt, r.LastUsedAt);
    }

    static void RequireAdmin(Caller caller, string what)
    {
        if (!caller.IsAdmin) throw new ForbiddenException($"Only administrators may {what}; ask an administrator.");
    }
}
