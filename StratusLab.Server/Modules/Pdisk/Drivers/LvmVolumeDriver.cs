using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Pdisk.Drivers;

/// <summary>
/// Volumes as logical volumes in Pdisk:VolumeGroup (classic, or thin in Pdisk:ThinPool), always raw; snapshots are
/// LVM snapshots. Every LV carries this server's tag, so reconciliation never touches LVs it did not make.
/// </summary>
internal sealed partial class LvmVolumeDriver(ICommandRunner runner, QemuImg qemuImg, PdiskPaths paths, PdiskOptions options) : IVolumeDriver
{
    public string Name => "lvm";

    string Group => options.VolumeGroup;
    string? ThinPool => string.IsNullOrEmpty(options.ThinPool) ? null : options.ThinPool;

    public static string LvName(Guid uuid) => "sl-" + uuid.ToString("D");

    public VolumeLocation LocationOf(Guid uuid, long sizeBytes, string? format = null) =>
        new($"/dev/{Group}/{LvName(uuid)}", "raw", sizeBytes);

    Task<ToolResult> LvmAsync(string tool, IReadOnlyList<string> args, CancellationToken ct, TimeSpan? timeout = null) =>
        runner.RunAsync(new ToolCommand(tool, args) { Environment = LvmCommands.Environment, Timeout = timeout ?? TimeSpan.FromMinutes(2) }, ct);

    public async Task<VolumeLocation> CreateAsync(Guid uuid, long sizeBytes, CancellationToken ct)
    {
        RequireGroup();
        await LvmAsync(LvmCommands.LvCreate, LvmCommands.Create(Group, LvName(uuid), sizeBytes, paths.LvmTag, ThinPool), ct);
        return LocationOf(uuid, sizeBytes);
    }

    public async Task<VolumeLocation> ImportAsync(Guid uuid, string stagedFile, ImageInfo info, CancellationToken ct)
    {
        var size = (info.VirtualSize + 511) / 512 * 512;
        var location = await CreateAsync(uuid, size, ct);
        try
        {
            await qemuImg.ConvertAsync(stagedFile, info.Format, location.Path, "raw", intoExisting: true, ct);
        }
        catch
        {
            await RemoveAsync(location, CancellationToken.None);
            throw;
        }
        File.Delete(stagedFile);
        return location;
    }

    public async Task<VolumeLocation> SnapshotAsync(Guid uuid, VolumeLocation origin, CancellationToken ct)
    {
        RequireGroup();
        await LvmAsync(LvmCommands.LvCreate, LvmCommands.Snapshot(Group, Path.GetFileName(origin.Path), LvName(uuid), origin.SizeBytes, paths.LvmTag, ThinPool), ct);
        return LocationOf(uuid, origin.SizeBytes);
    }

    /// <summary>An LVM snapshot cannot outlive its origin: its data is copied into a new LV that then takes its name.</summary>
    public async Task<VolumeLocation> FlattenAsync(Guid uuid, VolumeLocation live, CancellationToken ct)
    {
        RequireGroup();
        var name = LvName(uuid);
        var flat = name + "-flat";
        var flatPath = $"/dev/{Group}/{flat}";
        await LvmAsync(LvmCommands.LvCreate, LvmCommands.Create(Group, flat, live.SizeBytes, paths.LvmTag, ThinPool), ct);
        try
        {
            await qemuImg.ConvertAsync(live.Path, "raw", flatPath, "raw", intoExisting: true, ct);
        }
        catch
        {
            await LvmAsync(LvmCommands.LvRemove, LvmCommands.Remove(Group, flat), CancellationToken.None);
            throw;
        }
        await LvmAsync(LvmCommands.LvRemove, LvmCommands.Remove(Group, name), ct);
        await LvmAsync(LvmCommands.LvRename, LvmCommands.Rename(Group, flat, name), ct);
        return live;
    }

    public Task PrepareBlockExportAsync(VolumeLocation location, CancellationToken ct) => Task.CompletedTask;

    public async Task RemoveAsync(VolumeLocation location, CancellationToken ct)
    {
        if (!Owns(location.Path))
            throw new InvalidOperationException($"refusing to remove {location.Path}: it is not a StratusLab LV of {Group}");
        try
        {
            await LvmAsync(LvmCommands.LvRemove, LvmCommands.Remove(Group, Path.GetFileName(location.Path)), ct);
        }
        catch (ToolFailedException e) when (e.StandardError.Contains("Failed to find logical volume", StringComparison.OrdinalIgnoreCase)) { }
    }

    void RequireGroup()
    {
        if (string.IsNullOrEmpty(Group))
            throw new InvalidOperationException("the lvm backend needs Pdisk:VolumeGroup");
    }
}
