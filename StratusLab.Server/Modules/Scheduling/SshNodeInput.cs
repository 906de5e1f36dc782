using System.Text.RegularExpressions;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>Checks what an admin gives to add an SSH node; nothing that could read as an ssh option or a shell word gets through.</summary>
internal static partial class SshNodeInput
{
    public static SshTarget Target(string? ssh, int? port, string? keyFile)
    {
        if (string.IsNullOrWhiteSpace(ssh))
            throw ApiException.BadRequest("ssh", "'ssh' is required for driver 'ssh': give [user@]address, such as root@192.0.2.10.");
        var at = ssh.LastIndexOf('@');
        var user = at < 0 ? "root" : ssh[..at];
        var address = at < 0 ? ssh : ssh[(at + 1)..];
        if (!UserPattern().IsMatch(user))
            throw ApiException.BadRequest("ssh", $"'ssh' = '{Validate.Trim(ssh)}': the user '{Validate.Trim(user)}' is not a valid login name (a letter or '_' first, then letters, digits, '_', '.' or '-').");
        if (!AddressPattern().IsMatch(address))
            throw ApiException.BadRequest("ssh", $"'ssh' = '{Validate.Trim(ssh)}': '{Validate.Trim(address)}' is not a host name or an IP address.");
        var p = (int)Validate.Range(port ?? 22, "port", 1, 65535);
        if (keyFile is not null)
        {
            if (!Path.IsPathFullyQualified(keyFile))
                throw ApiException.BadRequest("keyFile", $"'keyFile' = '{Validate.Trim(keyFile)}' must be an absolute path on the server's machine.");
            if (!File.Exists(keyFile))
                throw ApiException.BadRequest("keyFile", $"'keyFile' = '{Validate.Trim(keyFile)}' does not exist on the server's machine; give the path of the private key the server should use.");
        }
        return new SshTarget(user, address, p, keyFile);
    }

    /// <summary>The node-side directory: absolute, plain characters, and never the server's own data dir (a node must not use the front-end's paths).</summary>
    public static string Root(string root, string dataDir)
    {
        if (!Path.IsPathFullyQualified(root) || !RootPattern().IsMatch(root) || root.Split('/').Contains(".."))
            throw ApiException.BadRequest("root", $"'root' = '{Validate.Trim(root)}' is not accepted: give an absolute path of letters, digits, '.', '_', '-' and '/'.");
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataDir));
        if (full == data || full.StartsWith(data + "/", StringComparison.Ordinal) || data.StartsWith(full + "/", StringComparison.Ordinal))
            throw ApiException.BadRequest("root", $"'root' = '{Validate.Trim(root)}' overlaps the server's data dir ({data}); a node keeps its VMs in a directory of its own.");
        return full;
    }

    /// <summary>The boot disk mode of a new node: cache when not given.</summary>
    public static string BootDisks(string? bootDisks) => bootDisks switch
    {
        null => Scheduling.Contracts.NodeBootDisks.Cache,
        Scheduling.Contracts.NodeBootDisks.Cache or Scheduling.Contracts.NodeBootDisks.Iscsi => bootDisks,
        _ => throw ApiException.BadRequest("bootDisks", $"'bootDisks' = '{Validate.Trim(bootDisks)}' is not accepted; accepted values: cache (the image is copied to the node once, " +
            "a copy-on-write overlay per VM; the default), iscsi (the boot volume stays on this machine and the node's QEMU opens it over iSCSI)."),
    };

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")]
    private static partial Regex UserPattern();

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|[0-9A-Fa-f:.]+)$")]
    private static partial Regex AddressPattern();

    [GeneratedRegex(@"^/[A-Za-z0-9._/-]*$")]
    private static partial Regex RootPattern();
}
