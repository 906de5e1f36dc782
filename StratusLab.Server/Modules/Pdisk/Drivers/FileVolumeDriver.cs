using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Pdisk.Drivers;

/// <summary>
/// Volumes as raw or qcow2 files under Pdisk:VolumesDir; snapshots are qcow2 overlays whose backing file is the
/// origin. Every image operation goes through qemu-img.
/// </summary>
internal sealed partial class FileVolumeDriver(QemuImg qemuImg, PdiskPaths paths, PdiskOptions options) : IVolumeDriver
{
    public string Name => "file";

    string NewFormat => options.FileFormat;

    public VolumeLocation LocationOf(Guid uuid, long sizeBytes, string? format = null)
    {
        format ??= NewFormat;
        return new VolumeLocation(Path.Combine(paths.VolumesDir, $"{uuid:D}.{format}"), format, sizeBytes);
    }

    public async Task<VolumeLocation> CreateAsync(Guid uuid, long sizeBytes, CancellationToken ct)
    {
        var location = LocationOf(uuid, sizeBytes);
        Directory.CreateDirectory(paths.VolumesDir);
        await qemuImg.CreateAsync(location.Path, location.Format, sizeBytes, ct);
        return location;
    }

    public Task<VolumeLocation> ImportAsync(Guid uuid, string stagedFile, ImageInfo info, CancellationToken ct)
    {
        var location = LocationOf(uuid, info.VirtualSize, info.Format);
        Directory.CreateDirectory(paths.VolumesDir);
        if (info.Format == "raw")
        {
            // A disk is whole sectors; a raw image of another length is padded with zeros (sparse).
            using var file = new FileStream(stagedFile, FileMode.Open, FileAccess.Write);
            if (file.Length % 512 != 0) file.SetLength((file.Length + 511) / 512 * 512);
            location = location with { SizeBytes = file.Length };
        }
        // Same file system: a rename, however large the image.
        File.Move(stagedFile, location.Path, overwrite: false);
        return Task.FromResult(location);
    }

    public async Task<VolumeLocation> SnapshotAsync(Guid uuid, VolumeLocation origin, CancellationToken ct)
    {
        var location = LocationOf(uuid, origin.SizeBytes, "qcow2");
        await qemuImg.OverlayAsync(location.Path, origin.Path, origin.Format, ct);
        return location;
    }

    public async Task<VolumeLocation> FlattenAsync(Guid uuid, VolumeLocation live, CancellationToken ct)
    {
        // Copies every shared cluster: may take a while for large origins.
        await qemuImg.FlattenAsync(live.Path, ct);
        return live;
    }

    public Task PrepareBlockExportAsync(VolumeLocation location, CancellationToken ct)
    {
        if (location.Format != "qcow2") return Task.CompletedTask;
        using var file = new FileStream(location.Path, FileMode.Open, FileAccess.Write);
        // Extended once: a file already as long as a compact, fully written image of this size needs no more.
        if (file.Length < QemuImg.BlockExportLength(0, location.SizeBytes))
            file.SetLength(QemuImg.BlockExportLength(file.Length, location.SizeBytes));
        return Task.CompletedTask;
    }

    public Task RemoveAsync(VolumeLocation location, CancellationToken ct)
    {
        if (!Owns(location.Path))
            throw new InvalidOperationException($"refusing to remove {location.Path}: it is not under {paths.VolumesDir}");
        File.Delete(location.Path);
        return Task.CompletedTask;
    }
}
