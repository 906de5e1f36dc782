using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// The dashboard's browser assets, embedded in the binary (web/&lt;path&gt; resources: Modules/Web/Assets and the npm
/// packages scripts/web/vendor.sh vendors at build time), served at /ui/assets/&lt;path&gt; with an ETag.
/// </summary>
internal sealed class WebAssets
{
    readonly FrozenDictionary<string, (byte[] Bytes, string Type, string ETag)> _files;

    public WebAssets()
    {
        var assembly = typeof(WebAssets).Assembly;
        var files = new Dictionary<string, (byte[], string, string)>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("web/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.ToArray();
            files[name["web/".Length..]] = (bytes, TypeOf(name), "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes))[..16] + "\"");
        }
        _files = files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public bool Has(string path) => _files.ContainsKey(path);

    public static void Map(RouteGroupBuilder ui) => ui.MapGet("/assets/{**path}", Serve).AllowAnonymous();

    static IResult Serve(string path, HttpContext http, WebAssets assets)
    {
        if (!assets._files.TryGetValue(path, out var file)) return Results.NotFound();
        http.Response.Headers.CacheControl = "public, max-age=3600";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        if (http.Request.Headers.IfNoneMatch == file.ETag) return Results.StatusCode(304);
        return Results.Bytes(file.Bytes, file.Type, entityTag: new EntityTagHeaderValue(file.ETag));
    }

    static string TypeOf(string name) => Path.GetExtension(name) switch
    {
        ".js" or ".mjs" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".json" => "application/json",
        _ => "text/plain; charset=utf-8",
    };
}
