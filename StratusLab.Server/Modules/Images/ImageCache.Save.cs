using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Transfers;

namespace StratusLab.Server.Modules.Images;

internal sealed partial class ImageCache
{
    /// <summary>
    /// StratusLab's --save: flattens an instance's LIVE disk into a new independent ORIGIN, publishes a site-signed
    /// Marketplace entry derived from the original one (new checksum, bumped version, the user as creator in the
    /// description, a new title), caches it, and returns its identifier. The VM must be powered off. The same bytes
    /// give the same identifier: a disk saved as an image that is already kept (saved unchanged before) is that image,
    /// and its identifier is returned.
    /// </summary>
    public async Task<string> SaveAsync(Guid liveVolume, string? originalIdentifier, string userName, long instanceId, CancellationToken ct = default)
    {
        var live = await volumes.FindAsync(liveVolume, ct) ?? throw new ImageUnavailableException($"the disk {liveVolume} of instance {instanceId} is gone");
        var original = originalIdentifier is null ? null : await marketplace.FindLatestValidAsync(originalIdentifier, ct);
        Directory.CreateDirectory(Path.Combine(CacheDir, "partial"));
        var stem = $"save-{instanceId}-{Guid.NewGuid():N}";
        var flat = Path.Combine(CacheDir, "partial", stem + ".qcow2");
        _saving[stem] = 0;
        try
        {
            var source = live.Turl.StartsWith("file://", StringComparison.Ordinal) ? new Uri(live.Turl).LocalPath : live.Turl;
            // convert reads through the backing chain: the result no longer depends on the origin.
            await qemuImg.ConvertAsync(source, live.Format, flat, "qcow2", intoExisting: false, ct);
            var sha1 = (await Checksums.OfFileAsync(flat, ct, Checksums.Sha1))[Checksums.Sha1];
            var identifier = ImageIdentifiers.FromSha1Hex(sha1);
            var origin = await volumes.FindByIdentifierAsync(identifier, ct);
            var existing = origin is not null;
            if (origin is null)
            {
                try
                {
                    origin = await volumes.ImportFileAsync(new VolumeFromFile(await users.SiteOwnerIdAsync(ct), flat, "qcow2", VolumeType.MachineImageOrigin, "public", identifier,
                        Tag: $"saved-{instanceId}"), ct);
                }
                catch (ConflictException)
                {
                    // Another save of the same bytes got there first.
                    origin = await volumes.FindByIdentifierAsync(identifier, ct);
                    if (origin is null) throw;
                    existing = true;
                }
            }
            if (existing)
            {
                if (origin.Type != VolumeType.MachineImageOrigin || origin.OwnerId != await users.SiteOwnerIdAsync(ct))
                    throw new ImageUnavailableException($"the disk of instance {instanceId} has the same content as volume {origin.Uuid}, which is not a site image; nothing was saved");
                if (await marketplace.FindLatestValidAsync(identifier, ct) is { } known)
                {
                    await EnsureCachedAsync(known.Identifier, origin);
                    logger.LogInformation("Instance {Id}: disk unchanged since image {Identifier} was saved; that image is the saved one", instanceId, known.Identifier);
                    return known.Identifier;
                }
            }
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
            await EnsureCachedAsync(entry.Identifier, origin);
            logger.LogInformation("Instance {Id}: disk saved as image {Identifier}", instanceId, entry.Identifier);
            return entry.Identifier;
        }
        finally
        {
            File.Delete(flat);
            _saving.TryRemove(stem, out _);
        }
    }

    /// <summary>The cache entry of a saved image, pointing at its ORIGIN (written again if it was missing or elsewhere).</summary>
    async Task EnsureCachedAsync(string identifier, VolumeSummary origin)
    {
        if (await store.GetAsync(identifier) is { State: "ready" } row && row.OriginUuid == origin.Uuid.ToString()) return;
        await store.StartAsync(identifier, identifier, "marketplace", identifier);
        await store.ReadyAsync(identifier, identifier, origin.Uuid, origin.SizeBytes);
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
