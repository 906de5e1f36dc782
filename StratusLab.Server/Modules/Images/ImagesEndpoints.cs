using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Images;

/// <summary>A cached image (or one being downloaded) as the API shows it.</summary>
internal sealed record CachedImageView(
    string Image, string Kind, string State, string? Identifier, IReadOnlyList<string> Names, bool IsDefault, string? Origin,
    long BytesDone, long? BytesTotal, long? SizeBytes, long Hits, string? Error, DateTimeOffset CreatedAt, DateTimeOffset? ReadyAt, DateTimeOffset? LastUsedAt);

/// <summary>Body of POST /images: give a local image file a name (admin).</summary>
internal sealed record RegisterImageRequest(string Name, string Path, bool Default = false);

/// <summary>Body of POST /images/prefetch.</summary>
internal sealed record PrefetchRequest(string Image);

internal static class ImagesEndpoints
{
    public static RouteGroupBuilder MapImagesEndpoints(this IEndpointRouteBuilder app)
    {
        var images = app.MapGroup("/api/v1/images").RequireAuthorization().WithTags("Images");
        images.MapGet("", ListImages);
        images.MapPost("", RegisterImage).RequireAuthorization(Policies.Admin);
        images.MapPost("/prefetch", PrefetchImage).RequireAuthorization(Policies.Admin);
        images.MapDelete("/{image}", EvictImage).RequireAuthorization(Policies.Admin);
        return images;
    }

    static async Task<Ok<IReadOnlyList<CachedImageView>>> ListImages(ImagesStore store, ImageCache cache)
    {
        var names = await store.NamesAsync();
        var rows = await store.ListAsync();
        var views = rows.Select(r =>
        {
            var progress = cache.ProgressOf(r.Key.StartsWith("url:") ? r.Key[4..] : r.Key);
            var aliases = names.Where(n => n.Identifier == r.Identifier).ToList();
            return new CachedImageView(r.Source, r.Kind, r.State, r.Identifier, aliases.Select(n => n.Name).ToList(), aliases.Any(n => n.IsDefault), r.OriginUuid,
                progress?.BytesDone ?? r.BytesDone, progress?.BytesTotal ?? r.BytesTotal, r.SizeBytes, r.Hits, r.Error, r.CreatedAt, r.ReadyAt, r.LastUsedAt);
        }).ToList();
        return TypedResults.Ok<IReadOnlyList<CachedImageView>>(views);
    }

    static async Task<Created<CachedImageView>> RegisterImage(RegisterImageRequest body, ImageCache cache, ImagesStore store, IFreeSpaceGuard space, CancellationToken ct)
    {
        space.EnsureRoom("Registering an image");
        var name = Validate.Name(body.Name, "name");
        if (string.IsNullOrEmpty(body.Path) || !Path.IsPathFullyQualified(body.Path))
            throw ApiException.BadRequest("path", "'path' must be an absolute path of an image file on the server.");
        var row = await cache.RegisterLocalAsync(name, body.Path, body.Default, ct);
        return TypedResults.Created($"/api/v1/images/{name}", await ViewAsync(row, store));
    }

    static async Task<Ok<CachedImageView>> PrefetchImage(PrefetchRequest body, ImageCache cache, ImagesStore store, IFreeSpaceGuard space, CancellationToken ct)
    {
        space.EnsureRoom("Prefetching an image");
        return TypedResults.Ok(await ViewAsync(await cache.PrefetchAsync(body.Image, ct), store));
    }

    static async Task<NoContent> EvictImage(string image, ImageCache cache, CancellationToken ct)
    {
        // A URL arrives percent-encoded in the path ('/' stays %2F in route values).
        await cache.EvictAsync(Uri.UnescapeDataString(image), ct);
        return TypedResults.NoContent();
    }

    static async Task<CachedImageView> ViewAsync(CacheRow r, ImagesStore store)
    {
        var aliases = (await store.NamesAsync()).Where(n => n.Identifier == r.Identifier).ToList();
        return new CachedImageView(r.Source, r.Kind, r.State, r.Identifier, aliases.Select(n => n.Name).ToList(), aliases.Any(n => n.IsDefault), r.OriginUuid,
            r.BytesDone, r.BytesTotal, r.SizeBytes, r.Hits, r.Error, r.CreatedAt, r.ReadyAt, r.LastUsedAt);
    }
}
