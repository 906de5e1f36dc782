using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// A compute "node" for host tests: a network namespace the test creates, linked to the host by a veth pair of its own
/// (a /30 from 198.18.0.0/15, the benchmarking range), running its own Debian sshd on the node end with its own config,
/// host key, authorized_keys and pidfile in a temp dir. Nothing of the host's own sshd or network is touched beyond the
/// veth end made here. sshd runs under timeout(1); disposing kills everything in the namespace, deletes it (the veth
/// pair goes with it) and removes the temp dir, also after a failed test.
/// </summary>
public sealed class SshNode : IAsyncDisposable
{
    const string Sshd = "/usr/sbin/sshd";
    readonly NetworkNamespace _ns;
    readonly NetworkNamespace? _frontEnd;
    readonly string _config;

    SshNode(NetworkNamespace ns, NetworkNamespace? frontEnd, string directory, string hostAddress, string address, string hostLink, string config)
    {
        _ns = ns;
        _frontEnd = frontEnd;
        Directory = directory;
        HostAddress = hostAddress;
        Address = address;
        HostLink = hostLink;
        _config = config;
    }

    public NetworkNamespace Namespace => _ns;

    /// <summary>The node's temp dir (sshd config, host key, authorized_keys, the node-side root for VMs).</summary>
    public string Directory { get; }

    /// <summary>The node's address (its end of the veth pair) and the host's end.</summary>
    public string Address { get; }
    public string HostAddress { get; }
    public string HostLink { get; }

    /// <summary>A node-side directory for the server to use as this node's root (never the server's data dir).</summary>
    public string Root => Path.Combine(Directory, "node-root");

    public string HostKeyFile => Path.Combine(Directory, "ssh_host_ed25519_key");

