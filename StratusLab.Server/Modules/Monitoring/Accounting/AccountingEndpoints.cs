using System.Security.Claims;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Monitoring.Accounting;

/// <summary>GET /api/v1/accounting (JSON, or CSV with ?format=csv or Accept: text/csv) and its APEL export.</summary>
internal static class AccountingEndpoints
{
    public static RouteGroupBuilder MapAccountingEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/accounting").RequireAuthorization().WithTags("Accounting");
        api.MapGet("/", GetUsage);
        api.MapGet("/apel", GetApel);
        return api;
    }

    static async Task<IResult> GetUsage(HttpContext http, ClaimsPrincipal principal, UsageReports reports, string? user, string? group, string? from,
        string? to, string? by, string? format, CancellationToken ct)
    {
        var csv = format == "csv" || (format is null && http.Request.Headers.Accept.ToString().Contains("text/csv", StringComparison.OrdinalIgnoreCase));
        if (format is not (null or "csv" or "json"))
            throw new Platform.Contracts.InvalidInputException("format", $"'format' = '{Platform.Http.Validate.Trim(format)}' is not accepted; accepted values: json, csv.");
        var (records, _, _) = await reports.RecordsAsync(principal.ToCaller(), new UsageQuery(user, group, from, to, by), ct);
        if (by is null) return csv ? Results.Text(UsageReports.Csv(records), "text/csv; charset=utf-8") : Results.Ok(records);
        var summary = UsageReports.Summarize(records, by);
        return csv ? Results.Text(UsageReports.Csv(summary), "text/csv; charset=utf-8") : Results.Ok(summary);
    }

    static async Task<IResult> GetApel(ClaimsPrincipal principal, UsageReports reports, string? from, string? to, CancellationToken ct) =>
        Results.Text(await reports.ApelAsync(principal.ToCaller(), from, to, ct), "text/plain; charset=utf-8");
}
