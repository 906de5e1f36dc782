using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Marketplace.Metadata;

/// <summary>
/// A metadata entry that cannot be accepted: malformed XML (400), too large (413), or a signature or
/// constraint that fails (422). Rendered as problem+json by the server; the CLI prints <see cref="ApiException.Detail"/>.
/// </summary>
public sealed class MetadataException(int status, string detail) : ApiException(status, detail, "metadata")
{
    public static MetadataException Malformed(string detail) => new(400, detail);
    public static MetadataException Invalid(string detail) => new(422, detail);
}
