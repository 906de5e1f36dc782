using System.Text;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Platform.Host;

/// <summary>How the server reaches a node: OpenSSH as <see cref="User"/>@<see cref="Address"/>:<see cref="Port"/>, with <see cref="KeyFile"/> (else ssh's default keys).</summary>
public sealed record SshTarget(string User, string Address, int Port, string? KeyFile)
{
    public override string ToString() => $"{User}@{Address}:{Port}";

    /// <summary>The name ssh gives this target in a known-hosts file ("addr" on port 22, else "[addr]:port").</summary>
    public string KnownHostsName => Port == 22 ? Address : $"[{Address}]:{Port}";
}

/// <summary>Why an SSH command failed before the remote command ran: see <see cref="SshFailure"/>.</summary>
public enum SshFailureKind { Unreachable, AuthenticationFailed, HostKeyChanged, Timeout }

/// <summary>ssh could not run the remote command (the node is down, refused the key, or shows a different host key); the message says which and what to do.</summary>
public sealed class SshFailure(SshFailureKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public SshFailureKind Kind { get; } = kind;
}

/// <summary>
/// Runs commands on nodes with the OpenSSH client, through the one command runner: argument arrays on this side, each
/// remote argument quoted for the remote shell (no shell string is ever built from input). Connections share one control
/// master per node (ControlMaster/ControlPersist, sockets in a server-owned directory), and host keys are checked
/// against a known-hosts file the server keeps: the first contact pins the key (accept-new), a changed key is refused.
/// </summary>
public sealed class SshTransport(ICommandRunner runner, ServerOptions options)
{
    /// <summary>ssh's own exit code for a failure of its own (connection, authentication, host key).</summary>
    public const int SshErrorExitCode = 255;

    public string Directory => Path.Combine(options.DataDir, "ssh");
    public string KnownHostsFile => Path.Combine(Directory, "known_hosts");

