using System.Text;
using System.Xml;
using System.Xml.Linq;
using Microsoft.AspNetCore.WebUtilities;
using StratusLab.Server.Modules.Ec2.Auth;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// The EC2 Query front door at /ec2/: parse and authenticate, dispatch on Action to a handler that calls the modules'
/// contracts, render AWS's XML. Every failure is AWS's error document with AWS's code.
/// </summary>
internal static class Ec2Endpoints
{
    public const string Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/";
    public const int MaxBodyBytes = 1 << 20;
    static readonly XNamespace Ns = Namespace;

    public static IEndpointConventionBuilder MapEc2Endpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/ec2").WithTags("EC2").ExcludeFromDescription();
        group.MapMethods("/", ["GET", "POST"], Handle); // also matches /ec2 without the slash
        return group;
    }

    static async Task Handle(HttpContext http, Ec2Authenticator authenticator, Ec2Actions actions, ILoggerFactory loggers)
    {
        var requestId = Guid.NewGuid().ToString();
        var ct = http.RequestAborted;
        string action = "";
        try
        {
            var body = await ReadBodyAsync(http.Request, ct);
            var query = Pairs(http.Request.QueryString.HasValue ? QueryHelpers.ParseQuery(http.Request.QueryString.Value) : []);
            var form = http.Request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) == true
                ? Pairs(QueryHelpers.ParseQuery(Encoding.UTF8.GetString(body)))
                : [];
            var signer = await authenticator.AuthenticateAsync(http.Request, query, body, ct);
            var parameters = query.Where(kv => !kv.Key.StartsWith("X-Amz-", StringComparison.Ordinal)).Concat(form).ToList();
            action = parameters.LastOrDefault(kv => kv.Key == "Action").Value ?? "";
            if (action.Length == 0) throw Ec2Exception.MissingParameter("Action");
            var request = new Ec2Request(action, parameters, signer.Principal, requestId);
            if (signer.Service == "sts")
            {
                await WriteAsync(http, 200, StsResponses.Run(request, signer.AccessKeyId));
                return;
            }
            var content = await actions.RunAsync(request, ct);
            await WriteResponseAsync(http, Ns + action + "Response", requestId, content, ct);
        }
        catch (Ec2Exception e)
        {
            await WriteErrorAsync(http, e.Status, e.Code, e.Message, requestId);
        }
        catch (DomainException e)
        {
            var (status, code) = Ec2Actions.CodeFor(action, e);
            await WriteErrorAsync(http, status, code, e.Message, requestId);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            loggers.CreateLogger("StratusLab.Ec2").LogError(e, "EC2 {Action} failed (request {RequestId})", action, requestId);
            await WriteErrorAsync(http, 500, "InternalError", $"An internal error has occurred (request {requestId}); the server log has the details.", requestId);
        }
    }

    static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        return await Platform.Http.RequestBodies.ReadBoundedAsync(request, MaxBodyBytes, ct)
            ?? throw new Ec2Exception("RequestEntityTooLarge", $"The request body is larger than {MaxBodyBytes} bytes.", 413);
    }

    static List<KeyValuePair<string, string>> Pairs(Dictionary<string, Microsoft.Extensions.Primitives.StringValues> parsed) =>
        parsed.SelectMany(kv => kv.Value.Select(v => new KeyValuePair<string, string>(kv.Key, v ?? ""))).ToList();

    static Task WriteErrorAsync(HttpContext http, int status, string code, string message, string requestId) =>
        WriteAsync(http, status, new XElement("Response",
            new XElement("Errors", new XElement("Error", new XElement("Code", code), new XElement("Message", message))),
            new XElement("RequestID", requestId)));

    /// <summary>
    /// Writes the response in one pass: each element is serialized once, and a <see cref="StreamedSet"/>'s items are
    /// built, written and dropped one at a time (no whole tree, no string). The writer fills a small buffer
    /// synchronously; the buffer goes to the body asynchronously whenever it passes <see cref="FlushBytes"/>.
    /// </summary>
    static async Task WriteResponseAsync(HttpContext http, XName root, string requestId, IEnumerable<XElement> content, CancellationToken ct)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/xml;charset=UTF-8";
        var body = http.Response.Body;
        using var buffer = new MemoryStream(FlushBytes * 2);
        var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), CloseOutput = false };
        using var writer = XmlWriter.Create(buffer, settings);
        async Task DrainAsync(bool always)
        {
            writer.Flush();
            if (buffer.Length == 0 || !always && buffer.Length < FlushBytes) return;
            await body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), ct);
            buffer.SetLength(0);
        }
        writer.WriteStartDocument();
        writer.WriteStartElement(null, root.LocalName, root.NamespaceName);
        writer.WriteElementString("requestId", Namespace, requestId);
        foreach (var element in content)
        {
            if (element is StreamedSet set)
            {
                writer.WriteStartElement(null, set.Name.LocalName, set.Name.NamespaceName);
                foreach (var write in set.Items)
                {
                    write(writer);
                    await DrainAsync(always: false);
                }
                writer.WriteEndElement();
            }
            else element.WriteTo(writer);
        }
        writer.WriteEndElement();
        writer.WriteEndDocument();
        await DrainAsync(always: true);
    }

    const int FlushBytes = 64 * 1024;

    static async Task WriteAsync(HttpContext http, int status, XElement root)
    {
        if (http.Response.HasStarted) return;
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/xml;charset=UTF-8";
        await http.Response.WriteAsync(new XDeclaration("1.0", "UTF-8", null) + "\n" + root.ToString(SaveOptions.DisableFormatting));
    }
}

/// <summary>
/// A response set whose items are written straight to the response's XmlWriter while it is written (large listings: no
/// element tree). Only <see cref="Ec2Endpoints"/> renders it, and only as a top-level element of an action's response.
/// </summary>
internal sealed class StreamedSet(XName name, IEnumerable<Action<XmlWriter>> items) : XElement(name)
{
    public IEnumerable<Action<XmlWriter>> Items { get; } = items;
}
