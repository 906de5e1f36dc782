using System.Security.Claims;

namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>The authenticated user making a request.</summary>
public sealed record Caller(long UserId, string Name, bool IsAdmin, long PrimaryGroupId, IReadOnlyList<long> GroupIds)
{
    public bool InGroup(long groupId) => PrimaryGroupId == groupId || GroupIds.Contains(groupId);
}

/// <summary>Claim names the Identity module puts on every principal.</summary>
public static class IdentityClaims
{
    public const string UserId = ClaimTypes.NameIdentifier;
    public const string Name = ClaimTypes.Name;
    public const string Role = ClaimTypes.Role;
    public const string PrimaryGroup = "stratuslab:primary_group";
    public const string Group = "stratuslab:group";
    public const string AdminRole = "admin";
    public const string UserRole = "user";

    /// <summary>The caller behind an authenticated principal.</summary>
    public static Caller ToCaller(this ClaimsPrincipal principal)
    {
        var id = principal.FindFirstValue(UserId) ?? throw new InvalidOperationException("the request is not authenticated");
        return new Caller(
            long.Parse(id),
            principal.FindFirstValue(Name) ?? "",
            principal.IsInRole(AdminRole),
            long.Parse(principal.FindFirstValue(PrimaryGroup) ?? "1"),
            principal.FindAll(Group).Select(c => long.Parse(c.Value)).ToList());
    }
}
