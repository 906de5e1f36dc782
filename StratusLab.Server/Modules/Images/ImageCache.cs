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
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Transfers;

namespace StratusLab.Server.Modules.Images;

/// <summary>
/// One ORIGIN volume per image, downloaded and verified once however many instances ask for it at the same time
/// (single flight), and a LIVE copy-on-write snapshot per instance. Least-recently-used origins without snapshots
/// are evicted past Images:MaxCacheMiB or Images:MaxIdleHours.
/// </summary>
internal sealed partial class ImageCache(
    ImagesStore store,
    HttpDownloader downloader,
    QemuImg qemuImg,
    IVolumes volumes,
    IMarketplaceCatalog marketplace,
    IUserDirectory users,
    ServerOptions options,
    ImagesOptions images,
    IConfiguration configuration,
    IHostApplicationLifetime lifetime,
    TimeProvider clock,
    ILogger<ImageCache> logger) : IImageCache
{
    static readonly Counter<long> Hits = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.cache.hits");
    static readonly Counter<long> Misses = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.cache.misses");
    static readonly Counter<long> Evictions = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.cache.evictions");
    static readonly Counter<long> DownloadedBytes = Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.images.download.bytes", "By");
    static readonly Histogram<double> DownloadSeconds = Platform.Telemetry.Telemetry.Meter.CreateHistogram<double>("stratuslab.images.download.duration", "s");

    readonly ConcurrentDictionary<string, Lazy<Task<VolumeSummary>>> _inFlight = new();
    readonly ConcurrentDictionary<string, TransferProgress> _progress = new();
    readonly ConcurrentDictionary<string, byte> _saving = new();

    string CacheDir => Path.Combine(options.DataDir, "images");
    long MaxCacheBytes => images.MaxCacheMiB << 20;

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

    public async Task<BootDisk> PrepareBootDiskAsync(ImageReference reference, long ownerId, CancellationToken ct = default, string sharing = "local")
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
        var before = await store.GetAsync(key);
        var origin = await EnsureOriginAsync(key, reference, ct);
        var wasCached = before is { State: "ready" } && before.OriginUuid == origin.Uuid.ToString();
        VolumeSummary live;
        try
        {
            live = await volumes.CreateSnapshotAsync(origin.Uuid, ownerId, tag: null, sharing: sharing, ct);
        }
        catch (DomainException e)
        {
            throw new ImageUnavailableException($"the copy-on-write clone of image {origin.Identifier} could not be made: {e.Detail}");
        }
        await store.HitAsync(key);
        return new BootDisk(live.Uuid, true, origin.Identifier, wasCached);
    }

    /// <summary>
    /// The ORIGIN of an image: cached, or downloaded now by exactly one task that every caller waits for. A cached URL image
    /// older than Images:RevalidateAfterMinutes is first revalidated with the server (ETag / Last-Modified).
    /// </summary>
    async Task<VolumeSummary> EnsureOriginAsync(string key, ImageReference reference, CancellationToken ct)
    {
        var row = await store.GetAsync(key);
        if (row is { State: "ready", OriginUuid: { } uuid } && await volumes.FindAsync(Guid.Parse(uuid), ct) is { } cached)
        {
            if (reference.Kind != ImageSourceKind.Url || !IsDueForRevalidation(row))
            {
                Hits.Add(1);
                return cached;
            }
            return await SingleFlightAsync(key, () => RevalidateAsync(key, reference, row, cached), ct);
        }
        return await SingleFlightAsync(key, () => FetchAsync(key, reference), ct);
    }

    bool IsDueForRevalidation(CacheRow row)
    {
        var checkedAt = row.ValidatedAt ?? row.ReadyAt ?? row.CreatedAt;
        return clock.GetUtcNow() - checkedAt >= TimeSpan.FromMinutes(images.RevalidateAfterMinutes);
    }

    async Task<VolumeSummary> SingleFlightAsync(string key, Func<Task<VolumeSummary>> work, CancellationToken ct)
    {
        var flight = _inFlight.GetOrAdd(key, _ => new Lazy<Task<VolumeSummary>>(() => Task.Run(work)));
        // When every caller gave up waiting (a prefetch that only waits a moment), the flight still leaves the table when it ends.
        _ = flight.Value.ContinueWith(_ => _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<VolumeSummary>>>(key, flight)),
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
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

    /// <summary>
    /// Asks the server whether the cached version of a URL image is still current. Unchanged (304, or the same bytes
    /// again): the cached origin is used. Changed: the new version becomes the entry under this URL and is used; the old
    /// entry stays (clones of running instances keep it) under a superseded key until the normal eviction removes it.
    /// If the server cannot be asked, the cached, verified copy is used.
    /// </summary>
    async Task<VolumeSummary> RevalidateAsync(string key, ImageReference reference, CacheRow row, VolumeSummary cached)
    {
        var ct = lifetime.ApplicationStopping;
        var (partial, downloaded) = PartialFilesOf(key);
        DownloadedFile file;
        try
        {
            file = await downloader.DownloadFileAsync(new Uri(reference.Value), partial, downloaded, null, MaxCacheBytes, new Dictionary<string, string>(),
                ProgressReporter(key), ct, ifChanged: new ResourceVersion(row.ETag, row.LastModified));
        }
        catch (DownloadFailedException e)
        {
            if (e.WrongData) File.Delete(partial);
            logger.LogWarning("Image {Key} could not be revalidated ({Reason}); the cached copy is used", key, e.Message);
            Hits.Add(1);
            return cached;
        }
        finally
        {
            _progress.TryRemove(key, out _);
        }
        if (file.NotModified || ImageIdentifiers.FromSha1Hex(file.Checksums[Checksums.Sha1]) == row.Identifier)
        {
            File.Delete(downloaded);
            await store.ValidatedAsync(key, file.NotModified ? null : file.Version);
            Hits.Add(1);
            logger.LogInformation("Image {Key} revalidated: unchanged", key);
            return cached;
        }
        Misses.Add(1);
        var superseded = $"{key}#{row.Identifier}";
        await store.SupersedeAsync(key, superseded);
        await store.StartAsync(key, reference.Value, reference.Kind.ToString().ToLowerInvariant(), null);
        try
        {
            var origin = await CacheDownloadAsync(key, file, entry: null, Stopwatch.GetTimestamp(), ct);
            logger.LogInformation("Image {Key} changed on the server: now origin {Origin}; the old one stays as {Superseded} while clones use it", key, origin.Uuid, superseded);
            return origin;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The new version could not be cached: the old, verified one serves again under its URL.
            await store.DeleteAsync(key);
            await store.SupersedeAsync(superseded, key);
            logger.LogWarning("Image {Key} changed on the server but the new version could not be cached ({Reason}); the cached copy is used", key, e.Message);
            return cached;
        }
    }

    (string Partial, string Downloaded) PartialFilesOf(string key)
    {
        Directory.CreateDirectory(Path.Combine(CacheDir, "partial"));
        var stem = Path.Combine(CacheDir, "partial", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..24]);
        return (stem + ".part", stem + ".img");
    }

    Action<long, long?> ProgressReporter(string key)
    {
        var lastWrite = DateTime.MinValue;
        return (done, total) =>
        {
            _progress[key] = new TransferProgress(done, total);
            if (DateTime.UtcNow - lastWrite < TimeSpan.FromSeconds(1)) return;
            lastWrite = DateTime.UtcNow;
            _ = store.ProgressAsync(key, done, total);
        };
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
                throw new ImageUnavailableException($"image {reference.Value} is {entry.Bytes} bytes, larger than the whole cache (Images:MaxCacheMiB = {images.MaxCacheMiB})");
        }
        else
        {
            locations = [new Uri(reference.Value)];
        }

        var (partial, downloaded) = PartialFilesOf(key);
        await store.StartAsync(key, reference.Value, reference.Kind.ToString().ToLowerInvariant(), entry?.Identifier);
        var expected = entry?.Checksums.ToDictionary(c => c.Algorithm, c => c.Value) ?? new Dictionary<string, string>();
        if (entry is not null && !expected.Keys.Any(k => Checksums.Normalize(k) == Checksums.Sha1)) expected[Checksums.Sha1] = entry.Sha1;
        var report = ProgressReporter(key);
        var failures = new List<string>();
        try
        {
            DownloadedFile? file = null;
            foreach (var location in locations)
            {
                try
                {
                    file = location.Scheme == "file"
                        ? await CopyLocalAsync(location, partial, downloaded, entry?.Bytes, expected, report, ct)
                        : await downloader.DownloadFileAsync(location, partial, downloaded, entry?.Bytes, MaxCacheBytes, expected, report, ct);
                    break;
                }
                catch (DownloadFailedException e)
                {
                    failures.Add(e.Message);
                    // Wrong data is never resumed; a broken connection keeps its partial file for the next attempt.
                    if (e.WrongData) File.Delete(partial);
                }
            }
            if (file is null) throw new ImageUnavailableException(string.Join("; ", failures));
            return await CacheDownloadAsync(key, file, entry, started, ct);
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

    /// <summary>Turns a verified download into the cached ORIGIN of <paramref name="key"/> (owned by the site, public).</summary>
    async Task<VolumeSummary> CacheDownloadAsync(string key, DownloadedFile file, MetadataEntry? entry, long started, CancellationToken ct)
    {
        try
        {
            DownloadedBytes.Add(file.Bytes);
            var (path, format) = await PrepareImageFileAsync(file.Path, entry?.Compression, ct);
            var identifier = entry?.Identifier ?? ImageIdentifiers.FromSha1Hex(file.Checksums[Checksums.Sha1]);
            var origin = await volumes.ImportFileAsync(new VolumeFromFile(await users.SiteOwnerIdAsync(ct), path, format, VolumeType.MachineImageOrigin, "public", identifier,
                Tag: entry?.Title is { } t ? Validate.Trim(t) : null), ct);
            await store.ReadyAsync(key, identifier, origin.Uuid, origin.SizeBytes, file.Bytes, file.Version);
            DownloadSeconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
            logger.LogInformation("Image {Key} cached as origin {Origin} ({Bytes} bytes) in {Seconds:0.0} s", key, origin.Uuid, file.Bytes, Stopwatch.GetElapsedTime(started).TotalSeconds);
            _ = Task.Run(() => EvictAsync(CancellationToken.None));
            return origin;
        }
        finally
        {
            File.Delete(file.Path);
        }
    }

    /// <summary>A file: location (a Marketplace entry of a local image) copied into the partial file, then verified like a download.</summary>
    async Task<DownloadedFile> CopyLocalAsync(Uri url, string partial, string target, long? expectedBytes, IReadOnlyDictionary<string, string> expected,
        Action<long, long?> progress, CancellationToken ct)
    {
        var source = url.LocalPath;
        if (!File.Exists(source)) throw new DownloadFailedException(DownloadFailure.Unreachable, $"{source} does not exist on this server.");
        var length = new FileInfo(source).Length;
        if (length > MaxCacheBytes)
            throw new DownloadFailedException(DownloadFailure.TooLarge, $"{source} is {length} bytes, more than the {MaxCacheBytes} allowed (cache size or storage quota).");
        await using (var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true))
        await using (var output = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 20, useAsync: true))
            await CopySparseAsync(input, output, progress, length, ct);
        var verified = await HttpDownloader.VerifyAsync(partial, source, expectedBytes, expected, ct);
        File.Move(partial, target, overwrite: true);
        return verified with { Path = target };
    }

    /// <summary>
    /// Unpacks gzip, refuses what is not a disk image, checks the metadata of every format qemu-img can check (a truncated or
    /// damaged qcow2 is refused with qemu-img check's own words), and converts formats other than raw and qcow2 to qcow2.
    /// Raw images keep the holes the sparse writes made (a mostly empty disk takes only its data's space).
    /// </summary>
    async Task<(string Path, string Format)> PrepareImageFileAsync(string path, string? compression, CancellationToken ct)
    {
        var head = new byte[512];
        int read;
        await using (var f = File.OpenRead(path)) read = await f.ReadAsync(head, ct);
        if (read >= 2 && head[0] == 0x1f && head[1] == 0x8b || compression is "gz" or "gzip")
        {
            var unpacked = path + ".raw";
            try
            {
                await using (var input = new GZipStream(File.OpenRead(path), CompressionMode.Decompress))
                await using (var output = File.Create(unpacked))
                {
                    try { await CopySparseAsync(input, output, (_, _) => { }, null, ct); }
                    catch (InvalidDataException e) { throw new ImageUnavailableException($"the image claims to be gzip-compressed but is not: {e.Message}"); }
                }
                File.Move(unpacked, path, overwrite: true);
            }
            finally
            {
                File.Delete(unpacked);
            }
            await using (var f = File.OpenRead(path)) read = await f.ReadAsync(head, ct);
        }
        if (LooksLikeText(head.AsSpan(0, read)))
            throw new ImageUnavailableException("the download is text (an HTML page or an error message), not a disk image");
        var info = await qemuImg.InfoAsync(path, ct);
        var format = info.Format;
        if (format != "raw")
        {
            ImageCheck check;
            try { check = await qemuImg.CheckAsync(path, format, ct); }
            catch (ToolFailedException e) { throw new ImageUnavailableException($"the {format} image could not be checked, it is damaged: {e.Message}"); }
            if (check.IsCorrupt)
                throw new ImageUnavailableException($"the {format} image is corrupt (truncated or damaged): qemu-img check found {check.Describe()}");
            if (check.Leaks > 0) logger.LogInformation("Image {Path}: qemu-img check found {Leaks} leaked cluster(s), harmless", path, check.Leaks);
        }
        if (format is "raw" or "qcow2") return (path, format);
        var converted = path + ".qcow2";
        try { await qemuImg.ConvertAsync(path, format, converted, "qcow2", intoExisting: false, ct); }
        catch
        {
            File.Delete(converted);
            throw;
        }
        File.Move(converted, path, overwrite: true);
        return (path, "qcow2");
    }

    /// <summary>Copies a stream into a file with holes where the data has zero blocks; reports the bytes copied.</summary>
    static async Task<long> CopySparseAsync(Stream input, FileStream output, Action<long, long?> progress, long? total, CancellationToken ct)
    {
        var buffer = new byte[1 << 20];
        long copied = 0;
        while (true)
        {
            // Whole buffers, so that zero blocks line up with the file's blocks.
            var filled = 0;
            int read;
            while (filled < buffer.Length && (read = await input.ReadAsync(buffer.AsMemory(filled), ct)) > 0) filled += read;
            if (filled == 0) break;
            await SparseFile.WriteAsync(output, buffer.AsMemory(0, filled), ct);
            copied += filled;
            progress(copied, total);
        }
        await SparseFile.EndAsync(output);
        return copied;
    }

    internal static bool LooksLikeText(ReadOnlySpan<byte> head)
    {
        if (head.Length == 0) return true;
        // Only bytes that text can hold: an image that merely starts with '{' or '<' (1 in 256 random ones) is no page.
        foreach (var b in head)
            if (b is < 0x20 and not (0x09 or 0x0a or 0x0d) or 0x7f) return false;
        var text = Encoding.ASCII.GetString(head).TrimStart();
        return text.StartsWith("<!DOCTYPE", StringComparison.OrdinalIgnoreCase) || text.StartsWith("<html", StringComparison.OrdinalIgnoreCase)
            || text.StartsWith("<?xml", StringComparison.OrdinalIgnoreCase) || text.StartsWith('{');
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{27}$")]
    private static partial Regex IdentifierPattern();
}
