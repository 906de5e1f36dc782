using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Images;

/// <summary>
/// One ORIGIN volume per image, downloaded and verified once however many instances ask for it at the same time
/// (single flight), and a LIVE copy-on-write snapshot per instance. Least-recently-used origins without snapshots
/// are evicted past Images:MaxCacheMiB or Images:MaxIdleHours.
/// </summary>
public sealed partial class ImageCache(
    ImagesStore store,
    ImageDownloader downloader,
    IVolumes volumes,
    IMarketplaceCatalog marketplace,
    IUserDirectory users,
    ICommandRunner runner,
    ServerOptions options,
    IHostApplicationLifetime lifetime,
    ILogger<ImageCache> logger) : IImageCache
{
    static readonly Counter<long> Hits = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.cache.hits");
    static readonly Counter<long> Misses = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.cache.misses");
    static readonly Counter<long> Evictions = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.cache.evictions");
    static readonly Counter<long> DownloadedBytes = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.download.bytes", "By");
    static readonly Histogram<double> DownloadSeconds = Platform.Telemetry.Telemetry.Meter.CreateHistogram<double>("stratuslab.images.download.duration", "s");

    readonly ConcurrentDictionary<string, Lazy<Task<VolumeSummary>>> _inFlight = new();
    readonly ConcurrentDictionary<string, TransferProgress> _progress = new();

    string CacheDir => Path.Combine(options.DataDir, "images");
    long MaxCacheBytes => options.Images.MaxCacheMiB << 20;

    public async Task<(ImageReference Reference, string? Identifier)> ResolveAsync(string? image, CancellationToken ct = default)
    {
        var reference = await ParseAsync(image);
        return (reference, reference.Kind == ImageSourceKind.Marketplace ? reference.Value : null);
    }

    async Task<ImageReference> ParseAsync(string? image)
    {
        var names = await store.NamesAsync();
        if (string.IsNullOrWhiteSpace(image))
        {
            var fallback = names.FirstOrDefault(n => n.IsDefault)
                ?? throw new InvalidInputException("image", "No image given and no default image is registered; build the test appliance (scripts/appliance/build.sh) or give 'image'.", unprocessable: true);
            return new ImageReference(ImageSourceKind.Marketplace, fallback.Identifier);
        }
        if (Guid.TryParse(image, out var uuid)) return new ImageReference(ImageSourceKind.Volume, uuid.ToString());
        if (Uri.TryCreate(image, UriKind.Absolute, out var uri) && uri.Scheme.Length > 1)
        {
            if (uri.Scheme is not ("http" or "https"))
                throw new InvalidInputException("image", $"'image' = '{Validate.Trim(image)}' uses {uri.Scheme}:; only http(s) URLs, Marketplace identifiers, image names and volume uuids are accepted.");
            return new ImageReference(ImageSourceKind.Url, uri.ToString());
        }
        if (IdentifierPattern().IsMatch(image)) return new ImageReference(ImageSourceKind.Marketplace, image);
        var named = names.FirstOrDefault(n => string.Equals(n.Name, image, StringComparison.OrdinalIgnoreCase))
            ?? throw new InvalidInputException("image", $"Unknown image '{Validate.Trim(image)}': give a Marketplace identifier, an http(s) URL, a volume uuid, or one of the names {string.Join(", ", names.Select(n => n.Name).DefaultIfEmpty("(none registered)"))}.", unprocessable: true);
        return new ImageReference(ImageSourceKind.Marketplace, named.Identifier);
    }

    public TransferProgress? ProgressOf(string image) =>
        _progress.TryGetValue(image, out var p) ? p : _progress.TryGetValue("url:" + image, out var u) ? u : null;

    public async Task<BootDisk> PrepareBootDiskAsync(ImageReference reference, long ownerId, CancellationToken ct = default)
    {
        if (reference.Kind == ImageSourceKind.Volume)
        {
            var volume = await volumes.FindAsync(Guid.Parse(reference.Value), ct)
                ?? throw new ImageUnavailableException($"volume {reference.Value} does not exist");
            if (volume.OwnerId != ownerId && (await users.FindAsync(ownerId, ct))?.Role != "admin")
                throw new ImageUnavailableException($"volume {reference.Value} does not exist, or it is not yours");
            return new BootDisk(volume.Uuid, false, volume.Identifier, true);
        }
        var key = reference.Kind == ImageSourceKind.Url ? "url:" + reference.Value : reference.Value;
        var wasCached = (await store.GetAsync(key))?.State == "ready";
        var origin = await EnsureOriginAsync(key, reference, ct);
        VolumeSummary live;
        try
        {
            live = await volumes.CreateSnapshotAsync(origin.Uuid, ownerId, tag: null, sharing: "local", ct);
        }
        catch (DomainException e)
        {
            throw new ImageUnavailableException($"the copy-on-write clone of image {origin.Identifier} could not be made: {e.Detail}");
        }
        await store.HitAsync(key);
        return new BootDisk(live.Uuid, true, origin.Identifier, wasCached);
    }

    /// <summary>The ORIGIN of an image: cached, or downloaded now by exactly one task that every caller waits for.</summary>
    async Task<VolumeSummary> EnsureOriginAsync(string key, ImageReference reference, CancellationToken ct)
    {
        var row = await store.GetAsync(key);
        if (row is { State: "ready", OriginUuid: { } uuid } && await volumes.FindAsync(Guid.Parse(uuid), ct) is { } cached)
        {
            Hits.Add(1);
            return cached;
        }
        var flight = _inFlight.GetOrAdd(key, k => new Lazy<Task<VolumeSummary>>(() => Task.Run(() => FetchAsync(k, reference))));
        try
        {
            // The download belongs to the server, not to the first caller: one caller giving up does not stop it.
            return await flight.Value.WaitAsync(ct);
        }
        finally
        {
            if (flight.Value.IsCompleted) _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<VolumeSummary>>>(key, flight));
        }
    }

    async Task<VolumeSummary> FetchAsync(string key, ImageReference reference)
    {
        var ct = lifetime.ApplicationStopping;
        Misses.Add(1);
        var started = Stopwatch.GetTimestamp();
        MetadataEntry? entry = null;
        IReadOnlyList<Uri> locations;
        if (reference.Kind == ImageSourceKind.Marketplace)
        {
            entry = await marketplace.FindLatestValidAsync(reference.Value, ct)
                ?? throw new ImageUnavailableException($"image {reference.Value} has no valid Marketplace entry (unknown, expired or deprecated)");
            locations = entry.Locations.Select(l => Uri.TryCreate(l, UriKind.Absolute, out var u) ? u : null).OfType<Uri>()
                .Where(u => u.Scheme is "http" or "https" or "file").ToList();
            if (locations.Count == 0) throw new ImageUnavailableException($"the Marketplace entry of {reference.Value} gives no http(s) or file location to download it from");
            if (entry.Bytes > MaxCacheBytes)
                throw new ImageUnavailableException($"image {reference.Value} is {entry.Bytes} bytes, larger than the whole cache (Images:MaxCacheMiB = {options.Images.MaxCacheMiB})");
        }
        else
        {
            locations = [new Uri(reference.Value)];
        }

        Directory.CreateDirectory(Path.Combine(CacheDir, "partial"));
        var stem = Path.Combine(CacheDir, "partial", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..24]);
        var partial = stem + ".part";
        var downloaded = stem + ".img";
        await store.StartAsync(key, reference.Value, reference.Kind.ToString().ToLowerInvariant(), entry?.Identifier);
        var expected = entry?.Checksums.ToDictionary(c => c.Algorithm, c => c.Value) ?? new Dictionary<string, string>();
        if (entry is not null && !expected.Keys.Any(k => ImageDownloader.NormalizeAlgorithm(k) == "SHA-1")) expected["SHA-1"] = entry.Sha1;
        var lastWrite = DateTime.MinValue;
        void Report(long done, long? total)
        {
            _progress[key] = new TransferProgress(done, total);
            if (DateTime.UtcNow - lastWrite < TimeSpan.FromSeconds(1)) return;
            lastWrite = DateTime.UtcNow;
            _ = store.ProgressAsync(key, done, total);
        }
        var failures = new List<string>();
        try
        {
            DownloadedFile? file = null;
            foreach (var location in locations)
            {
                try
                {
                    file = await downloader.DownloadAsync(location, partial, downloaded, entry?.Bytes, MaxCacheBytes, expected, Report, ct);
                    break;
                }
                catch (ImageDownloadException e)
                {
                    failures.Add(e.Message);
                    // Wrong data is never resumed; a broken connection keeps its partial file for the next attempt.
                    if (e.Message.Contains("check failed", StringComparison.Ordinal) || e.Message.Contains("HTML")) File.Delete(partial);
                }
            }
            if (file is null) throw new ImageUnavailableException(string.Join("; ", failures));
            DownloadedBytes.Add(file.Bytes);
            var (path, format) = await PrepareImageFileAsync(file.Path, entry?.Compression, ct);
            var sha1 = file.Checksums["SHA-1"];
            var identifier = entry?.Identifier ?? ImageIdentifiers.FromSha1Hex(sha1);
            var siteOwner = (await users.FindByNameAsync("admin", ct))?.Id ?? 1;
            var origin = await volumes.ImportFileAsync(new VolumeFromFile(siteOwner, path, format, VolumeType.MachineImageOrigin, "public", identifier,
                Tag: entry?.Title is { } t ? Validate.Trim(t) : null), ct);
            await store.ReadyAsync(key, identifier, origin.Uuid, origin.SizeBytes, file.Bytes);
            DownloadSeconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
            logger.LogInformation("Image {Key} cached as origin {Origin} ({Bytes} bytes) in {Seconds:0.0} s", key, origin.Uuid, file.Bytes, Stopwatch.GetElapsedTime(started).TotalSeconds);
            _ = Task.Run(() => EvictAsync(CancellationToken.None));
            return origin;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var reason = e is DomainException or ToolFailedException ? e.Message : "unexpected error: " + e.Message;
            if (e is not (DomainException or ToolFailedException)) logger.LogError(e, "Caching image {Key} failed", key);
            await store.FailedAsync(key, reason);
            File.Delete(downloaded);
            throw new ImageUnavailableException(reason);
        }
        finally
        {
            _progress.TryRemove(key, out _);
        }
    }

    /// <summary>Unpacks gzip, refuses what is not a disk image, converts formats other than raw and qcow2 to qcow2.</summary>
    async Task<(string Path, string Format)> PrepareImageFileAsync(string path, string? compression, CancellationToken ct)
    {
        var head = new byte[512];
        int read;
        await using (var f = File.OpenRead(path)) read = await f.ReadAsync(head, ct);
        if (read >= 2 && head[0] == 0x1f && head[1] == 0x8b || compression is "gz" or "gzip")
        {
            var unpacked = path + ".raw";
            await using (var input = new GZipStream(File.OpenRead(path), CompressionMode.Decompress))
            await using (var output = File.Create(unpacked))
            {
                try { await input.CopyToAsync(output, ct); }
                catch (InvalidDataException e) { throw new ImageUnavailableException($"the image claims to be gzip-compressed but is not: {e.Message}"); }
            }
            File.Move(unpacked, path, overwrite: true);
            await using (var f = File.OpenRead(path)) read = await f.ReadAsync(head, ct);
        }
        if (LooksLikeText(head.AsSpan(0, read)))
            throw new ImageUnavailableException("the download is text (an HTML page or an error message), not a disk image");
        var info = await runner.RunAsync(new ToolCommand("qemu-img", ["info", "--output=json", path]), ct);
        var format = System.Text.Json.Nodes.JsonNode.Parse(info.StandardOutput)!["format"]!.GetValue<string>();
        if (format is "raw" or "qcow2") return (path, format);
        var converted = path + ".qcow2";
        await runner.RunAsync(new ToolCommand("qemu-img", ["convert", "-O", "qcow2", path, converted]) { Timeout = TimeSpan.FromHours(1) }, ct);
        File.Move(converted, path, overwrite: true);
        return (path, "qcow2");
    }

    static bool LooksLikeText(ReadOnlySpan<byte> head)
    {
        if (head.Length == 0) return true;
        var text = Encoding.ASCII.GetString(head).TrimStart();
        return text.StartsWith("<!DOCTYPE", StringComparison.OrdinalIgnoreCase) || text.StartsWith("<html", StringComparison.OrdinalIgnoreCase)
            || text.StartsWith("<?xml", StringComparison.OrdinalIgnoreCase) || text.StartsWith('{');
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{27}$")]
    private static partial Regex IdentifierPattern();
}
