using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace StratusLab.Server.Modules.Images;

/// <summary>A download failed for a reason the user can act on; nothing of it is kept.</summary>
public sealed class ImageDownloadException(string message) : Exception(message);

/// <summary>What a finished, verified download gives: the file, its size, and every checksum computed over it.</summary>
public sealed record DownloadedFile(string Path, long Bytes, IReadOnlyDictionary<string, string> Checksums);

/// <summary>
/// Downloads one image (http, https or file URL) into a partial file, resuming with HTTP Range after a failure
/// or a restart when the server allows it (restarting from zero when it does not), then checks the size and every
/// checksum given. Redirects are followed by hand so that only http(s) targets are accepted.
/// </summary>
public sealed class ImageDownloader(HttpClient http, ILogger<ImageDownloader> logger)
{
    public const int MaxRedirects = 5;
    static readonly string[] Algorithms = ["MD5", "SHA-1", "SHA-256", "SHA-512"];

    /// <summary>Normalizes algorithm names as StratusLab writes them (SHA-1, SHA1, sha256...) to MD5/SHA-1/SHA-256/SHA-512.</summary>
    public static string? NormalizeAlgorithm(string name) => name.ToUpperInvariant().Replace("_", "-") switch
    {
        "MD5" => "MD5",
        "SHA1" or "SHA-1" => "SHA-1",
        "SHA256" or "SHA-256" => "SHA-256",
        "SHA512" or "SHA-512" => "SHA-512",
        _ => null,
    };

    /// <summary>
    /// Downloads <paramref name="url"/> to <paramref name="target"/>; <paramref name="partial"/> keeps the bytes received
    /// so far across attempts. <paramref name="progress"/> gets the bytes received and the total when known.
    /// </summary>
    public async Task<DownloadedFile> DownloadAsync(Uri url, string partial, string target, long? expectedBytes, long maxBytes,
        IReadOnlyDictionary<string, string> expectedChecksums, Action<long, long?> progress, CancellationToken ct)
    {
        if (url.Scheme == "file") await CopyLocalAsync(url, partial, maxBytes, progress, ct);
        else await DownloadHttpAsync(url, partial, expectedBytes, maxBytes, progress, ct);

        var size = new FileInfo(partial).Length;
        if (size == 0) throw new ImageDownloadException($"{Describe(url)} sent no data; it is not an image.");
        if (expectedBytes is { } bytes && size != bytes)
            throw new ImageDownloadException($"the size check failed for {Describe(url)}: expected {bytes} bytes, received {size}.");
        var computed = await ChecksumsAsync(partial, ct);
        foreach (var (algorithm, value) in expectedChecksums)
        {
            var name = NormalizeAlgorithm(algorithm);
            if (name is null) continue;
            if (!string.Equals(computed[name], value, StringComparison.OrdinalIgnoreCase))
                throw new ImageDownloadException($"the {name} checksum check failed for {Describe(url)}: expected {value.ToLowerInvariant()}, got {computed[name]}.");
        }
        File.Move(partial, target, overwrite: true);
        return new DownloadedFile(target, size, computed);
    }

