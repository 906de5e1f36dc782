using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Platform.Http;

/// <summary>Turns every failure into RFC 9457 problem+json; bad input is never a 500.</summary>
public static class ErrorHandling
{
    public static IServiceCollection AddErrorHandling(this IServiceCollection services)
    {
        services.AddProblemDetails(o => o.CustomizeProblemDetails = ctx =>
        {
            ctx.ProblemDetails.Extensions["traceId"] = ctx.HttpContext.TraceIdentifier;
            ctx.ProblemDetails.Detail ??= DefaultDetail(ctx.ProblemDetails.Status ?? 500, ctx.HttpContext);
        });
        // After the default writer: a client that accepts only text/plain or text/event-stream still gets the reason.
        services.AddSingleton<IProblemDetailsWriter, AnyAcceptProblemWriter>();
        services.AddExceptionHandler<ApiExceptionHandler>();
        return services;
    }

    /// <summary>Writes problem+json whatever the request's Accept header says (the default writer writes nothing then).</summary>
    sealed class AnyAcceptProblemWriter(Microsoft.Extensions.Options.IOptions<ProblemDetailsOptions> options) : IProblemDetailsWriter
    {
        public bool CanWrite(ProblemDetailsContext context) => true;

        public ValueTask WriteAsync(ProblemDetailsContext context)
        {
            var http = context.HttpContext;
            context.ProblemDetails.Status ??= http.Response.StatusCode;
            options.Value.CustomizeProblemDetails?.Invoke(context);
            return new ValueTask(http.Response.WriteAsJsonAsync(context.ProblemDetails, typeof(ProblemDetails), (JsonSerializerOptions?)null,
                "application/problem+json", http.RequestAborted));
        }
    }

    public static WebApplication UseErrorHandling(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    static string DefaultDetail(int status, HttpContext http) => status switch
    {
        401 => "No valid credentials: send 'Authorization: Bearer <token>' (see <data-dir>/admin.token, or create one with 'stratuslab token-create').",
        403 => "Your role does not allow this operation; ask an administrator.",
        404 => $"Nothing exists at {http.Request.Path}. See /docs for the API.",
        405 => $"{http.Request.Method} is not allowed on {http.Request.Path}. See /docs for the methods it accepts.",
        415 => "Send the body as JSON with 'Content-Type: application/json'.",
        _ => "The request failed; the server log has details under this traceId.",
    };

    sealed class ApiExceptionHandler(IProblemDetailsService problems, ILogger<ApiExceptionHandler> logger) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
        {
            var problem = Describe(exception, http);
            if (problem.Status == 507)
                logger.LogWarning("{Method} {Path} failed for lack of space: {Error}", http.Request.Method, http.Request.Path.Value, problem.Detail);
            else if (problem.Status >= 500)
                logger.LogError(exception, "Unhandled error on {Method} {Path}", http.Request.Method, http.Request.Path.Value);
            http.Response.StatusCode = problem.Status!.Value;
            return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem, Exception = exception });
        }
    }

    /// <summary>The HTTP status of a domain rejection: the one place that knows it.</summary>
    public static int StatusOf(Rejection kind) => kind switch
    {
        Rejection.BadRequest => 400,
        Rejection.Forbidden => 403,
        Rejection.NotFound => 404,
        Rejection.Conflict => 409,
        Rejection.TooLarge => 413,
        Rejection.Unprocessable => 422,
        Rejection.Unavailable => 503,
        Rejection.InsufficientStorage => 507,
        _ => 500,
    };

    internal static ProblemDetails Describe(Exception exception, HttpContext http)
    {
        // A write that failed for lack of space (SQLite's SQLITE_FULL, ENOSPC, a tool saying so), however a module wrapped it, is a 507.
        if (exception is not DiskFullException && http.RequestServices.GetService<DiskSpace>() is { } disk && disk.ReportIfFull(exception))
            exception = disk.Describe(exception);
        switch (exception)
        {
            case DomainException domain:
            {
                var status = StatusOf(domain.Kind);
                var p = new ProblemDetails { Status = status, Title = domain.Title ?? TitleFor(status), Detail = domain.Detail };
                if (domain.Field is not null) p.Extensions["field"] = domain.Field;
                foreach (var (k, v) in domain.Extensions) p.Extensions[k] = v;
                return p;
            }
            case ApiException api:
            {
                var p = new ProblemDetails { Status = api.Status, Title = api.Title ?? TitleFor(api.Status), Detail = api.Detail };
                if (api.Field is not null) p.Extensions["field"] = api.Field;
                foreach (var (k, v) in api.Extensions) p.Extensions[k] = v;
                return p;
            }
            case BadHttpRequestException bad:
                return DescribeBadRequest(bad);
            case ToolMissingException missing:
                return new ProblemDetails { Status = 503, Title = "Service Unavailable", Detail = missing.Message };
            case OperationCanceledException when http.RequestAborted.IsCancellationRequested:
                return new ProblemDetails { Status = 499, Title = "Client Closed Request", Detail = "The client went away before the request finished." };
            default:
                return new ProblemDetails
                {
                    Status = 500, Title = "Internal Server Error",
                    Detail = "The server hit an unexpected error; it is logged under this traceId. Please report it.",
                };
        }
    }

    static ProblemDetails DescribeBadRequest(BadHttpRequestException bad)
    {
        var status = bad.StatusCode is >= 400 and < 500 ? bad.StatusCode : 400;
        if (status == 413)
            return new ProblemDetails { Status = 413, Title = "Content Too Large", Detail = "The request body is larger than this endpoint accepts; send a smaller body." };
        var json = FindInner<JsonException>(bad);
        if (json is not null)
        {
            var field = JsonField(json.Path);
            var reason = JsonReason(json);
            var p = new ProblemDetails
            {
                Status = 400, Title = "Bad Request",
                Detail = field is null ? $"The request body is not valid JSON for this endpoint: {reason}" : $"Field '{field}': {reason}",
            };
            if (field is not null) p.Extensions["field"] = field;
            return p;
        }
        return new ProblemDetails { Status = status, Title = TitleFor(status), Detail = bad.Message };
    }

    static string JsonReason(JsonException json)
    {
        var message = json.Message;
        // System.Text.Json appends " Path: $.x | LineNumber: ..." which the field already says.
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut > 0) message = message[..cut];
        if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
            return "unknown field; this endpoint does not accept it (check the spelling against /docs).";
        if (message.Contains("missing required properties", StringComparison.Ordinal))
        {
            var names = message[(message.IndexOf("including:", StringComparison.Ordinal) + 10)..].Trim().TrimEnd('.');
            return $"required field(s) {names} missing.";
        }
        if (message.Contains("could not be converted to", StringComparison.Ordinal))
        {
            var type = message[(message.LastIndexOf(' ') + 1)..].TrimEnd('.');
            message = $"wrong type; expected {FriendlyType(type)}.";
        }
        return message;
    }

    static string FriendlyType(string clr) => clr switch
    {
        var t when t.Contains("Int") || t.Contains("Double") || t.Contains("Decimal") => "a number",
        var t when t.Contains("Boolean") => "true or false",
        var t when t.Contains("String") => "a string",
        var t when t.Contains("DateTime") => "an ISO-8601 time such as 2030-01-01T00:00:00Z",
        var t when t.Contains("List") || t.Contains("[]") || t.Contains("Enumerable") => "an array",
        _ => "an object",
    };

    static string? JsonField(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$") return null;
        return path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
    }

    static T? FindInner<T>(Exception e) where T : Exception
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is T t) return t;
        return null;
    }

    public static string TitleFor(int status) => status switch
    {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Error",
    };
}
