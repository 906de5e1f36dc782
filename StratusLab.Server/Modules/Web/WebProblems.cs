using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Web;

/// <summary>A rejection from an application service, as a page shows it: the same status, detail and field the API's problem+json has.</summary>
internal sealed record WebProblem(int Status, string Detail, string? Field)
{
    public static WebProblem? From(Exception e) => e switch
    {
        DomainException d => new WebProblem(d.Kind switch
        {
            Rejection.BadRequest => 400, Rejection.Forbidden => 403, Rejection.NotFound => 404, Rejection.Conflict => 409,
            Rejection.TooLarge => 413, Rejection.Unprocessable => 422, Rejection.Unavailable => 503, Rejection.InsufficientStorage => 507, _ => 400,
        }, d.Detail, NullIfEmpty(d.Field)),
        ApiException a => new WebProblem(a.Status, a.Detail, NullIfEmpty(a.Field)),
        _ => null,
    };

    static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
