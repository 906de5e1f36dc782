using System.Reflection;
using System.Text;
using Microsoft.Net.Http.Headers;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Occi;

/// <summary>The renderings a response can take.</summary>
internal enum OcciMedia { Plain, Occi, UriList }

/// <summary>A refusal of the OCCI door itself (not a module's): its status and what to do.</summary>
internal sealed class OcciException(int status, string detail) : Exception(detail)
{
    public int Status { get; } = status;
}

/// <summary>
/// The OCCI 1.1 front door (GFD.185 HTTP rendering) at the OCCI paths below, next to the REST API's /api/v1: negotiate the
/// rendering, authenticate (Bearer token or Basic user:password, as the REST API), parse strictly, dispatch to
/// <see cref="OcciDoor"/>, render. Every response says "Server: ... OCCI/1.1"; no input gives a 500.
/// </summary>
internal static class OcciEndpoints
{
    public const int MaxBodyBytes = 1 << 20;
    public static readonly string ServerToken =
        $"stratuslab/{typeof(OcciEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "1.0"} OCCI/1.1";

    static readonly string[] Routes =
    [
        "/-/", "/.well-known/org/ogf/occi/-/",
        OcciModel.ComputePath, OcciModel.ComputePath + "{id}",
        OcciModel.StoragePath, OcciModel.StoragePath + "{id}",
        OcciModel.NetworkPath, OcciModel.NetworkPath + "{id}",
        OcciModel.StorageLinkPath, OcciModel.StorageLinkPath + "{id}",
        OcciModel.NetworkInterfacePath, OcciModel.NetworkInterfacePath + "{id}",
        OcciModel.TagsPath + "{name}/",
    ];

