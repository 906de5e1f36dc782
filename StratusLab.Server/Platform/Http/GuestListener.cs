using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Platform.Http;

/// <summary>
/// When every listener is https, guests still reach the guest API: the server adds a plain-HTTP listener on 127.0.0.1
/// (Tls:GuestHttpPort; 0 = first https port + 1) that serves /guest/v1 only. User-mode guests reach it at 10.0.2.2 (QEMU
/// maps that to the host's loopback), bridge guests at their gateway (forwarded to the loopback port). The guest token it
/// carries opens nothing but that one instance's guest API, and /api/v1 is refused there, so no user token crosses it.
/// </summary>
public static class GuestListener
{
    /// <summary>The extra listener's URL, or null when a plain-HTTP listener exists already, no https is served, or it is off.</summary>
    public static string? UrlFor(ServerOptions options)
    {
        var urls = options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (!ServerTls.Wanted(options.Urls) || options.Tls.GuestHttpPort < 0) return null;
        if (urls.Any(u => u.StartsWith("http://", StringComparison.OrdinalIgnoreCase))) return null;
        var port = options.Tls.GuestHttpPort;
        if (port == 0)
        {
            var https = urls.Select(u => Uri.TryCreate(u.Replace("*", "0.0.0.0").Replace("+", "0.0.0.0"), UriKind.Absolute, out var uri) ? uri : null)
                .First(u => u is not null && u.Scheme == "https")!;
            // A dynamic https port (tests: port 0) gets a dynamic guest port as well.
            port = https.Port == 0 ? 0 : https.Port + 1;
        }
        return $"http://127.0.0.1:{port}";
    }

    /// <summary>Refuses everything but the guest API (and /health) on the added plain-HTTP listener.</summary>
    public static void UseGuestListener(this WebApplication app, ServerOptions options)
    {
        if (UrlFor(options) is null) return;
        app.Use(async (http, next) =>
        {
            var path = http.Request.Path;
            if (http.Request.IsHttps || path.StartsWithSegments("/guest") || path.StartsWithSegments("/health"))
            {
                await next(http);
                return;
            }
            var https = options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0];
            await Results.Problem(statusCode: 404, title: "Guest API only",
                detail: $"This plain-HTTP listener serves only the guest API (/guest/v1) for VMs; use the API over TLS at {https}.").ExecuteAsync(http);
        });
    }

    /// <summary>Plain HTTP on an address other than the loopback sends tokens and passwords in clear text: say so at start-up.</summary>
    public static IEnumerable<string> PlainHttpOffLoopback(string urls) =>
        urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(u => u.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !u.Contains("unix:", StringComparison.OrdinalIgnoreCase))
            .Where(u => !(Uri.TryCreate(u.Replace("*", "0.0.0.0").Replace("+", "0.0.0.0"), UriKind.Absolute, out var uri) && uri.IsLoopback));
}
