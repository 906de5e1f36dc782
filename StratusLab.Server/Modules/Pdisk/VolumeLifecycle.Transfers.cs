using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Modules.Pdisk.Transfers;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Transfers;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>A volume's content opened for download; disposing it removes any temporary conversion.</summary>
internal sealed record VolumeContent(Stream Stream, string FileName) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}

internal sealed partial class VolumeLifecycle
{
    long MaxImageBytes => options.MaxVolumeGiB * GiB;

    public async Task<VolumeSummary> CreateFromUrlAsync(VolumeFromUrl request, CancellationToken ct = default)
    {
        var spec = new VolumeSpec(request.OwnerId, request.Type, request.Visibility, [], request.Tag, request.Identifier, request.Sharing ?? options.Sharing);
        return Summarize(await DownloadAsync(spec, request.Url, request.Bytes, request.Sha1, ct));
    }

    public async Task<VolumeSummary> ImportFileAsync(VolumeFromFile request, CancellationToken ct = default)
    {
        var staged = paths.NewStagingFile(".img");
        try
        {
            if (!File.Exists(request.Path))
                throw new InvalidInputException("path", $"'{request.Path}' does not exist on this host; give the path of a raw or qcow2 image file.", unprocessable: true);
            if (!QemuImg.Formats.Contains(request.Format))
                throw new InvalidInputException("format", $"'format' = '{Validate.Trim(request.Format)}' is not accepted; accepted values: raw, qcow2.", unprocessable: true);
            await CheckIdentifierFreeAsync(request.Identifier);
            // Into the staging directory first: on the volumes' file system, so the import itself is a rename.
            File.Move(request.Path, staged);
            var spec = new VolumeSpec(request.OwnerId, request.Type, request.Visibility, [], request.Tag, request.Identifier, request.Sharing ?? options.Sharing);
            return Summarize(await ImportStagedAsync(spec, new StagedImage(staged, new FileInfo(staged).Length, "", false, new FileInfo(staged).Length), ct,
                expectedFormat: request.Format));
        }
        finally
        {
            File.Delete(staged);
            File.Delete(request.Path);
        }
    }

