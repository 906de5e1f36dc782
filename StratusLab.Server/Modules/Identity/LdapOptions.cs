using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Identity;

/// <summary>
/// Identity:Ldap: optional password checks against an LDAP directory (off by default). Either BindDnTemplate
/// ("uid={0},ou=people,dc=example,dc=org", the name RFC 4514-escaped) or a search (ServiceBindDn/ServiceBindPassword,
/// BaseDn, UserFilter with {0} = the RFC 4515-escaped name) finds the user's DN; the server then binds as the user.
/// Groups: GroupFilter under GroupBaseDn ({0} = the user's DN, {1} = the user name, both filter-escaped); each group's
/// cn is mapped to the local group of the same name when one exists (unknown cns are ignored: no groups are created);
/// they are read again at each sign-in that reaches the directory, at least every GroupRefreshSeconds.
/// </summary>
internal sealed class LdapOptions
{
    public bool Enabled { get; set; }
    public string? Url { get; set; }
    public bool StartTls { get; set; }
    /// <summary>Trusted CA certificates for ldaps/StartTLS (OpenSSL hashed directory); empty: the system's.</summary>
    public string? TrustedCertificatesDirectory { get; set; }
    public string? BindDnTemplate { get; set; }
    public string? ServiceBindDn { get; set; }
    public string? ServiceBindPassword { get; set; }
    public string? BaseDn { get; set; }
    public string UserFilter { get; set; } = "(uid={0})";
    public string? GroupBaseDn { get; set; }
    public string GroupFilter { get; set; } = "(&(objectClass=groupOfNames)(member={0}))";
    public int CacheSeconds { get; set; } = 60;
    /// <summary>
    /// A sign-in answered from the bind cache still asks the directory (for the groups, and the password again) once the
    /// user's groups are older than this; if the directory is down then, the cache answers and the groups are kept.
    /// </summary>
    public int GroupRefreshSeconds { get; set; } = 300;
    public int TimeoutSeconds { get; set; } = 5;

    public Uri? ParsedUrl => Uri.TryCreate(Url, UriKind.Absolute, out var u) && u.Scheme is "ldap" or "ldaps" ? u : null;

    public void AddProblems(ConfigurationProblems problems)
    {
        if (!Enabled) return;
        if (ParsedUrl is null) problems.Add("Identity:Ldap:Url must be ldap://host[:port] or ldaps://host[:port] when Identity:Ldap:Enabled is true.");
        if (ParsedUrl?.Scheme == "ldaps" && StartTls) problems.Add("Identity:Ldap:StartTls cannot be combined with an ldaps:// Url; use one or the other.");
        if (string.IsNullOrWhiteSpace(BindDnTemplate) == string.IsNullOrWhiteSpace(BaseDn))
            problems.Add("Identity:Ldap needs exactly one of BindDnTemplate (bind directly) or BaseDn (search with UserFilter, then bind).");
        if (!string.IsNullOrWhiteSpace(BindDnTemplate) && !BindDnTemplate.Contains("{0}"))
            problems.Add("Identity:Ldap:BindDnTemplate must contain {0} where the user name goes.");
        if (!string.IsNullOrWhiteSpace(BaseDn) && !UserFilter.Contains("{0}"))
            problems.Add("Identity:Ldap:UserFilter must contain {0} where the user name goes.");
        if (!string.IsNullOrEmpty(TrustedCertificatesDirectory) && !Directory.Exists(TrustedCertificatesDirectory))
            problems.Add($"Identity:Ldap:TrustedCertificatesDirectory = '{TrustedCertificatesDirectory}' does not exist; give a directory of CA certificates or leave it empty.");
        problems.Range("Identity:Ldap:CacheSeconds", CacheSeconds, 0, 3600);
        problems.Range("Identity:Ldap:GroupRefreshSeconds", GroupRefreshSeconds, 0, 86400);
        problems.Range("Identity:Ldap:TimeoutSeconds", TimeoutSeconds, 1, 120);
    }
}