    public static RouteGroupBuilder MapOcciEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("").WithTags("OCCI").ExcludeFromDescription();
        foreach (var route in Routes)
            group.MapMethods(route, ["GET", "HEAD", "POST", "PUT", "DELETE"], Handle);
        return group;
    }

    static async Task Handle(HttpContext http, OcciDoor door, ILoggerFactory loggers)
    {
        var ct = http.RequestAborted;
        http.Response.OnStarting(() =>
        {
            http.Response.Headers.Server = ServerToken;
            return Task.CompletedTask;
        });
        try
        {
            var collection = IsCollection(http.Request.Path.Value ?? "");
            var media = Negotiate(http.Request.Headers.Accept.ToString(), collection);
            if (http.User.Identity?.IsAuthenticated != true)
            {
                http.Response.Headers.WWWAuthenticate = new(["Bearer realm=\"stratuslab\"", "Basic realm=\"stratuslab\""]);
                throw new OcciException(401, string.IsNullOrEmpty(http.Request.Headers.Authorization)
                    ? "This OCCI endpoint needs credentials: send 'Authorization: Bearer <token>' or HTTP Basic with your user name and password."
                    : "The credentials are not valid: the token is unknown, revoked or expired, or the user name or password is wrong.");
            }
            var input = await ReadInputAsync(http.Request, ct);
            var baseUrl = door.BaseUrl(http);
            var call = new OcciCall(http.Request.Method == "HEAD" ? "GET" : http.Request.Method, http.Request.Path.Value!.TrimEnd('/') + (collection ? "/" : ""),
                http.Request.Query["action"].ToString() is { Length: > 0 } action ? action : null, input, http.User.ToCaller(), baseUrl);
            if (http.Request.Query.Keys.FirstOrDefault(k => k != "action") is { } extra)
                throw new OcciException(400, $"The query parameter '{extra}' is not understood; OCCI takes only ?action=<term> on a resource.");
            var result = await door.RunAsync(call, ct);
            await WriteAsync(http, result, media, baseUrl);
        }
        catch (OcciRenderingException e)
        {
            await WriteErrorAsync(http, 400, $"Malformed rendering: {e.Message}");
        }
        catch (OcciException e)
        {
            await WriteErrorAsync(http, e.Status, e.Message);
        }
        catch (DomainException e)
        {
            await WriteErrorAsync(http, ErrorHandling.StatusOf(e.Kind), e.Field is null ? e.Message : $"{e.Field}: {e.Message}");
        }
        catch (ApiException e)
        {
            await WriteErrorAsync(http, e.Status, e.Field is null ? e.Message : $"{e.Field}: {e.Message}");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            loggers.CreateLogger("StratusLab.Occi").LogError(e, "OCCI {Method} {Path} failed", http.Request.Method, http.Request.Path.Value);
            await WriteErrorAsync(http, 500, $"An internal error has occurred (trace {http.TraceIdentifier}); the server log has the details.");
        }
    }

    static bool IsCollection(string path) =>
        path.EndsWith('/') || path is "/compute" or "/storage" or "/network" or "/link/storagelink" or "/link/networkinterface" || path.StartsWith(OcciModel.TagsPath, StringComparison.Ordinal);

    /// <summary>The rendering for Accept: none, */* or text/* give text/plain; text/uri-list only for collections; else 406.</summary>
    public static OcciMedia Negotiate(string accept, bool collection)
    {
        if (string.IsNullOrWhiteSpace(accept)) return OcciMedia.Plain;
        if (!MediaTypeHeaderValue.TryParseList([accept], out var types))
            throw new OcciException(406, $"The Accept header '{Clip(accept)}' cannot be parsed; accept text/plain, text/occi or text/uri-list.");
        foreach (var type in types.Where(t => t.Quality is not 0).OrderByDescending(t => t.Quality ?? 1))
        {
            var name = type.MediaType.Value?.ToLowerInvariant();
            if (name is "text/plain" or "text/*" or "*/*") return OcciMedia.Plain;
            if (name == "text/occi") return OcciMedia.Occi;
            if (name == "text/uri-list" && collection) return OcciMedia.UriList;
        }
        throw new OcciException(406, collection
            ? $"None of the media types in Accept ('{Clip(accept)}') is offered; this collection renders as text/plain, text/occi or text/uri-list."
            : $"None of the media types in Accept ('{Clip(accept)}') is offered; a single entity renders as text/plain or text/occi (text/uri-list is for collections).");
    }

    static async Task<OcciInput> ReadInputAsync(HttpRequest request, CancellationToken ct)
    {
        var bytes = await RequestBodies.ReadBoundedAsync(request, MaxBodyBytes, ct)
            ?? throw new OcciException(413, $"The request body is larger than {MaxBodyBytes} bytes; send fewer elements per request.");
        string body;
        try { body = new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { throw new OcciException(400, "The request body is not UTF-8 text."); }

        string? contentType = request.ContentType;
        if (string.IsNullOrWhiteSpace(contentType))
            return body.Trim().Length == 0 ? OcciRendering.FromHeaders(request.Headers) : OcciRendering.FromPlainText(body);
        if (!MediaTypeHeaderValue.TryParse(contentType, out var type))
            throw new OcciException(415, $"The Content-Type '{Clip(contentType)}' cannot be parsed; send text/plain, text/occi or text/uri-list.");
        return type.MediaType.Value?.ToLowerInvariant() switch
        {
            "text/occi" => OcciRendering.FromHeaders(request.Headers),
            "text/plain" => body.Trim().Length == 0 ? OcciRendering.FromHeaders(request.Headers) : OcciRendering.FromPlainText(body),
            "text/uri-list" => OcciRendering.FromUriList(body),
            _ => throw new OcciException(415, $"The Content-Type '{Clip(contentType)}' is not an OCCI rendering; send text/plain, text/occi or text/uri-list."),
        };
    }

    static async Task WriteAsync(HttpContext http, OcciResult result, OcciMedia media, string baseUrl)
    {
        var response = http.Response;
        response.StatusCode = result.Status;
        if (result.Location is not null) response.Headers.Location = baseUrl + result.Location;
        var lines = result.Output.Lines(baseUrl).ToList();
        string body;
        switch (media)
        {
            case OcciMedia.Occi:
                response.ContentType = "text/occi";
                foreach (var group in lines.GroupBy(l => l.Header))
                    response.Headers[group.Key] = string.Join(", ", group.Select(l => l.Value));
                body = "OK\n";
                break;
            case OcciMedia.UriList:
                response.ContentType = "text/uri-list";
                body = string.Concat(result.Output.Locations.Select(l => baseUrl + l + "\r\n"));
                break;
            default:
                response.ContentType = "text/plain; charset=utf-8";
                body = lines.Count == 0 ? "OK\n" : string.Concat(lines.Select(l => $"{l.Header}: {l.Value}\n"));
                break;
        }
        if (http.Request.Method != "HEAD") await response.WriteAsync(body, http.RequestAborted);
    }

    static async Task WriteErrorAsync(HttpContext http, int status, string message)
    {
        if (http.Response.HasStarted) return;
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        if (http.Request.Method != "HEAD") await http.Response.WriteAsync(message + "\n");
    }

    static string Clip(string s) => s.Length > 80 ? s[..80] + "..." : s;
}
