using System.Globalization;
using System.Text;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Networking.Drivers;

internal sealed partial class BridgeNetworkDriver
{
    string Dnsmasq => string.IsNullOrEmpty(networking.DnsmasqBinary) ? "dnsmasq" : networking.DnsmasqBinary;

    /// <summary>
    /// Makes the network's dnsmasq serve exactly <paramref name="served"/>. It is restarted rather than sent SIGHUP: the
    /// hosts file is then read as root before dnsmasq drops its privileges, so the data dir need not be readable by nobody.
    /// </summary>
    async Task ServeDhcpAsync(NetworkSpec network, IReadOnlyList<NicSpec> served, CancellationToken ct)
    {
        // One at a time per network: two callers at once (the start-up reconcile and a NIC's pre-boot, say) each saw no
        // dnsmasq running and each started one; the pidfile named only the second, so the first outlived the network.
        var gate = _dhcpGates.GetOrAdd(network.Id, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try { await ServeDhcpLockedAsync(network, served, ct); }
        finally { gate.Release(); }
    }

    readonly System.Collections.Concurrent.ConcurrentDictionary<long, SemaphoreSlim> _dhcpGates = new();

    async Task ServeDhcpLockedAsync(NetworkSpec network, IReadOnlyList<NicSpec> served, CancellationToken ct)
    {
        var dir = StateDir(network.Id);
        Directory.CreateDirectory(dir);
        var hosts = Path.Combine(dir, "dhcp-hosts");
        var content = DhcpHosts(served);
        if (File.Exists(hosts) && await File.ReadAllTextAsync(hosts, ct) == content && RunningDnsmasq(network.Id) is not null) return;
        var temp = hosts + ".tmp";
        await File.WriteAllTextAsync(temp, content, ct);
        File.Move(temp, hosts, overwrite: true);
        await StopDnsmasqLockedAsync(network.Id, ct);
        await runner.RunAsync(new ToolCommand(Dnsmasq, DnsmasqArguments(network, dir)) { Timeout = TimeSpan.FromSeconds(15) }, ct);
        logger.LogDebug("Network {Name}: dnsmasq serves {Count} lease(s)", network.Name, served.Count);
    }

    /// <summary>One "mac,ip" line per NIC: dnsmasq gives these addresses and nothing else (static mode).</summary>
    public static string DhcpHosts(IEnumerable<NicSpec> served) =>
        string.Concat(served.OrderBy(n => n.Address).Select(n => $"{n.Mac},{n.Ip}\n"));

    /// <summary>The dnsmasq command line of a network (pure): DHCP only, on the network's bridge only, static leases only.</summary>
    public static IReadOnlyList<string> DnsmasqArguments(NetworkSpec network, string stateDir)
    {
        var args = new List<string>
        {
            "--conf-file=/dev/null",
            "--pid-file=" + Path.Combine(stateDir, "dnsmasq.pid"),
            "--interface=" + BridgeName(network.Id),
            "--bind-interfaces",
            "--except-interface=lo",
            "--port=0",
            "--no-resolv",
            "--no-hosts",
            $"--dhcp-range={Ipv4.Format(network.Subnet.Network)},static,{network.Subnet.MaskText},12h",
            "--dhcp-hostsfile=" + Path.Combine(stateDir, "dhcp-hosts"),
            "--dhcp-leasefile=" + Path.Combine(stateDir, "dnsmasq.leases"),
            "--dhcp-authoritative",
            "--log-facility=" + Path.Combine(stateDir, "dnsmasq.log"),
        };
        if (network.Gateway is not null) args.Add("--dhcp-option=option:router," + network.Gateway);
        if (network.Dns.Count > 0) args.Add("--dhcp-option=option:dns-server," + string.Join(',', network.Dns));
        if (network.Mtu is { } mtu) args.Add("--dhcp-option=option:mtu," + mtu.ToString(CultureInfo.InvariantCulture));
        return args;
    }

    /// <summary>The pid of the network's dnsmasq when it runs (its command line names our pidfile), else null.</summary>
    int? RunningDnsmasq(long networkId)
    {
        var pidFile = Path.Combine(StateDir(networkId), "dnsmasq.pid");
        try
        {
            if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid)) return null;
            var cmdline = Encoding.UTF8.GetString(File.ReadAllBytes($"/proc/{pid}/cmdline")).Replace('\0', ' ');
            return cmdline.Contains("--pid-file=" + pidFile, StringComparison.Ordinal) ? pid : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    async Task StopDnsmasqAsync(long networkId, CancellationToken ct)
    {
        var gate = _dhcpGates.GetOrAdd(networkId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try { await StopDnsmasqLockedAsync(networkId, ct); }
        finally { gate.Release(); }
    }

    async Task StopDnsmasqLockedAsync(long networkId, CancellationToken ct)
    {
        if (RunningDnsmasq(networkId) is not { } pid) return;
        await runner.RunAsync(new ToolCommand("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)]) { Timeout = TimeSpan.FromSeconds(10), AcceptedExitCodes = [1] }, ct);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (RunningDnsmasq(networkId) is not null)
        {
            if (DateTime.UtcNow > deadline)
            {
                await runner.RunAsync(new ToolCommand("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)]) { Timeout = TimeSpan.FromSeconds(10), AcceptedExitCodes = [1] }, ct);
                break;
            }
            await Task.Delay(20, ct);
        }
    }
}
