using System.Text;
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
            var principal = await authenticator.AuthenticateAsync(http.Request, query, body, ct);
            var parameters = query.Where(kv => !kv.Key.StartsWith("X-Amz-", StringComparison.Ordinal)).Concat(form).ToList();
            action = parameters.LastOrDefault(kv => kv.Key == "Action").Value ?? "";
            if (action.Length == 0) throw Ec2Exception.MissingParameter("Action");
            var request = new Ec2Request(action, parameters, principal, requestId);
            var content = await actions.RunAsync(request, ct);
            await WriteAsync(http, 200, new XElement(Ns + action + "Response", new XElement(Ns + "requestId", requestId), content));
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
        if (request.ContentLength > MaxBodyBytes)
            throw new Ec2Exception("RequestEntityTooLarge", $"The request body is larger than {MaxBodyBytes} bytes.", 413);
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBodyBytes)
                throw new Ec2Exception("RequestEntityTooLarge", $"The request body is larger than {MaxBodyBytes} bytes.", 413);
        }
        return buffer.ToArray();
    }

    static List<KeyValuePair<string, string>> Pairs(Dictionary<string, Microsoft.Extensions.Primitives.StringValues> parsed) =>
        parsed.SelectMany(kv => kv.Value.Select(v => new KeyValuePair<string, string>(kv.Key, v ?? ""))).ToList();

    static Task WriteErrorAsync(HttpContext http, int status, string code, string message, string requestId) =>
        WriteAsync(http, status, new XElement("Response",
            new XElement("Errors", new XElement("Error", new XElement("Code", code), new XElement("Message", message))),
            new XElement("RequestID", requestId)));

    static async Task WriteAsync(HttpContext http, int status, XElement root)
    {
        if (http.Response.HasStarted) return;
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/xml;charset=UTF-8";
        await http.Response.WriteAsync(new XDeclaration("1.0", "UTF-8", null) + "\n" + root.ToString(SaveOptions.DisableFormatting));
    }
}
