using System.Diagnostics;

namespace StratusLab.Server.Platform.Http;

/// <summary>One line per request: method, path (never the query string or headers, so tokens never reach a log), status, time.</summary>
public sealed class RequestLogging(RequestDelegate next, ILogger<RequestLogging> logger)
{
    public async Task InvokeAsync(HttpContext http)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next(http);
        }
        finally
        {
            var path = http.Request.Path.Value ?? "/";
            if (!path.StartsWith("/metrics", StringComparison.Ordinal) && !path.StartsWith("/health", StringComparison.Ordinal))
                logger.LogInformation("{Method} {Path} -> {Status} in {ElapsedMs:0.0} ms", http.Request.Method, path,
                    http.Response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }
}
