namespace StratusLab.Server.Platform.Contracts;

/// <summary>What kind of rejection a domain error is; the HTTP edge maps it to a status code.</summary>
public enum Rejection
{
    /// <summary>The input is malformed or out of range (400).</summary>
    BadRequest,
    /// <summary>The caller may not do this (403).</summary>
    Forbidden,
    /// <summary>No such object, or the caller may not see it (404).</summary>
    NotFound,
    /// <summary>The object's current state does not allow it (409).</summary>
    Conflict,
    /// <summary>The input is too large (413).</summary>
    TooLarge,
    /// <summary>The input is well-formed but cannot be acted on (422).</summary>
    Unprocessable,
    /// <summary>A tool, host or peer needed for it is not available now (503).</summary>
    Unavailable,
    /// <summary>The data dir's filesystem has too little free space for it (507).</summary>
    InsufficientStorage,
}

/// <summary>
/// A rejection the user can act on, raised by a module's application services. Modules declare their own
/// subclasses in their Contracts; only the HTTP edge turns them into problem+json (see Platform.Http.ErrorHandling).
/// <see cref="Exception.Message"/> says what was wrong and how to fix it; <see cref="Field"/> names the input at fault.
/// </summary>
public class DomainException(Rejection kind, string detail, string? field = null) : Exception(detail)
{
    public Rejection Kind { get; } = kind;
    public string Detail => Message;
    public string? Field { get; } = field;

    /// <summary>A title for the problem document when the status's own title says too little.</summary>
    public string? Title { get; init; }

    /// <summary>Extra members of the problem document (for example the actions an instance allows).</summary>
    public IDictionary<string, object?> Extensions { get; } = new Dictionary<string, object?>();
}

/// <summary>No such object, or the caller may not see it (someone else's object is 404, never 403).</summary>
public sealed class NotFoundException(string what) : DomainException(Rejection.NotFound, $"{what} does not exist, or you may not see it.")
{
    public string What { get; } = what;
}

/// <summary>A field of the request is wrong (400), or well-formed but impossible to act on (422).</summary>
public sealed class InvalidInputException(string field, string detail, bool unprocessable = false)
    : DomainException(unprocessable ? Rejection.Unprocessable : Rejection.BadRequest, detail, field);

/// <summary>The object's state does not allow the operation.</summary>
public sealed class ConflictException(string detail) : DomainException(Rejection.Conflict, detail);

/// <summary>The caller's role or the object's permissions do not allow the operation.</summary>
public sealed class ForbiddenException(string detail) : DomainException(Rejection.Forbidden, detail);

/// <summary>Something the operation needs (a tool, a host, a peer) is not available now; retrying later may work.</summary>
public sealed class UnavailableException(string detail) : DomainException(Rejection.Unavailable, detail);
