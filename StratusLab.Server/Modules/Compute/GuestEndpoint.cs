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
            var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
            return address is null ? options.GuestApiUrl : new ServerOptions { Urls = address }.GuestApiUrl;
        }
    }
}
