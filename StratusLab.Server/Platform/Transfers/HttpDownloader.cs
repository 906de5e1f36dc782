using System.Net;
using System.Net.Http.Headers;

namespace StratusLab.Server.Platform.Transfers;

/// <summary>Why a download failed; callers decide by this, never by the message.</summary>
public enum DownloadFailure
{
    /// <summary>The server could not be reached (DNS, refused, TLS...).</summary>
    Unreachable,
    /// <summary>A redirect to a scheme other than http or https, or too many redirects.</summary>
    RedirectRefused,
    /// <summary>The server answered with an error status (see <see cref="DownloadFailedException.Status"/>).</summary>
    HttpError,
    /// <summary>More bytes than allowed, announced or sent.</summary>
    TooLarge,
    /// <summary>The server sends something that is not an image (an HTML page, nothing at all).</summary>
    NotAnImage,
    /// <summary>The connection broke off during the body; what arrived is kept for a resumption.</summary>
    BrokeOff,
    /// <summary>The size differs from the expected one.</summary>
    SizeMismatch,
    /// <summary>A checksum differs from the expected one.</summary>
    ChecksumMismatch,
}

/// <summary>A download failed. <see cref="Exception.Message"/> is a sentence for users; <see cref="Cause"/> the bare underlying reason.</summary>
public sealed class DownloadFailedException(DownloadFailure failure, string message, string? cause = null, int? status = null, string? reasonPhrase = null)
    : Exception(message)
{
    public DownloadFailure Failure { get; } = failure;
    public string Cause { get; } = cause ?? message;
    public int? Status { get; } = status;
    public string? ReasonPhrase { get; } = reasonPhrase;

    /// <summary>The bytes received are wrong, not merely incomplete: they must not be resumed.</summary>
    public bool WrongData => Failure is DownloadFailure.SizeMismatch or DownloadFailure.ChecksumMismatch or DownloadFailure.NotAnImage;
}

/// <summary>What identifies the version of a resource that was downloaded, for conditional requests (If-None-Match, If-Modified-Since).</summary>
public sealed record ResourceVersion(string? ETag, DateTimeOffset? LastModified)
{
    public bool IsKnown => ETag is not null || LastModified is not null;
}

/// <summary>An opened response: headers read, body not yet. Disposing it closes the connection.</summary>
public sealed class HttpDownload(HttpResponseMessage response, Uri url, bool resumed) : IDisposable
{
    /// <summary>The URL that answered (after redirects).</summary>
    public Uri Url { get; } = url;

    /// <summary>The server says the version given as <c>ifChanged</c> is still current (304); there is no body.</summary>
    public bool NotModified => response.StatusCode == HttpStatusCode.NotModified;

    /// <summary>The server continues from the requested offset (206); otherwise the body starts at byte 0.</summary>
    public bool Resumed { get; } = resumed;

    /// <summary>A resumption was asked from at or past the end (416): what was received may already be everything.</summary>
    public bool RangeNotSatisfiable => response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable;

    public long? ContentLength => response.Content.Headers.ContentLength;
    public string? MediaType => response.Content.Headers.ContentType?.MediaType;

    /// <summary>The ETag and Last-Modified of what this response carries.</summary>
    public ResourceVersion Version => new(response.Headers.ETag?.ToString(), response.Content.Headers.LastModified);

    public Task<Stream> BodyAsync(CancellationToken ct) => response.Content.ReadAsStreamAsync(ct);

    public void Dispose() => response.Dispose();
}

/// <summary>What a finished, verified download to a file gives: the file, its size, every checksum, and its version; or "not modified".</summary>
public sealed record DownloadedFile(string Path, long Bytes, IReadOnlyDictionary<string, string> Checksums, ResourceVersion Version, bool NotModified = false);

/// <summary>
/// The server's one HTTP downloader: http and https only, redirects followed by hand so that a redirect to any other
/// scheme is refused, conditional revalidation (If-None-Match / If-Modified-Since → not modified), resumption with
/// Range, and size and checksum (MD5, SHA-1, SHA-256, SHA-512) verification of what it wrote.
/// </summary>
public sealed class HttpDownloader(HttpClient http, ILogger<HttpDownloader> logger)
{
    public const int MaxRedirects = 5;

    /// <summary>The named HttpClient (IHttpClientFactory) it uses: no automatic redirects, no decompression, no overall timeout.</summary>
    public const string ClientName = "downloads";

