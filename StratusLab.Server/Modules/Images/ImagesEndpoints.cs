using System.Security.Claims;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Images;

/// <summary>A cached image (or one being downloaded) as the API shows it.</summary>
internal sealed record CachedImageView(
    string Image, string Kind, string State, string? Identifier, IReadOnlyList<string> Names, bool IsDefault, string? Origin,
    long BytesDone, long? BytesTotal, long? SizeBytes, long Hits, string? Error, DateTimeOffset CreatedAt, DateTimeOffset? ReadyAt, DateTimeOffset? LastUsedAt)
{
    /// <summary>What the image declares it needs (minimum memory, CPUs, disk), its default login user, context method and OS; null for URL images.</summary>
    public ImageRequirements? Requirements { get; init; }
}

/// <summary>
/// Body of POST /images: give a local image file a name (admin), with what it needs: minMemoryMiB, minCpu, minDiskGiB,
/// defaultUser (the login user), contextMethod (opennebula or nocloud), os. These go into its signed Marketplace entry.
/// </summary>
internal sealed record RegisterImageRequest(string Name, string Path, bool Default = false,
    long? MinMemoryMiB = null, int? MinCpu = null, long? MinDiskGiB = null, string? DefaultUser = null, string? ContextMethod = null, string? Os = null);

/// <summary>Body of POST /images/prefetch.</summary>
internal sealed record PrefetchRequest(string Image);

internal static partial class ImagesEndpoints
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

    static async Task<Ok<IReadOnlyList<CachedImageView>>> ListImages(ImagesStore store, ImageCache cache, IMarketplaceCatalog marketplace, CancellationToken ct)
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
        for (var i = 0; i < views.Count; i++)
            if (views[i].Identifier is { } id) views[i] = views[i] with { Requirements = await RequirementsAsync(id, marketplace, ct) };
        return TypedResults.Ok<IReadOnlyList<CachedImageView>>(views);
    }

    static async Task<Created<CachedImageView>> RegisterImage(RegisterImageRequest body, ImageCache cache, ImagesStore store, IMarketplaceCatalog marketplace, IFreeSpaceGuard space, CancellationToken ct)
    {
        space.EnsureRoom("Registering an image");
        var name = Validate.Name(body.Name, "name");
        if (string.IsNullOrEmpty(body.Path) || !Path.IsPathFullyQualified(body.Path))
            throw ApiException.BadRequest("path", "'path' must be an absolute path of an image file on the server.");
        if (body.MinMemoryMiB is { } m) Validate.Range(m, "minMemoryMiB", 1, 4L * 1024 * 1024);
        if (body.MinCpu is { } c) Validate.Range(c, "minCpu", 1, 256);
        if (body.MinDiskGiB is { } d) Validate.Range(d, "minDiskGiB", 1, 1024 * 1024);
        if (body.DefaultUser is { } u && !LoginUserPattern().IsMatch(u))
            throw ApiException.BadRequest("defaultUser", $"'defaultUser' = '{Validate.Trim(u)}' is not a login name: a-z, 0-9, '_', '-', starting with a letter or '_', at most 32 characters (like debian).");
        if (body.ContextMethod is { } cm && !ImageRequirements.ContextMethods.Contains(cm))
            throw ApiException.BadRequest("contextMethod", $"'contextMethod' = '{Validate.Trim(cm)}' is not accepted; accepted values: {string.Join(", ", ImageRequirements.ContextMethods)}.");
        if (body.Os is { } os && (os.Length is 0 or > 64 || os.Any(char.IsControl)))
            throw ApiException.BadRequest("os", "'os' must be 1-64 printable characters, like debian or linux.");
        var needs = new ImageRequirements(body.MinMemoryMiB, body.MinCpu, body.MinDiskGiB, body.DefaultUser, body.ContextMethod, body.Os);
        var row = await cache.RegisterLocalAsync(name, body.Path, body.Default, ct, needs);
        return TypedResults.Created($"/api/v1/images/{name}", await ViewAsync(row, store, marketplace, ct));
    }

    static async Task<Ok<CachedImageView>> PrefetchImage(PrefetchRequest body, ClaimsPrincipal principal, IImageCacheAdministration admin, ImageCache cache,
        ImagesStore store, IMarketplaceCatalog marketplace, CancellationToken ct)
    {
        await admin.PrefetchAsync(principal.ToCaller(), body.Image, ct: ct);
        return TypedResults.Ok(await ViewAsync((await store.GetAsync(await cache.KeyOfAsync(body.Image.Trim())))!, store, marketplace, ct));
    }

    static async Task<NoContent> EvictImage(string image, ClaimsPrincipal principal, IImageCacheAdministration admin, CancellationToken ct)
    {
        // A URL arrives percent-encoded in the path ('/' stays %2F in route values).
        await admin.EvictAsync(principal.ToCaller(), Uri.UnescapeDataString(image), ct);
        return TypedResults.NoContent();
    }

    static async Task<CachedImageView> ViewAsync(CacheRow r, ImagesStore store, IMarketplaceCatalog marketplace, CancellationToken ct)
    {
        var aliases = (await store.NamesAsync()).Where(n => n.Identifier == r.Identifier).ToList();
        return new CachedImageView(r.Source, r.Kind, r.State, r.Identifier, aliases.Select(n => n.Name).ToList(), aliases.Any(n => n.IsDefault), r.OriginUuid,
            r.BytesDone, r.BytesTotal, r.SizeBytes, r.Hits, r.Error, r.CreatedAt, r.ReadyAt, r.LastUsedAt)
        {
            Requirements = r.Identifier is { } id ? await RequirementsAsync(id, marketplace, ct) : null,
        };
    }

    static async Task<ImageRequirements?> RequirementsAsync(string identifier, IMarketplaceCatalog marketplace, CancellationToken ct) =>
        await marketplace.FindLatestValidAsync(identifier, ct) is { } entry ? ImageRequirements.Of(entry) : null;

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z_][a-z0-9_-]{0,31}$")]
    private static partial System.Text.RegularExpressions.Regex LoginUserPattern();
}
