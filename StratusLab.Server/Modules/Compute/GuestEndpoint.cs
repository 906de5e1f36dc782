using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Compute;

/// <summary>The URL guests use to reach the guest API, from the address the server really listens on.</summary>
public sealed class GuestEndpoint(IServer server, ServerOptions options)
{
    public string Url
    {
        get
        {
            if (!string.IsNullOrEmpty(options.PublicUrl)) return options.PublicUrl.TrimEnd('/');
            var address = ListenAddress();
            return address is null ? options.GuestApiUrl : new ServerOptions { Urls = address }.GuestApiUrl;
        }
    }

    /// <summary>
    /// The URL for a guest whose first NIC has this gateway: a server on the loopback (or every address) is reached at the
    /// gateway, which QEMU user-mode networking maps to the host's loopback and bridge networks forward to it.
    /// </summary>
    public string UrlVia(string? gateway)
    {
        if (!string.IsNullOrEmpty(options.PublicUrl) || gateway is null) return Url;
        var address = ListenAddress() ?? options.Urls.Split(';')[0];
        var uri = new Uri(address.Replace("*", "0.0.0.0").Replace("+", "0.0.0.0"));
        return uri.IsLoopback || uri.Host is "0.0.0.0" or "[::]" ? $"{uri.Scheme}://{gateway}:{uri.Port}" : Url;
    }

    // A Unix socket (http://unix:/path) is for local clients, never for guests.
    string? ListenAddress() =>
        server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault(a => !a.Contains("unix:", StringComparison.OrdinalIgnoreCase));
}
