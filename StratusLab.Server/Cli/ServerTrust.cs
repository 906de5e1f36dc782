using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace StratusLab.Server.Cli;

/// <summary>
/// How the client decides to trust an https server: a certificate the system trusts; else a CA file (--ca-file,
/// STRATUSLAB_CA_FILE, "caFile" in client.json) that the server's chain must end in; else the SHA-256 fingerprint pinned
/// for that host:port in ~/.config/stratuslab/known_servers, pinned on first use by --accept-fingerprint FP (or by the
/// interactive login, which calls <see cref="FetchFingerprintAsync"/> and <see cref="Pin"/>). A changed certificate is
/// refused with both fingerprints and what to do; nothing is ever trusted silently.
/// </summary>
public sealed class ServerTrust(Uri endpoint, string? caFile, string? acceptFingerprint, string? knownServersPath = null)
{
    /// <summary>Why the last handshake was refused, in words for the user; null when none was.</summary>
    public string? Failure { get; private set; }

    public string KnownServersPath { get; } = knownServersPath ?? DefaultKnownServersPath();

    public static string DefaultKnownServersPath()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var config = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } x ? x : Path.Combine(home, ".config");
        return Path.Combine(config, "stratuslab", "known_servers");
    }

    /// <summary>host:port as the pins name a server.</summary>
    public static string ServerKey(Uri endpoint) => $"{endpoint.IdnHost}:{endpoint.Port}";

    /// <summary>A handler that checks the server's certificate by these rules.</summary>
    public SocketsHttpHandler CreateHandler() => new()
    {
        SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = Validate },
    };

    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        Failure = null;
        if (errors == SslPolicyErrors.None) return true;
        if (certificate is null)
        {
            Failure = $"the server at {endpoint} sent no certificate.";
            return false;
        }
        var presented = Fingerprint(certificate);
        if (caFile is not null)
        {
            if (ChainsTo(certificate, caFile, out var why) && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0) return true;
            Failure = (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0
                ? $"the certificate of {endpoint} does not name the host '{endpoint.IdnHost}'; connect by a name it holds, or give the server a certificate for this name."
                : $"the certificate of {endpoint} (SHA-256 {presented}) is not signed by the CA in {caFile}: {why}. Check --ca-file, or pin it with --accept-fingerprint after comparing it with the one the server printed.";
            return false;
        }
        var key = ServerKey(endpoint);
        var pinned = Pins().GetValueOrDefault(key);
        if (pinned is not null)
        {
            if (Same(pinned, presented)) return true;
            Failure = $"THE CERTIFICATE OF {key} HAS CHANGED: {KnownServersPath} pins SHA-256 {pinned}, the server now presents {presented}. "
                + "Someone may be intercepting the connection, or the server got a new certificate. If its administrator confirms the new "
                + $"fingerprint, remove the line for {key} from {KnownServersPath} and connect again with --accept-fingerprint {presented}. Refused.";
            return false;
        }
        if (acceptFingerprint is not null)
        {
            if (Same(acceptFingerprint, presented))
            {
                Pin(endpoint, presented, KnownServersPath);
                return true;
            }
            Failure = $"the certificate of {key} has SHA-256 fingerprint {presented}, not the {Normalize(acceptFingerprint)} given with --accept-fingerprint. Refused.";
            return false;
        }
        Failure = $"the certificate of {key} is not trusted ({errors}); its SHA-256 fingerprint is {presented}. Compare it with the one the server printed "
            + "at start (also in <data-dir>/tls/server.sha256), then pin it with --accept-fingerprint FP, or trust the server's CA with --ca-file FILE.";
        return false;
    }

    /// <summary>The fingerprint the server presents now, whatever its trust (for a login prompt that asks the user).</summary>
    public static async Task<string> FetchFingerprintAsync(Uri endpoint, CancellationToken ct = default)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(endpoint.Host, endpoint.Port, ct);
        X509Certificate? seen = null;
        await using var ssl = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) => { seen = certificate; return true; });
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = endpoint.IdnHost }, ct);
        return Fingerprint(seen ?? throw new AuthenticationFailure($"the server at {endpoint} sent no certificate."));
    }

    /// <summary>Pins <paramref name="fingerprint"/> for the server of <paramref name="endpoint"/>, replacing an older pin.</summary>
    public static void Pin(Uri endpoint, string fingerprint, string? knownServersPath = null)
    {
        var path = knownServersPath ?? DefaultKnownServersPath();
        var key = ServerKey(endpoint);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var lines = File.Exists(path) ? File.ReadAllLines(path).Where(l => !l.StartsWith(key + " ", StringComparison.Ordinal)).ToList() : [];
        lines.Add($"{key} {Normalize(fingerprint)}");
        File.WriteAllLines(path, lines);
    }

    /// <summary>SHA-256 of the DER certificate as upper-case hex pairs with colons (as the server prints it).</summary>
    public static string Fingerprint(X509Certificate certificate) =>
        string.Join(':', SHA256.HashData(certificate.GetRawCertData()).Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    Dictionary<string, string> Pins()
    {
        var pins = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (!File.Exists(KnownServersPath)) return pins;
        foreach (var line in File.ReadAllLines(KnownServersPath))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && !parts[0].StartsWith('#')) pins[parts[0]] = parts[1];
        }
        return pins;
    }

    static bool ChainsTo(X509Certificate certificate, string caFile, out string why)
    {
        why = "";
        var roots = new X509Certificate2Collection();
        try { roots.ImportFromPemFile(caFile); }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            why = $"cannot read {caFile}: {e.Message}";
            return false;
        }
        using var leaf = new X509Certificate2(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain.Build(leaf)) return true;
        why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct());
        return false;
    }

    static string Normalize(string fingerprint)
    {
        var text = fingerprint.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase) ? fingerprint[7..] : fingerprint;
        var hex = new string(text.Where(Uri.IsHexDigit).ToArray()).ToUpperInvariant();
        return string.Join(':', hex.Chunk(2).Select(c => new string(c)));
    }

    static bool Same(string a, string b) => Normalize(a) == Normalize(b);

    /// <summary>A handshake that could not complete.</summary>
    public sealed class AuthenticationFailure(string message) : Exception(message);
}
