using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Transfers;

namespace StratusLab.Server.Modules.Images;

internal sealed partial class ImageCache
{
    /// <summary>
    /// StratusLab's --save: flattens an instance's LIVE disk into a new independent ORIGIN, publishes a site-signed
    /// Marketplace entry derived from the original one (new checksum, bumped version, the user as creator in the
    /// description, a new title), caches it, and returns its identifier. The VM must be powered off.
    /// </summary>
    public async Task<string> SaveAsync(Guid liveVolume, string? originalIdentifier, string userName, long instanceId, CancellationToken ct = default)
    {
        var live = await volumes.FindAsync(liveVolume, ct) ?? throw new ImageUnavailableException($"the disk {liveVolume} of instance {instanceId} is gone");
        var original = originalIdentifier is null ? null : await marketplace.FindLatestValidAsync(originalIdentifier, ct);
        Directory.CreateDirectory(Path.Combine(CacheDir, "partial"));
        var flat = Path.Combine(CacheDir, "partial", $"save-{instanceId}-{Guid.NewGuid():N}.qcow2");
        try
        {
            var source = live.Turl.StartsWith("file://", StringComparison.Ordinal) ? new Uri(live.Turl).LocalPath : live.Turl;
            // convert reads through the backing chain: the result no longer depends on the origin.
            await qemuImg.ConvertAsync(source, live.Format, flat, "qcow2", intoExisting: false, ct);
            var sha1 = (await Checksums.OfFileAsync(flat, ct, Checksums.Sha1))[Checksums.Sha1];
            var identifier = ImageIdentifiers.FromSha1Hex(sha1);
            var origin = await volumes.ImportFileAsync(new VolumeFromFile(await users.SiteOwnerIdAsync(ct), flat, "qcow2", VolumeType.MachineImageOrigin, "public", identifier,
                Tag: $"saved-{instanceId}"), ct);
            var entry = await marketplace.RegisterSiteImageAsync(origin.LocalPath, new SiteImageInfo
            {
                Title = $"{original?.Title ?? "image"} (saved from instance {instanceId})",
                Description = $"Saved by {userName} from instance {instanceId}" + (original is null ? "." : $", based on {original.Identifier}."),
                Format = "qcow2",
                Os = original?.Os ?? "linux",
                OsVersion = original?.OsVersion,
                OsArch = original?.OsArch ?? "x86_64",
                Version = BumpVersion(original?.Version),
                Tags = [.. original?.Tags ?? [], "saved"],
            }, ct);
            await store.StartAsync(entry.Identifier, entry.Identifier, "marketplace", entry.Identifier);
            await store.ReadyAsync(entry.Identifier, entry.Identifier, origin.Uuid, origin.SizeBytes);
            logger.LogInformation("Instance {Id}: disk saved as image {Identifier}", instanceId, entry.Identifier);
            return entry.Identifier;
        }
        finally
        {
            File.Delete(flat);
        }
    }

    /// <summary>1.0 → 1.1, 2 → 3, none → 1.0 (pure).</summary>
    public static string BumpVersion(string? version)
    {
        if (string.IsNullOrWhiteSpace(version)) return "1.0";
        var parts = version.Split('.');
        return int.TryParse(parts[^1], out var last)
            ? string.Join('.', parts[..^1].Append((last + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)))
            : version + ".1";
    }
}