    /// <summary>
    /// Sends the GET (from byte <paramref name="resumeFrom"/>, conditional on <paramref name="ifChanged"/>), following
    /// redirects, and returns once the headers are in. Error statuses throw <see cref="DownloadFailure.HttpError"/>;
    /// 304 and 416 come back to the caller (see <see cref="HttpDownload.NotModified"/>, <see cref="HttpDownload.RangeNotSatisfiable"/>).
    /// </summary>
    public async Task<HttpDownload> OpenAsync(Uri url, CancellationToken ct, long resumeFrom = 0, ResourceVersion? ifChanged = null)
    {
        if (url.Scheme is not ("http" or "https"))
            throw new DownloadFailedException(DownloadFailure.RedirectRefused, $"{Describe(url)} is not an http(s) URL.");
        var current = url;
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            if (resumeFrom > 0) request.Headers.Range = new RangeHeaderValue(resumeFrom, null);
            if (ifChanged?.ETag is { } etag && EntityTagHeaderValue.TryParse(etag, out var tag)) request.Headers.IfNoneMatch.Add(tag);
            else if (ifChanged?.LastModified is { } modified) request.Headers.IfModifiedSince = modified;
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            }
            catch (HttpRequestException e)
            {
                throw new DownloadFailedException(DownloadFailure.Unreachable, $"{Describe(current)} is unreachable: {e.Message}.", e.Message);
            }
            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && status != 304 && response.Headers.Location is { } location)
            {
                response.Dispose();
                var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                if (next.Scheme is not ("http" or "https"))
                    throw new DownloadFailedException(DownloadFailure.RedirectRefused,
                        $"{Describe(current)} redirects to {next.Scheme}:, which is refused; only http and https are followed.");
                if (hop >= MaxRedirects)
                    throw new DownloadFailedException(DownloadFailure.RedirectRefused, $"{Describe(url)} redirects more than {MaxRedirects} times.");
                current = next;
                continue;
            }
            var answered = response.StatusCode == HttpStatusCode.NotModified && ifChanged is not null
                || response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && resumeFrom > 0
                || response.IsSuccessStatusCode;
            if (!answered)
            {
                response.Dispose();
                throw new DownloadFailedException(DownloadFailure.HttpError, $"{Describe(current)} answered HTTP {status} {response.ReasonPhrase}.",
                    status: status, reasonPhrase: response.ReasonPhrase);
            }
            return new HttpDownload(response, current, response.StatusCode == HttpStatusCode.PartialContent && resumeFrom > 0);
        }
    }

    /// <summary>
    /// Downloads <paramref name="url"/> into <paramref name="partial"/> (which keeps the bytes received so far across attempts and
    /// restarts: a later call resumes it with Range when the server allows, else starts from zero), checks the size and every
    /// checksum given, and moves it to <paramref name="target"/>. With <paramref name="ifChanged"/>, a server that says the
    /// version is current gives a <see cref="DownloadedFile.NotModified"/> result and no file.
    /// </summary>
    public async Task<DownloadedFile> DownloadFileAsync(Uri url, string partial, string target, long? expectedBytes, long maxBytes,
        IReadOnlyDictionary<string, string> expectedChecksums, Action<long, long?> progress, CancellationToken ct, ResourceVersion? ifChanged = null)
    {
        ResourceVersion version;
        while (true)
        {
            var have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            using var download = await OpenAsync(url, ct, have, have > 0 ? null : ifChanged);
            if (download.NotModified) return new DownloadedFile(target, 0, new Dictionary<string, string>(), ifChanged!, NotModified: true);
            version = download.Version;
            if (download.RangeNotSatisfiable)
            {
                // What we have may already be everything; the size and checksum checks decide.
                if (expectedBytes == have) break;
                File.Delete(partial);
                continue;
            }
            if (!download.Resumed && have > 0)
            {
                logger.LogInformation("{Url} does not resume downloads; starting again from zero", Describe(download.Url));
                have = 0;
            }
            var total = download.ContentLength is { } l ? l + have : expectedBytes;
            if (total > maxBytes)
                throw new DownloadFailedException(DownloadFailure.TooLarge,
                    $"{Describe(download.Url)} serves {total} bytes, more than the {maxBytes} allowed (cache size or storage quota).");
            if (download.MediaType is "text/html")
                throw new DownloadFailedException(DownloadFailure.NotAnImage, $"{Describe(download.Url)} serves an HTML page, not an image; check the URL.");
            await using var body = await download.BodyAsync(ct);
            // Unbuffered: the chunks below go straight to the file, so a killed server loses at most one chunk.
            await using var file = new FileStream(partial, download.Resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read, 0, useAsync: true);
            var buffer = new byte[1 << 20];
            var received = have;
            var filled = 0;
            progress(received, total);
            try
            {
                while (true)
                {
                    int read;
                    try { read = await body.ReadAsync(buffer.AsMemory(filled), ct); }
                    catch (Exception e) when (e is HttpRequestException or IOException)
                    {
                        throw new DownloadFailedException(DownloadFailure.BrokeOff,
                            $"the download from {Describe(download.Url)} broke off after {received} bytes: {e.Message}.", e.Message);
                    }
                    if (read == 0) break;
                    received += read;
                    filled += read;
                    if (received > maxBytes)
                        throw new DownloadFailedException(DownloadFailure.TooLarge,
                            $"{Describe(download.Url)} sent more than the {maxBytes} bytes allowed (cache size or storage quota).");
                    // Written a quarter of the buffer at a time, in whole file blocks, so that zero blocks become holes.
                    if (filled >= buffer.Length / 4)
                    {
                        var carry = (int)((file.Position + filled) % SparseFile.BlockSize);
                        await SparseFile.WriteAsync(file, buffer.AsMemory(0, filled - carry), ct);
                        buffer.AsSpan(filled - carry, carry).CopyTo(buffer);
                        filled = carry;
                    }
                    progress(received, total);
                }
            }
            finally
            {
                // What arrived is kept, also when the transfer breaks off or the server stops, for the resumption.
                await SparseFile.WriteAsync(file, buffer.AsMemory(0, filled), CancellationToken.None);
            }
            await SparseFile.EndAsync(file);
            progress(received, total);
            // The announced length is enforced: a body cut short is incomplete (kept, resumed), never a whole image.
            if (download.ContentLength is { } announced && received - have != announced)
                throw new DownloadFailedException(DownloadFailure.BrokeOff,
                    $"the download from {Describe(download.Url)} ended after {received} bytes, not the {have + announced} announced.");
            break;
        }
        var verified = await VerifyAsync(partial, Describe(url), expectedBytes, expectedChecksums, ct);
        File.Move(partial, target, overwrite: true);
        return verified with { Path = target, Version = version };
    }

    /// <summary>
    /// Checks a received file against the expected size and checksums (of any of the four algorithms) and returns
    /// all four checksums; a mismatch throws <see cref="DownloadFailure.SizeMismatch"/> or <see cref="DownloadFailure.ChecksumMismatch"/>.
    /// </summary>
    public static async Task<DownloadedFile> VerifyAsync(string path, string source, long? expectedBytes, IReadOnlyDictionary<string, string> expectedChecksums,
        CancellationToken ct)
    {
        var size = new FileInfo(path).Length;
        if (size == 0) throw new DownloadFailedException(DownloadFailure.NotAnImage, $"{source} sent no data; it is not an image.");
        if (expectedBytes is { } bytes && size != bytes)
            throw new DownloadFailedException(DownloadFailure.SizeMismatch, $"the size check failed for {source}: expected {bytes} bytes, received {size}.");
        var computed = await Checksums.OfFileAsync(path, ct);
        if (Checksums.FirstMismatch(computed, expectedChecksums) is { } wrong)
            throw new DownloadFailedException(DownloadFailure.ChecksumMismatch,
                $"the {wrong.Algorithm} checksum check failed for {source}: expected {wrong.Expected}, got {wrong.Actual}.");
        return new DownloadedFile(path, size, computed, new ResourceVersion(null, null));
    }

    /// <summary>A URL for messages: without user info or query string (which may carry credentials).</summary>
    public static string Describe(Uri url) =>
        url.Scheme == "file" ? url.LocalPath : $"{url.Scheme}://{url.Host}{(url.IsDefaultPort ? "" : ":" + url.Port)}{url.AbsolutePath}";
}

public static class HttpDownloaderRegistration
{
    /// <summary>
    /// Registers the one <see cref="HttpDownloader"/> and its named HttpClient (no automatic redirects: they are followed
    /// by hand so that only http(s) targets are accepted). Every module that downloads calls it; only the first call registers.
    /// </summary>
    public static IServiceCollection AddHttpDownloader(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(HttpDownloader))) return services;
        services.AddHttpClient(HttpDownloader.ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                AutomaticDecompression = System.Net.DecompressionMethods.None,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                ConnectTimeout = TimeSpan.FromSeconds(30),
            });
        services.AddSingleton(sp => new HttpDownloader(
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(HttpDownloader.ClientName), sp.GetRequiredService<ILogger<HttpDownloader>>()));
        return services;
    }
}