    /// <summary>Control sockets: under the data dir, or under /tmp when that path would not fit a socket address (108 bytes, with ssh's 40-character %C name and its 17-character temporary suffix).</summary>
    public string ControlDirectory
    {
        get
        {
            var preferred = Path.Combine(Directory, "control");
            if (preferred.Length + 1 + 40 + 17 <= 107) return preferred;
            var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(options.DataDir)))[..16];
            return Path.Combine(Path.GetTempPath(), "stratuslab-ssh-" + hash);
        }
    }

    /// <summary>The ssh options every call uses (pure but for the paths).</summary>
    public IReadOnlyList<string> Options(SshTarget target) =>
        [.. ConfigOptions(target), "-p", target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", target.User];

    /// <summary>The -F/-o/-i options shared by ssh and scp.</summary>
    IReadOnlyList<string> ConfigOptions(SshTarget target)
    {
        var args = new List<string>
        {
            "-F", "/dev/null",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", "UserKnownHostsFile=" + KnownHostsFile,
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "ControlMaster=auto",
            "-o", "ControlPath=" + Path.Combine(ControlDirectory, "%C"),
            "-o", "ControlPersist=300",
            "-o", "ConnectTimeout=5",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=2",
            "-o", "StreamLocalBindUnlink=yes",
        };
        if (target.KeyFile is not null) args.AddRange(["-o", "IdentitiesOnly=yes", "-i", target.KeyFile]);
        return args;
    }

    /// <summary>The full ssh argument array that runs <paramref name="remote"/> on the node (pure but for the paths).</summary>
    public IReadOnlyList<string> Arguments(SshTarget target, IReadOnlyList<string> remote) =>
        [.. Options(target), "--", target.Address, RemoteCommandLine(remote)];

    /// <summary>The remote argument array as one line for the remote shell, every argument single-quoted when it needs it.</summary>
    public static string RemoteCommandLine(IReadOnlyList<string> remote) => string.Join(' ', remote.Select(Quote));

    public static string Quote(string a) =>
        a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@+%".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";

    /// <summary>
    /// Runs <paramref name="remote"/> on the node. Throws <see cref="SshFailure"/> when ssh itself failed (exit code 255: node
    /// down, connection lost, key refused, host key changed), and <see cref="ToolFailedException"/> when the remote command
    /// exited non-zero (the commands run here never exit 255 themselves).
    /// </summary>
    public async Task<ToolResult> RunAsync(SshTarget target, IReadOnlyList<string> remote, TimeSpan timeout, CancellationToken ct = default,
        string? standardInput = null, IReadOnlyList<int>? acceptedExitCodes = null)
    {
        PrepareDirectories();
        var command = new ToolCommand("ssh", Arguments(target, remote)) { Timeout = timeout, StandardInput = standardInput, AcceptedExitCodes = acceptedExitCodes ?? [] };
        try
        {
            return await runner.RunAsync(command, ct);
        }
        catch (ToolFailedException e) when (e.ExitCode == SshErrorExitCode)
        {
            // 255 is ssh's own failure; with no message it is a session whose control master just lost its connection (the
            // node went away mid-command), which is "not answering", not a failure of the remote command.
            var kind = Classify(e.StandardError) ?? SshFailureKind.Unreachable;
            throw new SshFailure(kind, Explain(kind, target, e.StandardError), e);
        }
        catch (ToolTimeoutException e)
        {
            throw new SshFailure(SshFailureKind.Timeout, $"{target} did not answer over SSH within {timeout.TotalSeconds:0} s", e);
        }
    }

    /// <summary>Copies a local file to the node (scp over the control master); the remote path is not read by a shell.</summary>
    public async Task CopyToAsync(SshTarget target, string localPath, string remotePath, TimeSpan timeout, CancellationToken ct = default)
    {
        PrepareDirectories();
        var command = new ToolCommand("scp", [.. ConfigOptions(target), "-q", "-P", target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--", localPath, $"{target.User}@{target.Address}:{remotePath}"]) { Timeout = timeout };
        try { await runner.RunAsync(command, ct); }
        catch (ToolFailedException e) when (e.ExitCode == SshErrorExitCode)
        {
            var kind = Classify(e.StandardError) ?? SshFailureKind.Unreachable;
            throw new SshFailure(kind, Explain(kind, target, e.StandardError), e);
        }
    }

    /// <summary>Copies a file from the node to this machine (scp over the control master).</summary>
    public async Task CopyFromAsync(SshTarget target, string remotePath, string localPath, TimeSpan timeout, CancellationToken ct = default)
    {
        PrepareDirectories();
        var command = new ToolCommand("scp", [.. ConfigOptions(target), "-q", "-P", target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--", $"{target.User}@{target.Address}:{remotePath}", localPath]) { Timeout = timeout };
        try { await runner.RunAsync(command, ct); }
        catch (ToolFailedException e) when (e.ExitCode == SshErrorExitCode)
        {
            var kind = Classify(e.StandardError) ?? SshFailureKind.Unreachable;
            throw new SshFailure(kind, Explain(kind, target, e.StandardError), e);
        }
    }

    /// <summary>
    /// Forwards a local unix socket to one on the node through the node's control master (ssh -O forward), so local
    /// clients (QMP) reach a remote QEMU; the master is opened first if it is not up.
    /// </summary>
    public async Task ForwardUnixSocketAsync(SshTarget target, string localSocket, string remoteSocket, CancellationToken ct = default)
    {
        await RunAsync(target, ["true"], TimeSpan.FromSeconds(30), ct);
        File.Delete(localSocket);
        await runner.RunAsync(new ToolCommand("ssh", [.. Options(target), "-O", "forward", "-L", localSocket + ":" + remoteSocket, "--", target.Address])
        {
            Timeout = TimeSpan.FromSeconds(15),
        }, ct);
    }

    /// <summary>Stops a forwarding made by <see cref="ForwardUnixSocketAsync"/> (nothing when the master is gone) and removes the local socket.</summary>
    public async Task CancelForwardAsync(SshTarget target, string localSocket, string remoteSocket, CancellationToken ct = default)
    {
        PrepareDirectories();
        await runner.RunAsync(new ToolCommand("ssh", [.. Options(target), "-O", "cancel", "-L", localSocket + ":" + remoteSocket, "--", target.Address])
        {
            Timeout = TimeSpan.FromSeconds(15),
            AcceptedExitCodes = [SshErrorExitCode],
        }, ct);
        File.Delete(localSocket);
    }

    /// <summary>Closes the node's control master, if one runs (the node was removed or its key changed).</summary>
    public async Task CloseAsync(SshTarget target, CancellationToken ct = default)
    {
        PrepareDirectories();
        await runner.RunAsync(new ToolCommand("ssh", [.. Options(target), "-O", "exit", "--", target.Address])
        {
            Timeout = TimeSpan.FromSeconds(10),
            AcceptedExitCodes = [SshErrorExitCode],
        }, ct);
    }

    /// <summary>Forgets the node's pinned host key, so the next contact pins the key it shows then.</summary>
    public async Task ForgetHostKeyAsync(SshTarget target, CancellationToken ct = default)
    {
        if (!File.Exists(KnownHostsFile)) return;
        await runner.RunAsync(new ToolCommand("ssh-keygen", ["-R", target.KnownHostsName, "-f", KnownHostsFile]) { Timeout = TimeSpan.FromSeconds(10) }, ct);
        File.Delete(KnownHostsFile + ".old");
    }

    void PrepareDirectories()
    {
        foreach (var dir in new[] { Directory, ControlDirectory })
            if (!System.IO.Directory.Exists(dir))
                System.IO.Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>What kind of ssh failure its error output shows; null when it is not one of ssh's own (pure).</summary>
    public static SshFailureKind? Classify(string stderr)
    {
        if (stderr.Contains("REMOTE HOST IDENTIFICATION HAS CHANGED", StringComparison.Ordinal) || stderr.Contains("Host key verification failed", StringComparison.Ordinal))
            return SshFailureKind.HostKeyChanged;
        if (stderr.Contains("Permission denied", StringComparison.Ordinal) || stderr.Contains("Too many authentication failures", StringComparison.Ordinal))
            return SshFailureKind.AuthenticationFailed;
        if (stderr.Contains("Connection timed out", StringComparison.Ordinal) || stderr.Contains("Operation timed out", StringComparison.Ordinal) || stderr.Contains("Timeout, server", StringComparison.Ordinal))
            return SshFailureKind.Timeout;
        if (stderr.Contains("ssh:", StringComparison.Ordinal) || stderr.Contains("Connection refused", StringComparison.Ordinal) || stderr.Contains("Connection closed", StringComparison.Ordinal)
            || stderr.Contains("No route to host", StringComparison.Ordinal) || stderr.Contains("Network is unreachable", StringComparison.Ordinal)
            || stderr.Contains("Could not resolve", StringComparison.Ordinal) || stderr.Contains("Connection reset", StringComparison.Ordinal)
            || stderr.Contains("kex_exchange_identification", StringComparison.Ordinal) || stderr.Contains("Broken pipe", StringComparison.Ordinal))
            return SshFailureKind.Unreachable;
        return null;
    }

    string Explain(SshFailureKind kind, SshTarget target, string stderr)
    {
        var said = LastLine(stderr);
        return kind switch
        {
            SshFailureKind.HostKeyChanged =>
                $"the SSH host key of {target} is not the one pinned in {KnownHostsFile} on first contact, so the node is refused (a changed key may mean another machine answers). " +
                $"If the node was reinstalled, forget the old key (POST /api/v1/hosts/{{name}}/forget-host-key, or ssh-keygen -R '{target.KnownHostsName}' -f {KnownHostsFile}) and probe again.",
            SshFailureKind.AuthenticationFailed =>
                $"{target} refused the key {target.KeyFile ?? "(ssh's default keys)"} ({said}); add its public key to {target.User}'s authorized_keys on the node, or give the right keyFile.",
            SshFailureKind.Timeout =>
                $"{target} did not answer over SSH ({said}); check that the node is up and reachable from this server.",
            _ => $"cannot reach {target} over SSH ({said}); check the address and port, and that sshd runs on the node.",
        };
    }

    static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault(l => !l.StartsWith('@') && !l.StartsWith("Warning: Permanently added", StringComparison.Ordinal)) ?? "no error output";
}
