using System.Security.Cryptography;
using System.Text.Json.Nodes;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute;

/// <summary>
/// The images instances boot from: immutable copies under &lt;data-dir&gt;/images, registered by the server
/// (the bundled appliance, on start) or by admins. The image cache issue replaces this with Marketplace downloads.
/// </summary>
public sealed class ImageCatalog(ComputeStore store, ICommandRunner runner, Marketplace.Contracts.IMarketplaceCatalog marketplace, ServerOptions options, ILogger<ImageCatalog> logger)
{
    public const string ApplianceName = "stratuslab-appliance";

    string ImagesDir => Path.Combine(options.DataDir, "images");

    /// <summary>Finds an image by name, Marketplace identifier, or the default when <paramref name="reference"/> is empty.</summary>
    public async Task<ImageRow?> FindAsync(string? reference)
    {
        var images = await store.ListImagesAsync();
        if (string.IsNullOrEmpty(reference)) return images.FirstOrDefault(i => i.IsDefault);
        return images.FirstOrDefault(i => string.Equals(i.Name, reference, StringComparison.OrdinalIgnoreCase))
            ?? images.FirstOrDefault(i => i.Identifier == reference);
    }

    public Task<IReadOnlyList<ImageRow>> ListAsync() => store.ListImagesAsync();

    /// <summary>Copies a local image file into the image store (once per content) and registers it under <paramref name="name"/>.</summary>
    public async Task<ImageRow> RegisterAsync(string name, string sourcePath, bool isDefault, string? identifier = null, CancellationToken ct = default)
    {
        if (!File.Exists(sourcePath)) throw ApiException.BadRequest("path", $"'{sourcePath}' does not exist on the server; give the path of a qcow2 or raw image file.");
        var info = await InfoAsync(sourcePath, ct);
        if (info.Format is not ("qcow2" or "raw"))
            throw ApiException.Invalid("path", $"'{sourcePath}' is a {info.Format} image; give a qcow2 or raw image.");
        if (info.HasBackingFile)
            throw ApiException.Invalid("path", $"'{sourcePath}' depends on a backing file; flatten it first (qemu-img convert -O qcow2).");
        var sha1 = await Sha1Async(sourcePath, ct);
        Directory.CreateDirectory(ImagesDir);
        var target = Path.Combine(ImagesDir, $"{sha1}.{info.Format}");
        if (!File.Exists(target))
        {
            var temp = target + ".partial";
            File.Copy(sourcePath, temp, overwrite: true);
            // Read-only: every VM boots from a copy-on-write overlay on it, never from the file itself.
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.GroupRead);
            File.Move(temp, target, overwrite: true);
        }
        // Every bootable image is a Marketplace image, signed by the site, so the site image policy applies to all of them.
        var entry = await marketplace.RegisterSiteImageAsync(target, new Marketplace.Contracts.SiteImageInfo
        {
            Title = name == ApplianceName ? "StratusLab test appliance" : name,
            Description = name == ApplianceName ? "Tiny Debian-based appliance: busybox, dropbear, context CD, guest API ready report." : null,
            Format = info.Format,
            Os = "linux",
            Tags = [name],
        }, ct);
        var row = new ImageRow(name, target, info.Format, info.VirtualSize, sha1, identifier ?? entry.Identifier, isDefault, DateTimeOffset.UtcNow);
        await store.UpsertImageAsync(row);
        logger.LogInformation("Image {Name} registered ({Format}, {Size} bytes virtual, sha1 {Sha1})", name, info.Format, info.VirtualSize, sha1);
        return row;
    }

    /// <summary>Registers the bundled test appliance as the default image, if it has been built.</summary>
    public async Task<ImageRow?> RegisterApplianceAsync(CancellationToken ct)
    {
        var path = AppliancePath(options);
        if (path is null)
        {
            logger.LogWarning("The test appliance is not built yet, so there is no default image: run scripts/appliance/build.sh (scripts/run.sh does it)");
            return null;
        }
        var existing = await FindAsync(ApplianceName);
        var image = await RegisterAsync(ApplianceName, path, isDefault: existing is null || existing.IsDefault, ct: ct);
        return image;
    }

    /// <summary>Where the built appliance is: Compute:ApplianceImage, $STRATUSLAB_APPLIANCE_DIR, or ~/.cache/stratuslab/appliance.</summary>
    public static string? AppliancePath(ServerOptions options)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(options.Compute.ApplianceImage)) candidates.Add(options.Compute.ApplianceImage);
        if (Environment.GetEnvironmentVariable("STRATUSLAB_APPLIANCE_DIR") is { Length: > 0 } dir)
            candidates.Add(Path.Combine(dir, "stratuslab-appliance.qcow2"));
        candidates.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "stratuslab", "appliance", "stratuslab-appliance.qcow2"));
        return candidates.FirstOrDefault(File.Exists);
    }

    public sealed record ImageInfo(string Format, long VirtualSize, bool HasBackingFile);

    public async Task<ImageInfo> InfoAsync(string path, CancellationToken ct)
    {
        var result = await runner.RunAsync(new ToolCommand("qemu-img", ["info", "--output=json", path]), ct);
        return ParseInfo(result.StandardOutput);
    }

    /// <summary>Parses `qemu-img info --output=json` (pure).</summary>
    public static ImageInfo ParseInfo(string json)
    {
        var node = JsonNode.Parse(json)!;
        return new ImageInfo(node["format"]!.GetValue<string>(), node["virtual-size"]!.GetValue<long>(), node["backing-filename"] is not null);
    }

    static async Task<string> Sha1Async(string path, CancellationToken ct)
    {
        await using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA1.HashDataAsync(stream, ct));
    }
}
