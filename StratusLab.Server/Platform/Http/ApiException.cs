namespace StratusLab.Server.Platform.Http;

/// <summary>
/// A rejection the user can act on; rendered as RFC 9457 problem+json with the given status.
/// <see cref="Detail"/> says what was wrong and how to fix it; <see cref="Field"/> names the input at fault.
/// </summary>
public class ApiException(int status, string detail, string? field = null, string? title = null) : Exception(detail)
{
    public int Status { get; } = status;
    public string Detail { get; } = detail;
    public string? Field { get; } = field;
    public string? Title { get; } = title;
    public IDictionary<string, object?> Extensions { get; } = new Dictionary<string, object?>();

    public static ApiException BadRequest(string field, string detail) => new(400, detail, field);
    public static ApiException Invalid(string field, string detail) => new(422, detail, field);
    public static ApiException NotFound(string what) => new(404, $"{what} does not exist, or you may not see it.", title: "Not Found");
    public static ApiException Conflict(string detail) => new(409, detail, title: "Conflict");
    public static ApiException Forbidden(string detail) => new(403, detail, title: "Forbidden");
}
