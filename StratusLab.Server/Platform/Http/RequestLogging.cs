using System.Diagnostics;

namespace StratusLab.Server.Platform.Http;

/// <summary>
/// One line per request: method, path (never the query string or headers, so tokens never reach a log), status, time.
/// The guest API (heartbeats, metrics, ready reports: most of the traffic) is logged at Debug, the rest at Information.
/// </summary>
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
            {
                var level = path.StartsWith("/guest/", StringComparison.Ordinal) ? LogLevel.Debug : LogLevel.Information;
                if (logger.IsEnabled(level))
                    logger.Log(level, "{Method} {Path} -> {Status} in {ElapsedMs:0.0} ms", http.Request.Method, path,
                        http.Response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
    }
}
