using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Platform.Http;

/// <summary>
/// The one place that knows where guests reach the guest API: from PublicUrl when set, else from the address the
/// server really listens on (a loopback or wildcard listener is reached at the guest's gateway).
/// </summary>
public sealed class GuestApiAddress(IServer server, ServerOptions options)
{
    /// <summary>The URL for a guest on QEMU user-mode networking, which maps 10.0.2.2 in the guest to the host's loopback.</summary>
    public string Url => UrlVia(UserModeGateway);

    /// <summary>
    /// The URL for a guest whose first NIC has this gateway: a server on the loopback (or every address) is reached at the
    /// gateway, which QEMU user-mode networking maps to the host's loopback and bridge networks forward to it.
    /// </summary>
    public string UrlVia(string? gateway)
    {
        if (!string.IsNullOrEmpty(options.PublicUrl)) return options.PublicUrl.TrimEnd('/');
        var uri = Listening();
        return IsLocal(uri) ? $"{uri.Scheme}://{gateway ?? UserModeGateway}:{uri.Port}" : $"{uri.Scheme}://{uri.Host}:{uri.Port}";
    }

    /// <summary>The port of the guest API on the loopback (or every address), which bridge guests reach at their gateway; null when it listens elsewhere only.</summary>
    public int? LoopbackPort => Addresses().Select(Parse).FirstOrDefault(u => u is not null && IsLocal(u))?.Port;

    /// <summary>The URL guests of a server listening on <paramref name="urls"/> would use, before it listens (for messages and tests).</summary>
    public static string UrlFor(string urls, string? publicUrl = null)
    {
        if (!string.IsNullOrEmpty(publicUrl)) return publicUrl.TrimEnd('/');
        var uri = Parse(urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0])!;
        return IsLocal(uri) ? $"{uri.Scheme}://{UserModeGateway}:{uri.Port}" : $"{uri.Scheme}://{uri.Host}:{uri.Port}";
    }

    const string UserModeGateway = "10.0.2.2";

    Uri Listening() => Addresses().Select(Parse).FirstOrDefault(u => u is not null) ?? Parse(options.Urls.Split(';')[0])!;

    // A Unix socket (http://unix:/path) is for local clients, never for guests.
    IEnumerable<string> Addresses()
    {
        var live = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        // Plain HTTP first: guest agents cannot check a self-signed certificate (see GuestListener for the TLS-only case).
        return live.DefaultIfEmpty(GuestListener.UrlFor(options) ?? options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0])
            .Where(a => !a.Contains("unix:", StringComparison.OrdinalIgnoreCase))
            .OrderBy(a => a.StartsWith("https:", StringComparison.OrdinalIgnoreCase));
    }

    static Uri? Parse(string address) =>
        Uri.TryCreate(address.Replace("*", "0.0.0.0").Replace("+", "0.0.0.0"), UriKind.Absolute, out var uri) ? uri : null;

    static bool IsLocal(Uri uri) => uri.IsLoopback || uri.Host is "0.0.0.0" or "[::]";
}
