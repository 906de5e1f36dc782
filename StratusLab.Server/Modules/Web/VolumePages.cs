using System.Globalization;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Contracts;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// Volumes (persistent disks): the list, create (empty, from a URL, or by uploading a file with a progress bar), snapshot,
/// attach to a running instance, detach, delete. Every change goes through Pdisk's <see cref="IVolumeService"/>.
/// </summary>
internal static class VolumePages
{
    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/volumes", ListVolumes);
        pages.MapPost("/volumes", CreateVolume).DisableAntiforgery();
        pages.MapPost("/volumes/from-url", CreateVolumeFromUrl).DisableAntiforgery();
        pages.MapPost("/volumes/upload", UploadVolume).DisableAntiforgery();
        pages.MapPost("/volumes/{uuid:guid}/delete", DeleteVolume).DisableAntiforgery();
        pages.MapPost("/volumes/{uuid:guid}/quarantine", QuarantineVolume).DisableAntiforgery();
        pages.MapPost("/volumes/{uuid:guid}/release", ReleaseVolume).DisableAntiforgery();
        pages.MapPost("/volumes/{uuid:guid}/snapshot", SnapshotVolume).DisableAntiforgery();
        pages.MapPost("/volumes/{uuid:guid}/attach", AttachVolume).DisableAntiforgery();
        pages.MapPost("/volumes/{uuid:guid}/detach/{instance:long}", DetachVolume).DisableAntiforgery();
    }

    static Task<IResult> ListVolumes(HttpContext http, IVolumeService volumes, IInstances instances, Guid? created, CancellationToken ct) =>
        Render(http, volumes, instances, null, 200, "", "", ct, created: created);

    /// <summary>Fields a refusal can name on this page: beside them, the problem; anywhere else, above the forms.</summary>
    static readonly string[] FormFields = ["size", "tag", "url", "url-tag", "bytes", "sha1"];

    static async Task<IResult> Render(HttpContext http, IVolumeService volumes, IInstances instances, WebProblem? problem, int status,
        string size, string tag, CancellationToken ct, string url = "", string urlTag = "", Guid? created = null)
    {
        var caller = http.User.ToCaller();
        var list = await volumes.ListAsync(caller, ct: ct);
        IReadOnlyList<VolumeInfo> quarantine = caller.IsAdmin ? await volumes.ListQuarantineAsync(caller, ct) : [];
        var running = await instances.ListAsync(caller, new InstanceQuery(["RUNNING"], Limit: 1000), ct);
        var csrf = Layout.CsrfField(http);
        Markup ErrorFor(string field) => problem?.Field == field
            ? H($"<p class=\"field-problem\" id=\"{field}-problem\" role=\"alert\">{problem.Detail}</p>") : Markup.Empty;
        string Described(string field) => problem?.Field == field ? $"{field}-problem" : "";
        Markup Row(VolumeInfo v)
        {
            var mine = v.OwnerId == caller.UserId || caller.IsAdmin;
            var mounts = Each(v.Mounts, m => H($"""
                <div>on <a href="/ui/instances/{m.InstanceId}">instance {m.InstanceId}</a> as {m.Device}
                {If(mine, H($"<form method=\"post\" action=\"/ui/volumes/{v.Uuid}/detach/{m.InstanceId}\" class=\"inline\">{csrf}<button type=\"submit\">Detach</button></form>"))}</div>
                """));
            var attach = mine && v.Mounts.Count == 0 && v.State == "READY" && running.Count > 0
                ? H($"""
                  <form method="post" action="/ui/volumes/{v.Uuid}/attach" class="inline">{csrf}<label for="attach-{v.Uuid}" class="visually-hidden">Instance to attach {v.Tag ?? v.Uuid.ToString()} to</label>
                  <select id="attach-{v.Uuid}" name="instance">{Each(running, i => H($"<option value=\"{i.Id}\">{i.Name} ({i.Id})</option>"))}</select><button type="submit">Attach</button></form>
                  """) : Markup.Empty;
            return H($"""
                <tr data-uuid="{v.Uuid}"><td>{v.Tag}<div class="id">{v.Uuid}</div></td><td>{v.Owner}</td><td>{v.Type}</td><td>{v.State}</td><td>{v.SizeGiB} GiB</td><td>{v.Visibility}</td>
                <td>{mounts}{attach}</td>
                <td>{If(v.Type is VolumeType.MachineImageOrigin or VolumeType.DataImageOrigin, H($"<form method=\"post\" action=\"/ui/volumes/{v.Uuid}/snapshot\" class=\"inline\">{csrf}<button type=\"submit\">Snapshot</button></form>"))}
                {If(mine && v.Mounts.Count == 0, H($"<form method=\"post\" action=\"/ui/volumes/{v.Uuid}/delete\" class=\"inline\">{csrf}<button type=\"submit\" class=\"danger\">Delete</button></form>"))}
                {If(caller.IsAdmin && v.Mounts.Count == 0 && v.State == "READY", H($"<form method=\"post\" action=\"/ui/volumes/{v.Uuid}/quarantine\" class=\"inline\">{csrf}<button type=\"submit\" aria-label=\"Quarantine {v.Tag ?? v.Uuid.ToString()}\">Quarantine</button></form>"))}</td></tr>
                """);
        }
        var made = created is { } c ? list.FirstOrDefault(v => v.Uuid == c) : null;
        var body = H($"""
            {(problem is not null && (problem.Field is null || !FormFields.Contains(problem.Field)) ? H($"<p class=\"problem\" role=\"alert\">{problem.Detail}</p>") : Markup.Empty)}
            {(made is null ? Markup.Empty : H($"<p class=\"notice\" role=\"status\" id=\"created\">Created volume {made.Tag} <span class=\"id\">{made.Uuid}</span>: {made.SizeGiB} GiB, {made.State}.</p>"))}
            <form method="post" action="/ui/volumes" class="card search">{csrf}
            <div><label for="size">Size (GiB)</label><input id="size" name="size" type="number" min="1" required value="{size}" aria-describedby="{Described("size")}">{ErrorFor("size")}</div>
            <div><label for="tag">Tag</label><input id="tag" name="tag" value="{tag}" aria-describedby="{Described("tag")}">{ErrorFor("tag")}</div>
            <button type="submit">Create volume</button></form>
            <details class="card"{(problem?.Field is "url" or "url-tag" ? new Markup(" open") : Markup.Empty)}><summary>Create from an image</summary>
            <form method="post" action="/ui/volumes/from-url" id="from-url" class="search">{csrf}
            <div><label for="url">Image URL (raw or qcow2, may be gzip)</label><input id="url" name="url" type="url" required value="{url}" aria-describedby="{Described("url")}">{ErrorFor("url")}</div>
            <div><label for="url-tag">Tag of the volume from an image</label><input id="url-tag" name="tag" value="{urlTag}" aria-describedby="{Described("url-tag")}">{ErrorFor("url-tag")}</div>
            <button type="submit">Download into a volume</button></form>
            <form method="post" action="/ui/volumes/upload" id="upload" class="search" enctype="application/octet-stream">
            <div><label for="upload-file">Image file to upload</label><input id="upload-file" name="file" type="file" required aria-describedby="upload-problem"></div>
            <div><label for="upload-tag">Tag of the uploaded volume</label><input id="upload-tag" name="tag"></div>
            <button type="submit">Upload</button>
            <div><progress id="upload-progress" max="100" value="0" hidden aria-label="Upload progress"></progress> <span id="upload-status" role="status"></span></div>
            <p class="field-problem" id="upload-problem" role="alert" hidden></p>
            <noscript><p class="hint">Uploading from the page needs JavaScript; without it use 'stratuslab volume-upload FILE'.</p></noscript></form>
            </details>
            {(list.Count == 0 ? H($"<p id=\"no-volumes\">No volume yet.</p>") : H($"""
              <table id="volumes"><caption class="visually-hidden">Volumes you can see</caption><thead><tr><th scope="col">Tag / uuid</th><th scope="col">Owner</th><th scope="col">Type</th><th scope="col">State</th><th scope="col">Size</th><th scope="col">Visibility</th><th scope="col">Attached</th><th scope="col">Actions</th></tr></thead>
              <tbody>{Each(list, Row)}</tbody></table>
              """))}
            {If(caller.IsAdmin, H($"""
              <h2>Quarantine</h2>
              <p class="hint">Quarantined volumes are kept unexported for Pdisk:QuarantineMinutes, then removed; release one to make it usable again.</p>
              {(quarantine.Count == 0 ? H($"<p id=\"no-quarantine\">No volume in quarantine.</p>") : H($"""
                <table id="quarantine"><caption class="visually-hidden">Volumes in quarantine</caption><thead><tr><th scope="col">Tag / uuid</th><th scope="col">Owner</th><th scope="col">Size</th><th scope="col"></th></tr></thead>
                <tbody>{Each(quarantine, q => H($"""
                  <tr data-uuid="{q.Uuid}"><td>{q.Tag}<div class="id">{q.Uuid}</div></td><td>{q.Owner}</td><td>{q.SizeGiB} GiB</td>
                  <td><form method="post" action="/ui/volumes/{q.Uuid}/release" class="inline">{csrf}<button type="submit" aria-label="Release {q.Tag ?? q.Uuid.ToString()}">Release</button></form></td></tr>
                  """))}</tbody></table>
                """))}
              """))}
            """);
        return Layout.Page(http, "Volumes", body, status, "volumes");
    }

    static async Task<IResult> CreateVolume(HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        var size = form["size"].ToString().Trim();
        var tag = form["tag"].ToString().Trim();
        return await Do(http, volumes, instances, size, tag, async caller =>
        {
            if (!long.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out var gib))
                throw new InvalidInputException("size", $"'size' = '{(size.Length > 20 ? size[..20] : size)}' is not a whole number of GiB; give one, like 1.");
            await volumes.CreateAsync(caller, gib, tag.Length == 0 ? null : tag, ct);
        }, ct);
    }

    static async Task<IResult> CreateVolumeFromUrl(HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        var url = form["url"].ToString().Trim();
        var tag = form["tag"].ToString().Trim();
        try
        {
            var made = await volumes.CreateFromUrlAsync(http.User.ToCaller(), url, tag.Length == 0 ? null : tag, ct: ct);
            return Results.Redirect($"/ui/volumes?created={made.Uuid}");
        }
        catch (Exception e) when (WebProblem.From(e) is { } p)
        {
            // The URL form's tag field is 'url-tag' on the page: its problem goes there, not beside the empty volume's tag.
            var shown = p.Field == "tag" ? p with { Field = "url-tag" } : p;
            return await Render(http, volumes, instances, shown, p.Status, "", "", ct, url, tag);
        }
    }

    /// <summary>
    /// The page's upload: the body is the file itself (sent by the page's script with its CSRF header and upload progress),
    /// streamed into Pdisk, which counts and limits the bytes; answers the new volume as JSON, or the problem+json of a refusal.
    /// </summary>
    static async Task<IResult> UploadVolume(HttpContext http, IVolumeService volumes, string? tag, CancellationToken ct)
    {
        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = null;
        try
        {
            var made = await volumes.UploadAsync(http.User.ToCaller(), http.Request.Body, http.Request.ContentLength,
                string.IsNullOrWhiteSpace(tag) ? null : tag.Trim(), ct: ct);
            return Results.Json(new { uuid = made.Uuid, tag = made.Tag, sizeGiB = made.SizeGiB, bytes = made.Bytes, state = made.State,
                href = $"/ui/volumes?created={made.Uuid}" }, statusCode: 201);
        }
        catch (Exception e) when (WebProblem.From(e) is { } p)
        {
            return Results.Problem(statusCode: p.Status, detail: p.Detail,
                extensions: p.Field is null ? null : new Dictionary<string, object?> { ["field"] = p.Field });
        }
    }

    static Task<IResult> DeleteVolume(Guid uuid, HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct) =>
        Do(http, volumes, instances, "", "", caller => volumes.DeleteAsync(caller, uuid, ct), ct);

    static Task<IResult> QuarantineVolume(Guid uuid, HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct) =>
        Do(http, volumes, instances, "", "", caller => volumes.QuarantineAsync(caller, uuid, ct), ct);

    static Task<IResult> ReleaseVolume(Guid uuid, HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct) =>
        Do(http, volumes, instances, "", "", caller => volumes.ReleaseAsync(caller, uuid, ct), ct);

    static Task<IResult> SnapshotVolume(Guid uuid, HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct) =>
        Do(http, volumes, instances, "", "", caller => volumes.SnapshotAsync(caller, uuid, ct: ct), ct);

    static async Task<IResult> AttachVolume(Guid uuid, HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        return await Do(http, volumes, instances, "", "", async caller =>
        {
            if (!long.TryParse(form["instance"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var instance))
                throw new InvalidInputException("instance", "Choose a running instance to attach the volume to.");
            await volumes.AttachAsync(caller, uuid, instance, ct: ct);
        }, ct);
    }

    static Task<IResult> DetachVolume(Guid uuid, long instance, HttpContext http, IVolumeService volumes, IInstances instances, CancellationToken ct) =>
        Do(http, volumes, instances, "", "", caller => volumes.DetachAsync(caller, uuid, instance, ct), ct);

    /// <summary>Runs one change; on success back to the list (post, redirect, get), on refusal the list with the problem and its status.</summary>
    static async Task<IResult> Do(HttpContext http, IVolumeService volumes, IInstances instances, string size, string tag, Func<Caller, Task> change, CancellationToken ct)
    {
        try { await change(http.User.ToCaller()); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return await Render(http, volumes, instances, p, p.Status, size, tag, ct); }
        return Results.Redirect("/ui/volumes");
    }
}
