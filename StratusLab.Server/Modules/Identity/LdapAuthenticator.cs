using System.DirectoryServices.Protocols;
using System.Net;

namespace StratusLab.Server.Modules.Identity;

/// <summary>The outcome of an LDAP password check: the user's DN and directory group cns, or why it failed.</summary>
internal sealed record LdapResult(bool Ok, string? Dn, IReadOnlyList<string> Groups, string? Reason, bool DirectoryDown)
{
    public static LdapResult Fail(string reason, bool down = false) => new(false, null, [], reason, down);
}

/// <summary>
/// Checks a password by binding to the directory as the user (System.DirectoryServices.Protocols over the system's
/// libldap). Names are RFC 4514-escaped in DNs and RFC 4515-escaped in filters; empty passwords are refused before any
/// bind (an empty-password simple bind is an anonymous bind that "succeeds").
/// </summary>
internal sealed class LdapAuthenticator(IdentityOptions identity, ILogger<LdapAuthenticator> log)
{
    public LdapOptions Options => identity.Ldap;

    public bool Enabled => Options.Enabled;

    public Task<LdapResult> CheckAsync(string user, string password, CancellationToken ct) =>
        Task.Run(() => Check(user, password), ct);

    LdapResult Check(string user, string password)
    {
        if (!LdapNames.IsAcceptableUserName(user)) return LdapResult.Fail("the user name contains control characters or is too long");
        if (password.Length == 0) return LdapResult.Fail("empty password");
        var o = Options;
        try
        {
            string dn;
            if (!string.IsNullOrWhiteSpace(o.BindDnTemplate))
            {
                dn = string.Format(o.BindDnTemplate, LdapNames.EscapeDnValue(user));
            }
            else
            {
                using var service = Connect();
                if (o.ServiceBindDn is { Length: > 0 })
                {
                    try { service.Bind(new NetworkCredential(o.ServiceBindDn, o.ServiceBindPassword ?? "")); }
                    catch (LdapException e) when (e.ErrorCode == 49)
                    {
                        var reason = $"the directory refused the service account '{o.ServiceBindDn}' (Identity:Ldap:ServiceBindDn): " +
                            "check Identity:Ldap:ServiceBindPassword; no directory user can sign in until it is fixed";
                        log.LogWarning("LDAP sign-in of {User} failed: {Reason}", user, reason);
                        return LdapResult.Fail(reason, down: true);
                    }
                }
                var filter = string.Format(o.UserFilter, LdapNames.EscapeFilterValue(user));
                var found = (SearchResponse)service.SendRequest(new SearchRequest(o.BaseDn, filter, SearchScope.Subtree, "1.1") { SizeLimit = 2 });
                if (found.Entries.Count != 1)
                    return LdapResult.Fail(found.Entries.Count == 0 ? "no such user in the directory" : "the user filter matches more than one entry");
                dn = found.Entries[0].DistinguishedName;
            }

            using var connection = Connect();
            try { connection.Bind(new NetworkCredential(dn, password)); }
            catch (LdapException e) when (e.ErrorCode == 49) { return LdapResult.Fail("wrong password or unknown user"); }

            var groups = new List<string>();
            if (!string.IsNullOrWhiteSpace(o.GroupBaseDn))
            {
                var filter = string.Format(o.GroupFilter, LdapNames.EscapeFilterValue(dn), LdapNames.EscapeFilterValue(user));
                var response = (SearchResponse)connection.SendRequest(new SearchRequest(o.GroupBaseDn, filter, SearchScope.Subtree, "cn"));
                foreach (SearchResultEntry entry in response.Entries)
                    if (entry.Attributes["cn"] is { Count: > 0 } cn && cn[0] is string name) groups.Add(name);
            }
            return new LdapResult(true, dn, groups, null, false);
        }
        catch (TlsFailure e)
        {
            log.LogWarning("LDAP sign-in of {User} failed: {Reason}", user, e.Message);
            return LdapResult.Fail(e.Message, down: true);
        }
        catch (LdapException e) when (e.ErrorCode is 81 or 85 or 91 or 52 or 51)
        {
            var tls = o.ParsedUrl?.Scheme == "ldaps"
                ? ", or its TLS certificate is not from a CA in Identity:Ldap:TrustedCertificatesDirectory (or the system's) for this host name"
                : "";
            var reason = $"the LDAP server {o.Url} is unreachable or not answering ({e.Message.Trim()}){tls}; only local users can sign in";
            log.LogWarning("LDAP sign-in of {User} failed: {Reason}", user, reason);
            return LdapResult.Fail(reason, down: true);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var reason = $"the LDAP check failed: {e.GetType().Name}: {e.Message}";
            log.LogWarning("LDAP sign-in of {User} failed: {Reason}", user, reason);
            return LdapResult.Fail(reason);
        }
    }

    LdapConnection Connect()
    {
        var o = Options;
        var url = o.ParsedUrl!;
        var secure = url.Scheme == "ldaps";
        var port = url.IsDefaultPort || url.Port <= 0 ? (secure ? 636 : 389) : url.Port;
        var connection = new LdapConnection(new LdapDirectoryIdentifier(url.Host, port, fullyQualifiedDnsHostName: true, connectionless: false))
        {
            AuthType = AuthType.Basic,
            Timeout = TimeSpan.FromSeconds(o.TimeoutSeconds),
        };
        connection.SessionOptions.ProtocolVersion = 3;
        connection.SessionOptions.ReferralChasing = ReferralChasingOptions.None;
        if (!string.IsNullOrEmpty(o.TrustedCertificatesDirectory))
        {
            connection.SessionOptions.TrustedCertificatesDirectory = o.TrustedCertificatesDirectory;
            connection.SessionOptions.StartNewTlsSessionContext();   // libldap reads the CA directory when a TLS context is made
        }
        if (secure) connection.SessionOptions.SecureSocketLayer = true;
        if (o.StartTls)
        {
            // On Linux the handle connects on its first bind, and StartTLS needs a connected handle: an anonymous bind
            // (no secret on the wire) connects it, then the session is upgraded before the user's bind.
            connection.AuthType = AuthType.Anonymous;
            connection.Bind();
            try { connection.SessionOptions.StartTransportLayerSecurity(null); }
            catch (Exception e) when (e is LdapException or DirectoryOperationException)
            {
                connection.Dispose();
                throw new TlsFailure($"StartTLS with {o.Url} failed ({e.Message.Trim()}): is the directory's certificate from a CA in " +
                    "Identity:Ldap:TrustedCertificatesDirectory (or the system's), for this host name?");
            }
            connection.AuthType = AuthType.Basic;
        }
        return connection;
    }
}

/// <summary>The TLS upgrade failed (untrusted certificate, wrong host name, no TLS on the server).</summary>
internal sealed class TlsFailure(string message) : Exception(message);
