using System.Text;

namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>What a caller wants to do with an object (OpenNebula's USE, MANAGE, ADMIN).</summary>
public enum Operation { Use = 0, Manage = 1, Admin = 2 }

/// <summary>
/// OpenNebula's permission bits: owner/group/other x use/manage/admin, written like
/// "um-u-----" (owner use+manage, group use) or as three octal digits "640" (u=4, m=2, a=1).
/// </summary>
public readonly record struct Permissions(int Bits)
{
    /// <summary>Owner may use and manage; nobody else sees the object.</summary>
    public static readonly Permissions Private = Parse("um-------");
    /// <summary>Owner may use and manage; everyone may use (read) it.</summary>
    public static readonly Permissions Public = Parse("um-u--u--");

    const string Letters = "uma";

    public bool Allows(int scope, Operation operation) => (Bits & Bit(scope, operation)) != 0;

    static int Bit(int scope, Operation operation) => 1 << (8 - (scope * 3 + (int)operation));

    public static Permissions Parse(string text)
    {
        if (text.Length == 3 && text.All(c => c is >= '0' and <= '7'))
        {
            var bits = 0;
            for (var scope = 0; scope < 3; scope++)
            {
                var digit = text[scope] - '0';
                if ((digit & 4) != 0) bits |= Bit(scope, Operation.Use);
                if ((digit & 2) != 0) bits |= Bit(scope, Operation.Manage);
                if ((digit & 1) != 0) bits |= Bit(scope, Operation.Admin);
            }
            return new Permissions(bits);
        }
        if (text.Length != 9)
            throw new FormatException($"'{text}' is not a permission string: use 9 characters like 'um-u-----' or 3 octal digits like '640'.");
        var result = 0;
        for (var i = 0; i < 9; i++)
        {
            var expected = Letters[i % 3];
            if (text[i] == expected) result |= 1 << (8 - i);
            else if (text[i] != '-')
                throw new FormatException($"'{text}' is not a permission string: position {i + 1} must be '{expected}' or '-'.");
        }
        return new Permissions(result);
    }

    public override string ToString()
    {
        var sb = new StringBuilder(9);
        for (var i = 0; i < 9; i++) sb.Append((Bits & (1 << (8 - i))) != 0 ? Letters[i % 3] : '-');
        return sb.ToString();
    }
}

/// <summary>Who owns an object and what others may do with it.</summary>
public sealed record Ownership(long OwnerId, long GroupId, Permissions Permissions);

/// <summary>The one access rule every module applies.</summary>
public static class AccessRules
{
    /// <summary>Admins may do everything; otherwise the owner, group or other bits decide.</summary>
    public static bool Can(Caller caller, Ownership ownership, Operation operation)
    {
        if (caller.IsAdmin) return true;
        if (caller.UserId == ownership.OwnerId && ownership.Permissions.Allows(0, operation)) return true;
        if (caller.InGroup(ownership.GroupId) && ownership.Permissions.Allows(1, operation)) return true;
        return ownership.Permissions.Allows(2, operation);
    }

    /// <summary>True when the caller may see the object at all (any right); others get 404.</summary>
    public static bool CanSee(Caller caller, Ownership ownership) =>
        Can(caller, ownership, Operation.Use) || Can(caller, ownership, Operation.Manage) || Can(caller, ownership, Operation.Admin);
}
