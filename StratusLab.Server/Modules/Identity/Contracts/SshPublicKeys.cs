using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>OpenSSH public key lines ("type base64 [comment]"): checked, normalized, fingerprinted like ssh-keygen -l.</summary>
public static class SshPublicKeys
{
    static readonly HashSet<string> Types = new(StringComparer.Ordinal)
    {
        "ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    };

    /// <summary>The key as one trimmed line and its SHA256 fingerprint; or null and why it is not an OpenSSH public key.</summary>
    public static (string Line, string Fingerprint)? Parse(string text, out string? error)
    {
        error = null;
        var line = text.Trim();
        if (line.Contains('\n') || line.Contains('\r')) { error = "give one key: a single line like 'ssh-ed25519 AAAA... user@host'"; return null; }
        var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2 || !Types.Contains(parts[0])) { error = "it does not start with an SSH key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256...); give the .pub file, not the private key"; return null; }
        byte[] blob;
        try { blob = Convert.FromBase64String(parts[1]); }
        catch (FormatException) { error = "its key data is not base64"; return null; }
        // The blob starts with its own type name: a key of one type pasted after another type's name is refused.
        if (blob.Length < 4 || BinaryPrimitives.ReadUInt32BigEndian(blob) is var n && (n > blob.Length - 4 || Encoding.ASCII.GetString(blob, 4, (int)n) != parts[0]))
        { error = $"its key data is not a {parts[0]} key"; return null; }
        var fingerprint = "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');
        return (string.Join(' ', parts), fingerprint);
    }
}
