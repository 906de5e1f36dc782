using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>The user-facing operations on volumes, shared by the REST handlers and the EC2 door.</summary>
internal sealed class VolumeService(VolumeLifecycle volumes, PdiskStore store, VolumeViews views, PdiskOptions options, IFreeSpaceGuard space) : IVolumeService
{
    public async Task<VolumeInfo> CreateAsync(Caller caller, long sizeGiB, string? tag = null, CancellationToken ct = default) =>
        await InfoAsync(await CreateRowAsync(caller, sizeGiB, tag, ct));

    internal Task<VolumeRow> CreateRowAsync(Caller caller, long sizeGiB, string? tag, CancellationToken ct)
    {
        if (tag is not null) PdiskEndpoints.Tag(tag);
        return CreateRowAsync(new VolumeSpec(caller.UserId, VolumeType.DataImageRawReadWrite, "private", [], tag, null, options.Sharing), sizeGiB, ct);
    }

    /// <summary>An empty volume of a spec REST's options (type, visibility, groups, sharing...) have already checked.</summary>
    internal async Task<VolumeRow> CreateRowAsync(VolumeSpec spec, long sizeGiB, CancellationToken ct)
    {
        space.EnsureRoom("Creating a volume");
        Validate.Range(sizeGiB, "size", 1, options.MaxVolumeGiB);
        return await volumes.CreateEmptyAsync(spec, sizeGiB * VolumeLifecycle.GiB, ct);
    }

    public async Task<VolumeInfo> CreateFromUrlAsync(Caller caller, string url, string? tag = null, long? bytes = null, string? sha1 = null, CancellationToken ct = default)
    {
        if (tag is not null) PdiskEndpoints.Tag(tag);
        return await InfoAsync(await DownloadRowAsync(new VolumeSpec(caller.UserId, VolumeType.DataImageRawReadWrite, "private", [], tag, null, options.Sharing),
            url, bytes, sha1, ct));
    }

    /// <summary>A volume downloaded from a URL, of a spec REST's options have already checked.</summary>
    internal async Task<VolumeRow> DownloadRowAsync(VolumeSpec spec, string url, long? bytes, string? sha1, CancellationToken ct)
    {
        space.EnsureRoom("Creating a volume");
        if (sha1 is not null) PdiskEndpoints.Sha1(sha1);
        if (bytes is { } b) Validate.Range(b, "bytes", 1, options.MaxUrlDownloadBytes);
        return await volumes.DownloadAsync(spec, url, bytes, sha1?.ToLowerInvariant(), ct);
    }

    public async Task<VolumeInfo> UploadAsync(Caller caller, Stream body, long? contentLength, string? tag = null, long? bytes = null, string? sha1 = null,
        CancellationToken ct = default)
    {
        if (tag is not null) PdiskEndpoints.Tag(tag);
        return await InfoAsync(await UploadRowAsync(new VolumeSpec(caller.UserId, VolumeType.DataImageRawReadWrite, "private", [], tag, null, options.Sharing),
            body, contentLength, bytes, sha1, ct));
    }

    /// <summary>An uploaded volume, of a spec REST's options have already checked; the body is streamed to a staging file.</summary>
    internal async Task<VolumeRow> UploadRowAsync(VolumeSpec spec, Stream body, long? contentLength, long? bytes, string? sha1, CancellationToken ct)
    {
        space.EnsureRoom("Uploading a volume");
        if (sha1 is not null) PdiskEndpoints.Sha1(sha1);
        if (bytes is { } b) Validate.Range(b, "bytes", 1, options.MaxUploadBytes);
        return await volumes.UploadAsync(spec, body, contentLength, bytes, sha1?.ToLowerInvariant(), ct);
    }

    /// <summary>The most an upload may be (Pdisk:MaxUploadBytes): a door lifts its request body limit to this and Pdisk counts the bytes.</summary>
    internal long MaxUploadBytes => options.MaxUploadBytes;

    public async Task<VolumeInfo> QuarantineAsync(Caller caller, Guid uuid, CancellationToken ct = default)
    {
        RequireAdmin(caller, "put volumes in quarantine");
        var id = uuid.ToString("D");
        _ = await store.GetAsync(id) ?? throw new NotFoundException($"Volume {id}");
        await volumes.QuarantineAsync(uuid, ct);
        return await InfoAsync((await store.GetAsync(id))!);
    }

    public async Task<VolumeInfo> ReleaseAsync(Caller caller, Guid uuid, CancellationToken ct = default)
    {
        RequireAdmin(caller, "release volumes from quarantine");
        await volumes.ReleaseQuarantineAsync(uuid, ct);
        return await InfoAsync((await store.GetAsync(uuid.ToString("D")))!);
    }

