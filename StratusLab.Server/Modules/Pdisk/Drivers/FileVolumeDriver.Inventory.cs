using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Pdisk.Drivers;

internal sealed partial class FileVolumeDriver
{
    public bool Exists(VolumeLocation location) => File.Exists(location.Path);

    public bool Owns(string path) =>
        Path.GetFullPath(path).StartsWith(paths.VolumesDir + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>Volume files (&lt;uuid&gt;.raw|qcow2) and anything else in the volumes and staging directories.</summary>
    public Task<IReadOnlyList<StoredItem>> ListAsync(CancellationToken ct)
    {
        var items = new List<StoredItem>();
        if (!Directory.Exists(paths.VolumesDir)) return Task.FromResult<IReadOnlyList<StoredItem>>(items);
        foreach (var file in Directory.EnumerateFiles(paths.VolumesDir))
            items.Add(new StoredItem(file, UuidOf(Path.GetFileName(file))));
        if (Directory.Exists(paths.StagingDir))
            foreach (var file in Directory.EnumerateFiles(paths.StagingDir, "*", SearchOption.AllDirectories))
                items.Add(new StoredItem(file, null));
        return Task.FromResult<IReadOnlyList<StoredItem>>(items);
    }

    /// <summary>The uuid of a volume file name (&lt;uuid&gt;.raw or &lt;uuid&gt;.qcow2), else null.</summary>
    public static Guid? UuidOf(string fileName)
    {
        var dot = fileName.IndexOf('.');
        if (dot != 36 || !QemuImg.Formats.Contains(fileName[(dot + 1)..])) return null;
        return Guid.TryParseExact(fileName[..dot], "D", out var uuid) ? uuid : null;
    }
}