    async Task DownloadHttpAsync(Uri url, string partial, long? expectedBytes, long maxBytes, Action<long, long?> progress, CancellationToken ct)
    {
        var current = url;
        for (var hop = 0; ; hop++)
        {
            var have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            }
            catch (HttpRequestException e)
            {
                throw new ImageDownloadException($"{Describe(current)} is unreachable: {e.Message}.");
            }
            using (response)
            {
                if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                    if (next.Scheme is not ("http" or "https"))
                        throw new ImageDownloadException($"{Describe(current)} redirects to {next.Scheme}:, which is refused; only http and https are followed.");
                    if (hop >= MaxRedirects) throw new ImageDownloadException($"{Describe(url)} redirects more than {MaxRedirects} times.");
                    current = next;
                    continue;
                }
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
                {
                    // What we have may already be everything; the size and checksum checks decide.
                    if (expectedBytes == have) return;
                    File.Delete(partial);
                    continue;
                }
                if (!response.IsSuccessStatusCode)
                    throw new ImageDownloadException($"{Describe(current)} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}.");
                var resumed = response.StatusCode == HttpStatusCode.PartialContent && have > 0;
                if (!resumed && have > 0)
                {
                    logger.LogInformation("{Url} does not resume downloads; starting again from zero", Describe(current));
                    have = 0;
                }
                var length = response.Content.Headers.ContentLength;
                var total = length is { } l ? l + (resumed ? have : 0) : expectedBytes;
                if (total > maxBytes)
                    throw new ImageDownloadException($"{Describe(current)} serves {total} bytes, more than the {maxBytes} allowed (cache size or storage quota).");
                if (response.Content.Headers.ContentType?.MediaType is "text/html")
                    throw new ImageDownloadException($"{Describe(current)} serves an HTML page, not an image; check the URL.");
                await using var body = await response.Content.ReadAsStreamAsync(ct);
                await using var file = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 20, useAsync: true);
                var buffer = new byte[1 << 20];
                var received = have;
                progress(received, total);
                while (true)
                {
                    int read;
                    try { read = await body.ReadAsync(buffer, ct); }
                    catch (Exception e) when (e is HttpRequestException or IOException)
                    {
                        throw new ImageDownloadException($"the download from {Describe(current)} broke off after {received} bytes: {e.Message}.");
                    }
                    if (read == 0) break;
                    received += read;
                    if (received > maxBytes)
                        throw new ImageDownloadException($"{Describe(current)} sent more than the {maxBytes} bytes allowed (cache size or storage quota).");
                    await file.WriteAsync(buffer.AsMemory(0, read), ct);
                    progress(received, total);
                }
                return;
            }
        }
    }

    static async Task CopyLocalAsync(Uri url, string partial, long maxBytes, Action<long, long?> progress, CancellationToken ct)
    {
        var source = url.LocalPath;
        if (!File.Exists(source)) throw new ImageDownloadException($"{source} does not exist on this server.");
        var length = new FileInfo(source).Length;
        if (length > maxBytes) throw new ImageDownloadException($"{source} is {length} bytes, more than the {maxBytes} allowed (cache size or storage quota).");
        await using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        await using var output = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 20, useAsync: true);
        var buffer = new byte[1 << 20];
        long copied = 0;
        int read;
        while ((read = await input.ReadAsync(buffer, ct)) > 0)
        {
            await output.WriteAsync(buffer.AsMemory(0, read), ct);
            copied += read;
            progress(copied, length);
        }
    }

    /// <summary>MD5, SHA-1, SHA-256 and SHA-512 of a file in one pass.</summary>
    public static async Task<IReadOnlyDictionary<string, string>> ChecksumsAsync(string path, CancellationToken ct)
    {
        var hashes = new[] { HashAlgorithmName.MD5, HashAlgorithmName.SHA1, HashAlgorithmName.SHA256, HashAlgorithmName.SHA512 }
            .Select(IncrementalHash.CreateHash).ToArray();
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        var buffer = new byte[1 << 20];
        int read;
        while ((read = await stream.ReadAsync(buffer, ct)) > 0)
            foreach (var h in hashes) h.AppendData(buffer, 0, read);
        var result = new Dictionary<string, string>();
        for (var i = 0; i < hashes.Length; i++)
        {
            result[Algorithms[i]] = Convert.ToHexStringLower(hashes[i].GetHashAndReset());
            hashes[i].Dispose();
        }
        return result;
    }

    /// <summary>A URL for messages: without user info or query string (which may carry credentials).</summary>
    public static string Describe(Uri url) => url.Scheme == "file" ? url.LocalPath : $"{url.Scheme}://{url.Host}{(url.IsDefaultPort ? "" : ":" + url.Port)}{url.AbsolutePath}";
}