    /// <summary>A new volume from the image at an http(s) URL, checked against the expected bytes and SHA-1 (of what the server sends).</summary>
    public async Task<VolumeRow> DownloadAsync(VolumeSpec spec, string url, long? bytes, string? sha1, CancellationToken ct)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new InvalidInputException("url", $"'url' = '{Validate.Trim(url)}' is not an http(s) URL; give the address of a raw or qcow2 image (optionally gzip-compressed).");
        await CheckIdentifierFreeAsync(spec.Identifier);
        var max = options.MaxUrlDownloadBytes;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(options.UrlDownloadTimeoutMinutes));
        HttpDownload response;
        try
        {
            response = await downloader.OpenAsync(uri, timeout.Token);
        }
        catch (DownloadFailedException e) when (e.Failure == DownloadFailure.HttpError)
        {
            throw new InvalidInputException("url", $"{uri} answered {e.Status} {e.ReasonPhrase}; check the URL.", unprocessable: true);
        }
        catch (DownloadFailedException e)
        {
            throw new InvalidInputException("url", $"Could not download {uri}: {e.Cause}. Check the URL and that this server can reach it.", unprocessable: true);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new InvalidInputException("url", $"{uri} did not answer within Pdisk:UrlDownloadTimeoutMinutes = {options.UrlDownloadTimeoutMinutes}.", unprocessable: true);
        }
        using (response)
        {
            var length = response.ContentLength;
            if (bytes is { } expected && length is { } served && served != expected)
                throw new InvalidInputException("bytes", $"The size check failed: {uri} serves {served} bytes but 'bytes' = {expected}; nothing was kept. Check the URL or the expected size.", unprocessable: true);
            if (length > max)
                throw new DomainException(Rejection.TooLarge, $"{uri} serves {length} bytes, more than Pdisk:MaxUrlDownloadBytes = {max}.", "url");
            await using var body = await response.BodyAsync(timeout.Token);
            try
            {
                return await StageAndImportAsync(spec, body, bytes is { } b ? Math.Min(b, max) : max,
                    received => bytes is { } b2 && received > b2
                        ? new InvalidInputException("bytes", $"The size check failed: {uri} sent more than 'bytes' = {b2} bytes; nothing was kept.", unprocessable: true)
                        : new DomainException(Rejection.TooLarge, $"{uri} sent more than Pdisk:MaxUrlDownloadBytes = {max} bytes; nothing was kept.", "url"),
                    bytes, sha1, $"download from {uri}", timeout.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new InvalidInputException("url", $"Downloading {uri} took longer than Pdisk:UrlDownloadTimeoutMinutes = {options.UrlDownloadTimeoutMinutes}; nothing was kept.", unprocessable: true);
            }
            catch (Exception e) when (e is HttpRequestException or HttpIOException)
            {
                throw new InvalidInputException("url", $"The download from {uri} broke off: {e.Message}; nothing was kept.", unprocessable: true);
            }
        }
    }

    /// <summary>A new volume from an uploaded image (raw or qcow2, optionally gzip), streamed from the request body.</summary>
    public async Task<VolumeRow> UploadAsync(VolumeSpec spec, Stream body, long? contentLength, long? declaredBytes, string? sha1, CancellationToken ct)
    {
        var max = options.MaxUploadBytes;
        if (contentLength > max)
            throw new DomainException(Rejection.TooLarge, $"The upload is {contentLength} bytes, more than Pdisk:MaxUploadBytes = {max}.");
        if (declaredBytes is { } declared && contentLength is { } sent && sent > declared)
            throw new DomainException(Rejection.TooLarge, $"The upload is {sent} bytes, more than the {declared} bytes declared in 'bytes'; nothing was kept.", "bytes");
        await CheckIdentifierFreeAsync(spec.Identifier);
        return await StageAndImportAsync(spec, body, declaredBytes is { } d ? Math.Min(d, max) : max,
            received => declaredBytes is { } d2 && received > d2
                ? new DomainException(Rejection.TooLarge, $"The upload is larger than the {d2} bytes declared in 'bytes'; nothing was kept.", "bytes")
                : new DomainException(Rejection.TooLarge, $"The upload is larger than Pdisk:MaxUploadBytes = {max} bytes; nothing was kept."),
            declaredBytes, sha1, "upload", ct);
    }

    async Task CheckIdentifierFreeAsync(string? identifier)
    {
        if (identifier is not null && await store.FindByIdentifierAsync(identifier) is { } taken) throw IdentifierTaken(identifier, taken.Uuid);
    }

    async Task<VolumeRow> StageAndImportAsync(VolumeSpec spec, Stream source, long limit, Func<long, Exception> tooLarge, long? bytes, string? sha1,
        string what, CancellationToken ct)
    {
        var staged = paths.NewStagingFile(".img");
        try
        {
            StagedImage image;
            try
            {
                image = await ImageStaging.StageAsync(source, staged, limit, tooLarge, MaxImageBytes,
                    written => new DomainException(Rejection.TooLarge, $"The image is larger than Pdisk:MaxVolumeGiB = {options.MaxVolumeGiB} GiB once unpacked; nothing was kept."), ct);
            }
            catch (TransferRefusedException e)
            {
                throw new DomainException(Rejection.Unprocessable, $"The {what} was refused: {e.Message}; nothing was kept.");
            }
            if (bytes is { } expected && image.BytesReceived != expected)
                throw new InvalidInputException("bytes", $"The size check failed: the {what} had {image.BytesReceived} bytes but 'bytes' = {expected}; nothing was kept.", unprocessable: true);
            if (sha1 is not null && !string.Equals(sha1, image.Sha1, StringComparison.OrdinalIgnoreCase))
                throw new InvalidInputException("sha1", $"The SHA-1 check failed: the {what} has SHA-1 {image.Sha1}, not {sha1.ToLowerInvariant()}; nothing was kept.", unprocessable: true);
            return await ImportStagedAsync(spec, image, ct);
        }
        finally
        {
            // After a successful import the file has been moved or copied away; otherwise nothing of it stays.
            File.Delete(staged);
        }
    }

    async Task<VolumeRow> ImportStagedAsync(VolumeSpec spec, StagedImage image, CancellationToken ct, string? expectedFormat = null)
    {
        ImageInfo info;
        try
        {
            info = await qemuImg.InfoAsync(image.Path, ct);
        }
        catch (Exception e) when (e is ToolFailedException or FormatException)
        {
            throw new InvalidInputException("image", $"The image is not a disk image qemu-img can read ({e.Message}); give a raw or qcow2 image.", unprocessable: true);
        }
        if (!QemuImg.Formats.Contains(info.Format))
            throw new InvalidInputException("image", $"The image is {info.Format}; give raw or qcow2 (convert it with 'qemu-img convert -O qcow2').", unprocessable: true);
        if (expectedFormat is not null && info.Format != expectedFormat)
            throw new InvalidInputException("format", $"The image is {info.Format}, not {expectedFormat} as given.", unprocessable: true);
        if (info.BackingFile is not null)
            throw new InvalidInputException("image", $"The image depends on a backing file ({info.BackingFile}); flatten it first ('qemu-img convert -O qcow2').", unprocessable: true);
        if (info.VirtualSize > MaxImageBytes)
            throw new DomainException(Rejection.TooLarge, $"The image is a {info.VirtualSize}-byte disk, larger than Pdisk:MaxVolumeGiB = {options.MaxVolumeGiB} GiB.");
        var driver = services.VolumeDriver(options.Backend);
        var format = driver.Name == "file" ? info.Format : "raw";
        return await ProvisionAsync(spec, info.VirtualSize, image.Sha1.Length > 0 ? image.Sha1 : null, null,
            uuid => driver.LocationOf(uuid, info.VirtualSize, format),
            (uuid, t) => driver.ImportAsync(uuid, image.Path, info, t), ct);
    }

    /// <summary>
    /// A point-in-time copy of any READY volume the caller can see (RAW ones included) as a new DATA_IMAGE_ORIGIN owned by
    /// the caller: its data converted by qemu-img (backing chains flattened) into a staged file, then imported like an
    /// upload. Refused while the volume is attached read-write (it would change under the copy).
    /// </summary>
    public async Task<VolumeRow> CopyAsync(Caller caller, string uuid, string? tag, CancellationToken ct)
    {
        var row = await VisibleAsync(caller, uuid);
        using var _ = await LockAsync(uuid, ct);
        row = await store.GetAsync(uuid) ?? throw new NotFoundException($"Volume {uuid}");
        if (row.State != VolumeStates.Ready) throw new ConflictException($"Volume {uuid} is {row.State}; only READY volumes can be copied.");
        if ((await store.MountsOfVolumeAsync(uuid)).FirstOrDefault(m => !m.ReadOnly) is { } writer)
            throw new ConflictException($"Volume {uuid} is attached read-write to instance {writer.InstanceId} and would change while it is copied; detach it first.");
        var format = services.VolumeDriver(options.Backend).Name == "file" ? "qcow2" : "raw";
        var staged = paths.NewStagingFile("." + format);
        try
        {
            try
            {
                await qemuImg.ConvertAsync(row.Path, row.Format, staged, format, intoExisting: false, ct);
            }
            catch (ToolFailedException e)
            {
                throw BackendFailed(row.Backend, "copy the volume", e);
            }
            var spec = new VolumeSpec(caller.UserId, VolumeType.DataImageOrigin, "private", [], tag, null, row.Sharing, false);
            return await ImportStagedAsync(spec, new StagedImage(staged, 0, "", false, new FileInfo(staged).Length), ct, format);
        }
        finally
        {
            File.Delete(staged);
        }
    }

    /// <summary>
    /// A volume's content as <paramref name="format"/> (raw or qcow2) to stream out: the data itself when it is
    /// already raw, else a temporary conversion (snapshots are flattened). Refused while it is mounted read-write.
    /// </summary>
    public async Task<VolumeContent> OpenContentAsync(Caller caller, string uuid, string format, CancellationToken ct)
    {
        var row = await VisibleAsync(caller, uuid);
        if (row.State != VolumeStates.Ready) throw new ConflictException($"Volume {uuid} is {row.State}; only READY volumes can be downloaded.");
        if ((await store.MountsOfVolumeAsync(uuid)).FirstOrDefault(m => !m.ReadOnly) is { } writer)
            throw new ConflictException($"Volume {uuid} is attached read-write to instance {writer.InstanceId} and changes while it is read; detach it first (or snapshot an ORIGIN and download that).");
        var name = $"{uuid}.{format}.gz";
        if (format == "raw" && row.Format == "raw")
            return new VolumeContent(new FileStream(row.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan), name);
        var temp = paths.NewStagingFile("." + format);
        try
        {
            await qemuImg.ConvertAsync(row.Path, row.Format, temp, format, intoExisting: false, ct);
        }
        catch (Exception e)
        {
            File.Delete(temp);
            if (e is ToolFailedException) throw BackendFailed(row.Backend, "read the volume", e);
            throw;
        }
        return new VolumeContent(new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20,
            FileOptions.Asynchronous | FileOptions.SequentialScan | FileOptions.DeleteOnClose), name);
    }
}
