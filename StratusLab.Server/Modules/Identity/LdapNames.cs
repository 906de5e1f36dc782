using System.Text;

namespace StratusLab.Server.Modules.Identity;

/// <summary>
/// Escaping for user-supplied names placed into LDAP search filters (RFC 4515) and
/// distinguished names (RFC 4514), so a user name can never change the shape of a filter or DN.
/// First piece of the optional LDAP authentication (issue 19, item 5).
/// </summary>
internal static class LdapNames
{
    /// <summary>True when the name is usable as an LDAP login: non-empty, at most 256 chars, no control characters.</summary>
    public static bool IsAcceptableUserName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 256 && !name.Any(char.IsControl);

    /// <summary>RFC 4515 assertion-value escaping: \ * ( ) NUL and non-ASCII bytes as \hh.</summary>
    public static string EscapeFilterValue(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (b is (byte)'\\' or (byte)'*' or (byte)'(' or (byte)')' or 0 or >= 0x80)
                sb.Append('\\').Append(b.ToString("x2"));
            else
                sb.Append((char)b);
        }
        return sb.ToString();
    }

    /// <summary>RFC 4514 attribute-value escaping: special characters backslash-escaped, leading space/#, trailing space.</summary>
    public static string EscapeDnValue(string value)
    {
        var sb = new StringBuilder(value.Length + 8);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\0') { sb.Append("\\00"); continue; }
            var special = c is '"' or '+' or ',' or ';' or '<' or '>' or '\\' or '='
                || (i == 0 && (c == ' ' || c == '#'))
                || (i == value.Length - 1 && c == ' ');
            if (special) sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}
