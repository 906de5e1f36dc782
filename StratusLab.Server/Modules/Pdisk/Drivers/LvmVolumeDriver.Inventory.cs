namespace StratusLab.Server.Modules.Pdisk.Drivers;

internal sealed partial class LvmVolumeDriver
{
    public bool Exists(VolumeLocation location) => File.Exists(location.Path);

    public bool Owns(string path) =>
        !string.IsNullOrEmpty(Group) && path.StartsWith($"/dev/{Group}/sl-", StringComparison.Ordinal);

    /// <summary>The LVs of the volume group that carry this server's tag.</summary>
    public async Task<IReadOnlyList<StoredItem>> ListAsync(CancellationToken ct)
    {
        if (string.IsNullOrEmpty(Group)) return [];
        var result = await LvmAsync(LvmCommands.Lvs, LvmCommands.List(Group), ct);
        return LvmCommands.ParseList(result.StandardOutput)
            .Where(lv => lv.Tags.Contains(paths.LvmTag))
            .Select(lv => new StoredItem(lv.Path, UuidOf(lv.Name)))
            .ToList();
    }

    /// <summary>The uuid of an LV name (sl-&lt;uuid&gt;), else null (e.g. a -flat copy left by a crash).</summary>
    public static Guid? UuidOf(string lvName) =>
        lvName.StartsWith("sl-", StringComparison.Ordinal) && Guid.TryParseExact(lvName[3..], "D", out var uuid) ? uuid : null;
}
