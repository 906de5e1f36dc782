using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Images.Contracts;

/// <summary>
/// One entry of the image cache as administrators see it: <see cref="Image"/> is the Marketplace identifier or URL it was
/// cached from (what prefetch and evict take), <see cref="State"/> downloading, ready or failed (with <see cref="Error"/>),
/// and while downloading <see cref="BytesDone"/> of <see cref="BytesTotal"/> (null when the server did not say).
/// </summary>
public sealed record CacheEntry(string Image, string Kind, string State, string? Identifier, IReadOnlyList<string> Names, bool IsDefault,
    long BytesDone, long? BytesTotal, long? SizeBytes, long Hits, string? Error, DateTimeOffset CreatedAt, DateTimeOffset? ReadyAt, DateTimeOffset? LastUsedAt);

/// <summary>
/// The image cache's administration, for administrators only (ForbiddenException otherwise): the REST API
/// (/api/v1/images, /prefetch, DELETE /{image}) and the dashboard's admin images page both go through it.
/// </summary>
public interface IImageCacheAdministration
{
    /// <summary>Every cache entry, with the live progress of downloads in flight.</summary>
    Task<IReadOnlyList<CacheEntry>> ListAsync(Caller caller, CancellationToken ct = default);

    /// <summary>
    /// Caches a Marketplace image (by identifier) or a URL image now. Waits for the download at most <paramref name="wait"/>
    /// (null: until it ends); the download belongs to the server and goes on after the wait. Returns the entry as it is then.
    /// InvalidInputException naming 'image' for a reference that is not one, or (422) for an image that could not be cached.
    /// </summary>
    Task<CacheEntry> PrefetchAsync(Caller caller, string image, TimeSpan? wait = null, CancellationToken ct = default);

    /// <summary>Removes a cached image now; NotFoundException when it is not cached, ConflictException while it downloads or instances use clones of it.</summary>
    Task EvictAsync(Caller caller, string image, CancellationToken ct = default);
}
