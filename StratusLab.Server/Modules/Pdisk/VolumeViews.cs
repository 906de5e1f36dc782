using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>Turns stored volumes into API views (owner names, counts, mounts, turl) with one query per list.</summary>
internal sealed class VolumeViews(PdiskStore store, VolumeLifecycle volumes, IUserDirectory users)
{
    public async Task<VolumeView> ViewAsync(VolumeRow row) => (await ViewAsync([row]))[0];

    public async Task<IReadOnlyList<VolumeView>> ViewAsync(IReadOnlyList<VolumeRow> rows)
    {
        var (snapshots, mounts) = await store.UsageOfAsync(rows.Select(r => r.Uuid).ToList());
        var owners = new Dictionary<long, string>();
        foreach (var id in rows.Select(r => r.OwnerId).Distinct())
            owners[id] = (await users.FindAsync(id))?.Name ?? $"user-{id}";
        return rows.Select(r =>
        {
            var m = mounts.GetValueOrDefault(r.Uuid) ?? [];
            var count = VolumeTypes.IsOrigin(r.TypeValue) ? snapshots.GetValueOrDefault(r.Uuid) : m.Count;
            return new VolumeView(r.Uuid, owners[r.OwnerId], r.Groups, r.Visibility, r.Tag, VolumeLifecycle.QuotaGibOf(r.SizeBytes), r.SizeBytes,
                r.Identifier, r.Type, count, r.State, r.Backend, r.Format, r.Sharing, volumes.TurlOf(r), r.OriginUuid, r.Sha1,
                r.QuarantinedAt, r.QuarantineUntil, m.Select(ToView).ToList(), r.CreatedAt, r.UpdatedAt);
        }).ToList();
    }

    public static MountView ToView(MountRow m) => new(m.InstanceId, m.Host, m.Device, m.ReadOnly, m.HotPlugged, m.CreatedAt);
}
