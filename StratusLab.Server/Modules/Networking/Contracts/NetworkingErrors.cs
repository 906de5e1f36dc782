using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Networking.Contracts;

/// <summary>A network has fewer free addresses than a request needs (409, field <c>networks</c>).</summary>
public sealed class NetworkFullException(string detail) : DomainException(Rejection.Conflict, detail, "networks");

/// <summary>A non-administrator set an attribute only administrators may set (403, naming the attribute).</summary>
public sealed class RestrictedAttributeException : DomainException
{
    public RestrictedAttributeException(string field, string detail) : base(Rejection.Forbidden, detail, field) => Title = "Restricted attribute";
}