    public async Task<IReadOnlyList<VolumeInfo>> ListQuarantineAsync(Caller caller, CancellationToken ct = default)
    {
        RequireAdmin(caller, "see the quarantine");
        return await InfosAsync(await store.ListAsync(new VolumeQuery(caller, null, null, null, null, VolumeStates.Quarantined, null, 1000, 0)));
    }

    static void RequireAdmin(Caller caller, string what)
    {
        if (!caller.IsAdmin) throw new ForbiddenException($"Only administrators may {what}; ask an administrator.");
    }

    public async Task<IReadOnlyList<VolumeInfo>> ListAsync(Caller caller, int limit = 1000, int offset = 0, CancellationToken ct = default)
    {
        var rows = await store.ListAsync(new VolumeQuery(caller, null, null, null, null, null, null, limit, offset));
        return await InfosAsync(rows);
    }

    public async Task<VolumeInfo> GetAsync(Caller caller, Guid uuid, CancellationToken ct = default) =>
        await InfoAsync(await volumes.VisibleAsync(caller, uuid.ToString("D")));

    public async Task DeleteAsync(Caller caller, Guid uuid, CancellationToken ct = default)
    {
        var id = uuid.ToString("D");
        await volumes.ManageableAsync(caller, id);
        await volumes.DeleteAsync(id, allowQuarantined: caller.IsAdmin, ct);
    }

    public async Task<VolumeInfo> SnapshotAsync(Caller caller, Guid originUuid, string? tag = null, string? sharing = null, CancellationToken ct = default) =>
        await InfoAsync(await SnapshotRowAsync(caller, originUuid.ToString("D"), tag, sharing, ct));

    internal async Task<VolumeRow> SnapshotRowAsync(Caller caller, string originUuid, string? tag, string? sharing, CancellationToken ct)
    {
        space.EnsureRoom("Snapshotting a volume");
        if (tag is not null) PdiskEndpoints.Tag(tag);
        if (sharing is not null) PdiskEndpoints.Sharing(sharing);
        return await volumes.SnapshotAsync(caller, originUuid, tag, sharing, ct);
    }

    public async Task<VolumeInfo> CopyAsync(Caller caller, Guid uuid, string? tag = null, CancellationToken ct = default)
    {
        space.EnsureRoom("Copying a volume");
        if (tag is not null) PdiskEndpoints.Tag(tag);
        return await InfoAsync(await volumes.CopyAsync(caller, uuid.ToString("D"), tag, ct));
    }

    public async Task<VolumeMountInfo> AttachAsync(Caller caller, Guid uuid, long instanceId, bool? readOnly = null, CancellationToken ct = default) =>
        ToInfo(await AttachRowAsync(caller, uuid.ToString("D"), instanceId, readOnly, ct));

    internal async Task<MountRow> AttachRowAsync(Caller caller, string uuid, long instanceId, bool? readOnly, CancellationToken ct)
    {
        Validate.Range(instanceId, "instanceId", 1, long.MaxValue);
        return await volumes.AttachAsync(caller, uuid, instanceId, readOnly, ct);
    }

    public Task DetachAsync(Caller caller, Guid uuid, long instanceId, CancellationToken ct = default) =>
        volumes.DetachAsync(caller, uuid.ToString("D"), instanceId, ct);

    public async Task<IReadOnlyList<VolumeMountInfo>> MountsAsync(Caller caller, Guid uuid, CancellationToken ct = default) =>
        (await MountRowsAsync(caller, uuid.ToString("D"))).Select(ToInfo).ToList();

    internal async Task<IReadOnlyList<MountRow>> MountRowsAsync(Caller caller, string uuid)
    {
        var row = await volumes.VisibleAsync(caller, uuid);
        return await store.MountsOfVolumeAsync(row.Uuid);
    }

    static VolumeMountInfo ToInfo(MountRow m) => new(m.InstanceId, m.Host, m.Device, m.ReadOnly, m.HotPlugged, m.CreatedAt);

    async Task<VolumeInfo> InfoAsync(VolumeRow row) => (await InfosAsync([row]))[0];

    async Task<IReadOnlyList<VolumeInfo>> InfosAsync(IReadOnlyList<VolumeRow> rows)
    {
        var shown = await views.ViewAsync(rows);
        return rows.Zip(shown).Select(p => new VolumeInfo(
            Guid.Parse(p.First.Uuid), p.First.OwnerId, p.Second.Owner, p.First.TypeValue, p.First.State, p.Second.Size, p.Second.Bytes, p.First.Tag,
            p.First.Visibility, p.First.OriginUuid is { } o ? Guid.Parse(o) : null,
            p.Second.Mounts.Select(m => new VolumeMountInfo(m.InstanceId, m.Host, m.Device, m.ReadOnly, m.HotPlugged, m.CreatedAt)).ToList(),
            p.Second.CreatedAt)).ToList();
    }
}
