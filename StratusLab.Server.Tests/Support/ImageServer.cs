using System.Collections.Concurrent;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// An HTTP server on 127.0.0.1 that serves test images with Range support, counts requests, can go slowly,
/// and answers with the failures the image cache must handle (404, HTML, redirect to ftp, a connection cut mid-body).
/// </summary>
public sealed class ImageServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly ConcurrentDictionary<string, byte[]> _files = new();
    readonly ConcurrentDictionary<string, int> _requests = new();
    readonly ConcurrentQueue<string> _ranges = new();

    public Uri BaseAddress => new(_app.Urls.First());

    /// <summary>Bytes per second for /slow/ paths.</summary>
    public int SlowBytesPerSecond { get; set; } = 256 * 1024;

    /// <summary>Bytes sent on /cut/ paths before the connection is aborted (the length announced is the whole file's).</summary>
    public int CutAfterBytes { get; set; } = 256 * 1024;

    ImageServer(WebApplication app) => _app = app;

    public static async Task<ImageServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new ImageServer(app);
        app.MapGet("/img/{name}", (string name, HttpContext http) => server.ServeAsync(name, http, slow: false));
        app.MapGet("/slow/{name}", (string name, HttpContext http) => server.ServeAsync(name, http, slow: true));
        app.MapGet("/cut/{name}", (string name, HttpContext http) => server.ServeAsync(name, http, slow: false, cut: true));
        app.MapGet("/html", () => Results.Content("<!DOCTYPE html><html><body>Not found, sorry</body></html>", "text/html"));
        app.MapGet("/missing", () => Results.NotFound());
        app.MapGet("/to-ftp", () => Results.Redirect("ftp://127.0.0.1/image.qcow2"));
        await app.StartAsync();
        return server;
    }

    public Uri Add(string name, byte[] content, bool slow = false)
    {
        _files[name] = content;
        return new Uri(BaseAddress, (slow ? "slow/" : "img/") + name);
    }

    /// <summary>Serves <paramref name="content"/> at a URL whose every response breaks off after <see cref="CutAfterBytes"/>.</summary>
    public Uri AddCut(string name, byte[] content)
    {
        _files[name] = content;
        return new Uri(BaseAddress, "cut/" + name);
    }

    public Uri Url(string path) => new(BaseAddress, path);

    /// <summary>How many GET requests reached this file.</summary>
    public int RequestsFor(string name) => _requests.TryGetValue(name, out var n) ? n : 0;

    /// <summary>Range headers received, in order.</summary>
    public IReadOnlyList<string> Ranges => _ranges.ToList();

    async Task ServeAsync(string name, HttpContext http, bool slow, bool cut = false)
    {
        _requests.AddOrUpdate(name, 1, (_, n) => n + 1);
        if (!_files.TryGetValue(name, out var content))
        {
            http.Response.StatusCode = 404;
            return;
        }
        long from = 0;
        string? range = http.Request.Headers.Range;
        if (range is { Length: > 0 } && range.StartsWith("bytes=") && range.EndsWith('-'))
        {
            _ranges.Enqueue(range);
            from = long.Parse(range[6..^1]);
            if (from >= content.Length)
            {
                http.Response.StatusCode = 416;
                return;
            }
            http.Response.StatusCode = 206;
            http.Response.Headers.ContentRange = $"bytes {from}-{content.Length - 1}/{content.Length}";
        }
        http.Response.Headers.AcceptRanges = "bytes";
        http.Response.ContentType = "application/octet-stream";
        http.Response.ContentLength = content.Length - from;
        var chunk = slow ? Math.Max(1024, SlowBytesPerSecond / 10) : 1 << 20;
        var end = cut ? (int)Math.Min(content.Length, from + CutAfterBytes) : content.Length;
        for (var offset = (int)from; offset < end; offset += chunk)
        {
            var count = Math.Min(chunk, end - offset);
            await http.Response.Body.WriteAsync(content.AsMemory(offset, count), http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
            if (slow) await Task.Delay(100, http.RequestAborted);
        }
        if (!cut) return;
        await Task.Delay(200); // the bytes sent reach the client before the reset
        http.Abort();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
