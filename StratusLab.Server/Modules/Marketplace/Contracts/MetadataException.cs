using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>
/// A metadata entry that cannot be accepted: malformed XML (400), too large (413), or a signature or constraint
/// that fails (422). The field at fault is always "metadata"; the server renders it as problem+json, the CLI
/// prints its <see cref="DomainException.Detail"/>.
/// </summary>
public sealed class MetadataException(Rejection kind, string detail) : DomainException(kind, detail, "metadata")
{
    /// <summary>The bytes are not a well-formed, acceptable XML document (400).</summary>
    public static MetadataException Malformed(string detail) => new(Rejection.BadRequest, detail);

    /// <summary>The entry parses but a signature or constraint fails (422).</summary>
    public static MetadataException Invalid(string detail) => new(Rejection.Unprocessable, detail);

    /// <summary>The entry is larger than accepted (413).</summary>
    public static MetadataException TooLarge(string detail) => new(Rejection.TooLarge, detail);
}