    /// <summary>Why host tests cannot make SSH nodes here (no root, no namespaces, no sshd), or null.</summary>
    public static async Task<string?> WhyUnavailableAsync()
    {
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) return why;
        if (!File.Exists(Sshd)) return "sshd is not installed (Debian openssh-server; scripts/install-deps.sh --test)";
        return null;
    }

    /// <summary>
    /// Makes a node that accepts <paramref name="authorizedKey"/> for root. <paramref name="path"/> replaces PATH for
    /// commands run over SSH on the node (to model a node without some tool). With <paramref name="frontEnd"/>, the
    /// "host end" of the node's veth is in that namespace (where a namespaced server runs) instead of the host's.
    /// </summary>
    public static async Task<SshNode> StartAsync(string authorizedKey, string? path = null, NetworkNamespace? frontEnd = null)
    {
        var ns = await NetworkNamespace.CreateAsync("sln");
        var directory = TempDir.Create("sshnode");
        try
        {
            var (hostLink, hostAddress, address) = await LinkAsync(ns, frontEnd);
            await RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "stratuslab-test-node", "-f", Path.Combine(directory, "ssh_host_ed25519_key")]);
            await File.WriteAllTextAsync(Path.Combine(directory, "authorized_keys"), authorizedKey.Trim() + "\n");
            System.IO.Directory.CreateDirectory(Path.Combine(directory, "node-root"));
            System.IO.Directory.CreateDirectory(Path.Combine(directory, "home"));
            // sshd's privilege separation directory; Debian's package makes it only at boot.
            System.IO.Directory.CreateDirectory("/run/sshd");
            var config = Path.Combine(directory, "sshd_config");
            await File.WriteAllLinesAsync(config,
            [
                $"ListenAddress {address}",
                "Port 22",
                $"HostKey {Path.Combine(directory, "ssh_host_ed25519_key")}",
                $"PidFile {Path.Combine(directory, "sshd.pid")}",
                $"AuthorizedKeysFile {Path.Combine(directory, "authorized_keys")}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "AllowTcpForwarding yes",
                "AllowStreamLocalForwarding yes",
                "Subsystem sftp internal-sftp",
                "MaxSessions 64",
                "MaxStartups 64",
                // The node's own home: the host root's shell start-up files (and whatever locks they take) stay out of the node.
                $"SetEnv HOME={Path.Combine(directory, "home")}" + (path is null ? "" : $" PATH={path}"),
            ]);
            var node = new SshNode(ns, frontEnd, directory, hostAddress, address, hostLink, config);
            await node.StartSshdAsync();
            return node;
        }
        catch
        {
            await ns.DisposeAsync();
            TempDir.Delete(directory);
            throw;
        }
    }

    /// <summary>A veth pair: the host end (named here, addressed .1) and eth0 in the node (.2), on a random free /30.</summary>
    static async Task<(string HostLink, string HostAddress, string Address)> LinkAsync(NetworkNamespace ns, NetworkNamespace? frontEnd)
    {
        Task<(int Exit, string Out, string Err)> Run(string tool, IEnumerable<string> args) =>
            frontEnd is null ? HostTools.RunAsync(tool, args, TimeSpan.FromSeconds(30)) : frontEnd.TryAsync(tool, args, TimeSpan.FromSeconds(30));
        var hostLink = "sln" + Guid.NewGuid().ToString("N")[..8];
        var (exit, _, error) = await Run("ip", ["link", "add", hostLink, "type", "veth", "peer", "name", "eth0", "netns", ns.Name]);
        Assert.That(exit, Is.Zero, "ip link add: " + error);
        for (var attempt = 0; ; attempt++)
        {
            var block = Random.Shared.Next(0, 1 << 15) * 4;
            var prefix = string.Create(CultureInfo.InvariantCulture, $"198.{18 + (block >> 16)}.{(block >> 8) & 0xff}.");
            var (hostAddress, address) = (prefix + ((block & 0xff) + 1), prefix + ((block & 0xff) + 2));
            var (inUse, _, _) = await HostTools.RunAsync("sh", ["-c", $"ip -o addr show | grep -q ' {prefix}{block & 0xff}/\\| {hostAddress}/\\| {address}/'"], TimeSpan.FromSeconds(10));
            if (inUse == 0 && attempt < 20) continue;
            (exit, _, error) = await Run("ip", ["addr", "add", hostAddress + "/30", "dev", hostLink]);
            Assert.That(exit, Is.Zero, "ip addr add: " + error);
            await Run("ip", ["link", "set", hostLink, "up"]);
            await ns.RunAsync("ip", ["addr", "add", address + "/30", "dev", "eth0"]);
            await ns.RunAsync("ip", ["link", "set", "eth0", "up"]);
            return (hostLink, hostAddress, address);
        }
    }

    /// <summary>Starts sshd (again) with this node's config and host key; returns once it accepts connections.</summary>
    /// <remarks>
    /// <paramref name="withoutQemuModule"/>: sshd (and so everything run over SSH) sees QEMU's module directory without
    /// that module, through a bind mount in a private mount namespace (unshare -m): a node without the package that ships
    /// it (block-iscsi.so: qemu-block-extra). The host's own mounts are untouched.
    /// </remarks>
    public async Task StartSshdAsync(string? withoutQemuModule = null)
    {
        var log = Path.Combine(Directory, "sshd.log");
        if (withoutQemuModule is null)
            _ns.Start("timeout", ["1800", Sshd, "-D", "-e", "-f", _config], onLine: line => { lock (_config) File.AppendAllText(log, line + "\n"); });
        else
        {
            const string modules = "/usr/lib/x86_64-linux-gnu/qemu";
            Assert.That(System.IO.Directory.Exists(modules), Is.True, "QEMU's module directory (Debian layout)");
            var partial = Path.Combine(Directory, "qemu-modules-without-" + withoutQemuModule);
            System.IO.Directory.CreateDirectory(partial);
            foreach (var file in System.IO.Directory.EnumerateFiles(modules).Where(f => Path.GetFileName(f) != withoutQemuModule))
                if (!File.Exists(Path.Combine(partial, Path.GetFileName(file)))) File.CreateSymbolicLink(Path.Combine(partial, Path.GetFileName(file)), file);
            _ns.Start("unshare", ["--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$1\" \"$2\" && exec timeout 1800 \"$3\" -D -e -f \"$4\"", "sh", partial, modules, Sshd, _config],
                onLine: line => { lock (_config) File.AppendAllText(log, line + "\n"); });
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.ConnectAsync(Address, 22, cts.Token);
                return;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"sshd did not listen on {Address}:22: {(File.Exists(log) ? File.ReadAllText(log) : "")}");
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Stops every sshd of the node (the listener and the open sessions, so the server's control master dies too); other processes stay.</summary>
    public async Task StopSshdAsync()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var sshds = (await _ns.PidsAsync()).Where(IsSshd).ToList();
            if (sshds.Count == 0) return;
            foreach (var pid in sshds)
            {
                try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
            }
            await Task.Delay(100);
        }
        Assert.Fail("sshd did not stop in the node namespace");
    }

    /// <summary>Restarts sshd with <paramref name="path"/> as PATH for commands run over SSH (a tool removed after the node was probed).</summary>
    public async Task RestartSshdWithPathAsync(string path)
    {
        await StopSshdAsync();
        var lines = (await File.ReadAllLinesAsync(_config)).Select(l => l.StartsWith("SetEnv ", StringComparison.Ordinal)
            ? $"SetEnv HOME={Path.Combine(Directory, "home")} PATH={path}" : l).ToList();
        await File.WriteAllLinesAsync(_config, lines);
        await StartSshdAsync();
    }

    /// <summary>Gives the node a new host key (as a reinstalled machine, or another one at its address), and restarts sshd.</summary>
    public async Task ChangeHostKeyAsync()
    {
        await StopSshdAsync();
        File.Delete(HostKeyFile);
        File.Delete(HostKeyFile + ".pub");
        await RunAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "stratuslab-test-node-2", "-f", HostKeyFile]);
        await StartSshdAsync();
    }

    static bool IsSshd(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").Trim() == "sshd"; }
        catch (IOException) { return false; }
    }

    static async Task RunAsync(string tool, IEnumerable<string> args)
    {
        var (exit, _, error) = await HostTools.RunAsync(tool, args, TimeSpan.FromSeconds(30));
        Assert.That(exit, Is.Zero, $"{tool}: {error}");
    }

    public async ValueTask DisposeAsync()
    {
        await _ns.DisposeAsync();
        // The host end goes with its peer; make sure, in case the namespace could not be deleted.
        if (_frontEnd is null) await HostTools.RunAsync("ip", ["link", "del", HostLink], TimeSpan.FromSeconds(10));
        else await _frontEnd.TryAsync("ip", ["link", "del", HostLink], TimeSpan.FromSeconds(10));
        TempDir.Delete(Directory);
    }
}
