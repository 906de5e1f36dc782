using System.Security.Claims;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Jobs;
using StratusLab.Server.Modules.Pdisk.Transfers;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Pdisk;

internal static partial class PdiskEndpoints
{
    public static RouteGroupBuilder MapPdiskEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/volumes").RequireAuthorization().WithTags("Pdisk");

        api.MapPost("", CreateVolume);
        // Any content type: the body is the image itself (raw, qcow2, or either gzip-compressed), told apart by its bytes.
        api.MapPost("/upload", UploadVolume).WithDescription("The request body is the image (raw or qcow2, optionally gzip), streamed to disk.");
        api.MapGet("", ListVolumes);
        api.MapGet("/quarantine", ListQuarantine).RequireAuthorization(Policies.Admin);
        api.MapDelete("/quarantine", PurgeQuarantine).RequireAuthorization(Policies.Admin);
        api.MapDelete("/quarantine/{uuid}", PurgeQuarantined).RequireAuthorization(Policies.Admin);
        api.MapPost("/reconcile", Reconcile).RequireAuthorization(Policies.Admin);
        api.MapPost("/{uuid}/quarantine", QuarantineVolume).RequireAuthorization(Policies.Admin);
        api.MapPost("/{uuid}/release", ReleaseVolume).RequireAuthorization(Policies.Admin);
        api.MapGet("/{uuid}", GetVolume);
        api.MapPut("/{uuid}", UpdateVolume);
        api.MapDelete("/{uuid}", DeleteVolume);
        api.MapPost("/{uuid}/snapshots", CreateSnapshot);
        api.MapPost("/{uuid}/rebase", RebaseVolume);
        api.MapGet("/{uuid}/turl", GetTurl);
        api.MapGet("/{uuid}/content", DownloadVolume).Produces(200, contentType: "application/gzip");
        api.MapGet("/{uuid}/mounts", ListMounts);
        api.MapPost("/{uuid}/mounts", AttachVolume);
        api.MapDelete("/{uuid}/mounts/{instanceId}", DetachVolume);
        return api;
    }

    // ---- handlers ----------------------------------------------------------------------------------

    static async Task<Ok<VolumeView>> QuarantineVolume(string uuid, ClaimsPrincipal principal, IVolumeService service, PdiskStore store, VolumeViews views, CancellationToken ct)
    {
        var info = await service.QuarantineAsync(principal.ToCaller(), Guid.Parse(Uuid(uuid)), ct);
        return TypedResults.Ok(await views.ViewAsync((await store.GetAsync(info.Uuid.ToString("D")))!));
    }

    static async Task<Ok<VolumeView>> ReleaseVolume(string uuid, ClaimsPrincipal principal, IVolumeService service, PdiskStore store, VolumeViews views, CancellationToken ct)
    {
        var info = await service.ReleaseAsync(principal.ToCaller(), Guid.Parse(Uuid(uuid)), ct);
        return TypedResults.Ok(await views.ViewAsync((await store.GetAsync(info.Uuid.ToString("D")))!));
    }

    static async Task<Created<VolumeView>> CreateVolume(CreateVolumeRequest body, ClaimsPrincipal principal,
        VolumeService service, VolumeViews views, PdiskOptions options, IFreeSpaceGuard space, CancellationToken ct)
    {
        var caller = principal.ToCaller();
        space.EnsureRoom("Creating a volume");
        var spec = SpecOf(caller, body.Type, body.Visibility, body.Groups, body.Tag, body.Identifier, body.Sharing, options);
        if (body.Sha1 is not null) Sha1(body.Sha1);
        if (body.Url is not null && body.Size is not null)
            throw ApiException.BadRequest("size", "Give either 'size' (an empty volume, in GiB) or 'url' (an image to download), not both.");
        VolumeRow row;
        if (body.Url is not null)
            row = await service.DownloadRowAsync(spec, body.Url, body.Bytes, body.Sha1, ct);
        else
        {
            if (body.Size is not { } size)
                throw ApiException.BadRequest("size", $"'size' is required (in GiB, 1..{options.MaxVolumeGiB}) unless 'url' gives an image to download.");
            if (body.Bytes is not null || body.Sha1 is not null)
                throw ApiException.BadRequest("bytes", "'bytes' and 'sha1' check a download: give them with 'url' only.");
            row = await service.CreateRowAsync(spec, size, ct);
        }
        return TypedResults.Created($"/api/v1/volumes/{row.Uuid}", await views.ViewAsync(row));
    }

    /// <summary>The body is the image itself (raw or qcow2, optionally gzip), streamed to disk; metadata comes in the query.</summary>
    static async Task<Created<VolumeView>> UploadVolume(HttpContext http, ClaimsPrincipal principal, VolumeService service, VolumeViews views,
        PdiskOptions options, string? tag, string? type, string? visibility, string? sharing, string? identifier, long? bytes, string? sha1,
        CancellationToken ct)
    {
        var spec = SpecOf(principal.ToCaller(), type, visibility, null, tag, identifier, sharing, options);
        // The server-wide body limit is small; Pdisk counts and limits the bytes itself.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = service.MaxUploadBytes + 1;
        var row = await service.UploadRowAsync(spec, http.Request.Body, http.Request.ContentLength, bytes, sha1, ct);
        return TypedResults.Created($"/api/v1/volumes/{row.Uuid}", await views.ViewAsync(row));
    }

    static async Task<Ok<IReadOnlyList<VolumeView>>> ListVolumes(ClaimsPrincipal principal, PdiskStore store, VolumeViews views, IUserDirectory users,
        string? type, string? tag, string? owner, string? visibility, string? state, bool? quarantined, string? identifier, int? limit, int? offset)
    {
        var caller = principal.ToCaller();
        var (l, o) = Paging.Of(limit, offset);
        string? typeName = null;
        if (type is not null) typeName = VolumeTypes.Name(ParseType(type));
        if (tag is not null) Tag(tag);
        if (visibility is not null) Visibility(visibility);
        string? stateName = null;
        if (state is not null)
        {
            stateName = state.ToUpperInvariant();
            if (stateName is not (VolumeStates.Creating or VolumeStates.Ready or VolumeStates.Quarantined or VolumeStates.Deleting))
                throw ApiException.BadRequest("state", $"'state' = '{Validate.Trim(state)}' is not accepted; accepted values: CREATING, READY, QUARANTINED, DELETING.");
        }
        if (quarantined == true) stateName = VolumeStates.Quarantined;
        long? ownerId = null;
        if (owner is not null)
        {
            var user = await users.FindByNameAsync(owner);
            if (user is null) return TypedResults.Ok<IReadOnlyList<VolumeView>>([]);
            ownerId = user.Id;
        }
        var rows = await store.ListAsync(new VolumeQuery(caller, typeName, tag, ownerId, visibility, stateName, identifier, l, o));
        return TypedResults.Ok(await views.ViewAsync(rows));
    }

    static async Task<Ok<IReadOnlyList<VolumeView>>> ListQuarantine(ClaimsPrincipal principal, PdiskStore store, VolumeViews views, int? limit, int? offset)
    {
        var (l, o) = Paging.Of(limit, offset);
        var rows = await store.ListAsync(new VolumeQuery(principal.ToCaller(), null, null, null, null, VolumeStates.Quarantined, null, l, o));
        return TypedResults.Ok(await views.ViewAsync(rows));
    }

    /// <summary>Purges every quarantined volume now (<c>?expired=true</c>: only those whose time is up).</summary>
    static async Task<Ok<PurgeResult>> PurgeQuarantine(VolumeLifecycle volumes, bool? expired, CancellationToken ct) =>
        TypedResults.Ok(new PurgeResult(await volumes.PurgeQuarantineAsync(all: expired != true, ct)));

    static async Task<NoContent> PurgeQuarantined(string uuid, VolumeLifecycle volumes, CancellationToken ct)
    {
        await volumes.PurgeAsync(Uuid(uuid), ct);
        return TypedResults.NoContent();
    }

    static async Task<Ok<ReconcileReport>> Reconcile(PdiskReconciler reconciler, CancellationToken ct) =>
        TypedResults.Ok(await reconciler.ReconcileAsync(atStartup: false, ct));

    static async Task<Ok<VolumeView>> GetVolume(string uuid, ClaimsPrincipal principal, IVolumeService volumes, PdiskStore store, VolumeViews views)
    {
        var volume = await volumes.GetAsync(principal.ToCaller(), Guid.Parse(Uuid(uuid)));
        return TypedResults.Ok(await views.ViewAsync(await store.GetAsync(volume.Uuid.ToString("D")) ?? throw new NotFoundException($"Volume {uuid}")));
    }

    static async Task<Ok<VolumeView>> UpdateVolume(string uuid, UpdateVolumeRequest body, ClaimsPrincipal principal, VolumeLifecycle volumes,
        VolumeViews views, CancellationToken ct)
    {
        var id = Uuid(uuid);
        if (body.Tag is not null) Tag(body.Tag);
        if (body.Visibility is not null) Visibility(body.Visibility);
        if (body.Identifier is not null) Identifier(body.Identifier);
        if (body.Groups is not null) Groups(body.Groups);
        VolumeType? type = body.Type is null ? null : ParseType(body.Type);
        var row = await volumes.UpdateAsync(principal.ToCaller(), id, body.Tag, body.Visibility, body.Groups, type, body.Identifier, ct);
        return TypedResults.Ok(await views.ViewAsync(row));
    }

    static async Task<NoContent> DeleteVolume(string uuid, ClaimsPrincipal principal, IVolumeService volumes, CancellationToken ct)
    {
        await volumes.DeleteAsync(principal.ToCaller(), Guid.Parse(Uuid(uuid)), ct);
        return TypedResults.NoContent();
    }

    static async Task<Created<VolumeView>> CreateSnapshot(string uuid, CreateSnapshotRequest? body, ClaimsPrincipal principal, VolumeService volumes,
        VolumeViews views, CancellationToken ct)
    {
        var id = Uuid(uuid);
        body ??= new CreateSnapshotRequest();
        var row = await volumes.SnapshotRowAsync(principal.ToCaller(), id, body.Tag, body.Sharing, ct);
        return TypedResults.Created($"/api/v1/volumes/{row.Uuid}", await views.ViewAsync(row));
    }

    static async Task<Ok<VolumeView>> RebaseVolume(string uuid, ClaimsPrincipal principal, VolumeLifecycle volumes, VolumeViews views, CancellationToken ct) =>
        TypedResults.Ok(await views.ViewAsync(await volumes.RebaseAsync(principal.ToCaller(), Uuid(uuid), ct)));

    static async Task<Ok<TurlView>> GetTurl(string uuid, ClaimsPrincipal principal, VolumeLifecycle volumes)
    {
        var row = await volumes.VisibleAsync(principal.ToCaller(), Uuid(uuid));
        return TypedResults.Ok(new TurlView(row.Uuid, volumes.TurlOf(row), row.Format, row.Sharing));
    }

    /// <summary>Streams the volume's content gzip-compressed (<c>?format=raw</c>, the default, or qcow2).</summary>
    static async Task DownloadVolume(string uuid, HttpContext http, ClaimsPrincipal principal, VolumeLifecycle volumes, string? format, CancellationToken ct)
    {
        var id = Uuid(uuid);
        var wanted = format ?? "raw";
        if (wanted is not ("raw" or "qcow2"))
            throw ApiException.BadRequest("format", $"'format' = '{Validate.Trim(wanted)}' is not accepted; accepted values: raw, qcow2.");
        await using var content = await volumes.OpenContentAsync(principal.ToCaller(), id, wanted, ct);
        http.Response.ContentType = "application/gzip";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"{content.FileName}\"";
        await ImageStaging.WriteGzipAsync(content.Stream, http.Response.Body, ct);
    }

    static async Task<Ok<IReadOnlyList<MountView>>> ListMounts(string uuid, ClaimsPrincipal principal, VolumeService volumes) =>
        TypedResults.Ok<IReadOnlyList<MountView>>((await volumes.MountRowsAsync(principal.ToCaller(), Uuid(uuid))).Select(VolumeViews.ToView).ToList());

    static async Task<Created<MountView>> AttachVolume(string uuid, AttachVolumeRequest body, ClaimsPrincipal principal, VolumeService volumes, CancellationToken ct)
    {
        var id = Uuid(uuid);
        var mount = await volumes.AttachRowAsync(principal.ToCaller(), id, body.InstanceId, body.ReadOnly, ct);
        return TypedResults.Created($"/api/v1/volumes/{id}/mounts/{mount.InstanceId}", VolumeViews.ToView(mount));
    }

    static async Task<NoContent> DetachVolume(string uuid, string instanceId, ClaimsPrincipal principal, IVolumeService volumes, CancellationToken ct)
    {
        var id = Uuid(uuid);
        if (!long.TryParse(instanceId, out var instance) || instance < 1)
            throw ApiException.BadRequest("instanceId", $"'instanceId' = '{Validate.Trim(instanceId)}' is not an instance id (a positive number).");
        await volumes.DetachAsync(principal.ToCaller(), Guid.Parse(id), instance, ct);
        return TypedResults.NoContent();
    }

    // ---- input checks ------------------------------------------------------------------------------

    static VolumeSpec SpecOf(Caller caller, string? type, string? visibility, IReadOnlyList<long>? groups, string? tag, string? identifier, string? sharing,
        PdiskOptions options)
    {
        var volumeType = type is null ? VolumeType.DataImageRawReadWrite : ParseType(type);
        if (VolumeTypes.IsLive(volumeType))
            throw ApiException.Invalid("type", $"'type' = '{VolumeTypes.Name(volumeType)}' cannot be created directly: LIVE volumes are copy-on-write snapshots of an ORIGIN (POST /api/v1/volumes/{{uuid}}/snapshots).");
        if (tag is not null) Tag(tag);
        if (identifier is not null) Identifier(identifier);
        if (groups is not null) Groups(groups);
        return new VolumeSpec(caller.UserId, volumeType, visibility is null ? "private" : Visibility(visibility), groups ?? [], tag, identifier,
            sharing is null ? options.Sharing : Sharing(sharing));
    }

    /// <summary>A volume uuid in its canonical lowercase form; anything else is a 400.</summary>
    public static string Uuid(string text) =>
        Guid.TryParseExact(text, "D", out var uuid)
            ? uuid.ToString("D")
            : throw ApiException.BadRequest("uuid", $"'{Validate.Trim(text)}' is not a volume uuid; volumes are named by uuids such as 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b (see 'stratuslab describe-volumes').");

    static VolumeType ParseType(string text) =>
        VolumeTypes.TryParse(text, out var type)
            ? type
            : throw ApiException.BadRequest("type", $"'type' = '{Validate.Trim(text)}' is not a volume type; accepted values: {string.Join(", ", VolumeTypes.Names)}.");

    internal static string Tag(string tag) =>
        TagPattern().IsMatch(tag)
            ? tag
            : throw ApiException.BadRequest("tag", $"'tag' = '{Validate.Trim(tag)}' is not accepted: use 1-64 letters, digits, '_', '.', ':', '@', '+' or '-', starting with a letter or digit (no spaces, slashes or shell characters).");

    static string Identifier(string identifier) =>
        IdentifierPattern().IsMatch(identifier)
            ? identifier
            : throw ApiException.BadRequest("identifier", $"'identifier' = '{Validate.Trim(identifier)}' is not a Marketplace identifier (27 characters such as MMZu9WvwKIro-rtBQfDk4PsKO7_).");

    static string Visibility(string visibility) =>
        visibility is "private" or "public"
            ? visibility
            : throw ApiException.BadRequest("visibility", $"'visibility' = '{Validate.Trim(visibility)}' is not accepted; accepted values: private, public.");

    internal static string Sharing(string sharing) =>
        sharing is "local" or "iscsi"
            ? sharing
            : throw ApiException.BadRequest("sharing", $"'sharing' = '{Validate.Trim(sharing)}' is not accepted; accepted values: local, iscsi.");

    internal static void Sha1(string sha1)
    {
        if (!Sha1Pattern().IsMatch(sha1))
            throw ApiException.BadRequest("sha1", $"'sha1' = '{Validate.Trim(sha1)}' is not a SHA-1 checksum (40 hexadecimal digits).");
    }

    static void Groups(IReadOnlyList<long> groups)
    {
        if (groups.Count > 64) throw ApiException.BadRequest("groups", "'groups' lists more than 64 groups.");
        foreach (var g in groups) Validate.Range(g, "groups", 0, long.MaxValue);
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,63}$")]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^[A-P][A-Za-z0-9_-]{26}$")]
    private static partial Regex IdentifierPattern();

    [GeneratedRegex(@"^[0-9A-Fa-f]{40}$")]
    private static partial Regex Sha1Pattern();
}
