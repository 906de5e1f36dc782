using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Networking;

/// <summary>
/// Leases and NIC host sides for Compute: admission checks, all-or-nothing allocation of addresses and PAT ports,
/// the drivers' pre-boot / post-boot / clean actions. Host-side actions of all networks are serialised (one gate),
/// so a NIC's DHCP entry, tap and rules are never made while reconciliation decides what is an orphan.
/// </summary>
internal sealed class InstanceNetworking(
    NetworkingStore store,
    IServiceProvider services,
    ServerOptions options,
    NetworkingOptions networking,
    GuestApiAddress guestApi,
    INodeDirectory nodes,
    ILogger<InstanceNetworking> logger) : IInstanceNetworking
{
    public const string DefaultNetworkName = "default";
    const int MaxForwardPorts = 16;

    readonly ConcurrentDictionary<long, SemaphoreSlim> _instanceLocks = new();
    readonly SemaphoreSlim _hostGate = new(1, 1);

    public async Task ValidateAsync(IReadOnlyList<string> networks, IReadOnlyList<int> forwardPorts, int count, Caller caller, CancellationToken ct = default)
    {
        if (networks.Count > networking.MaxNicsPerInstance)
            throw new InvalidInputException("networks", $"'networks' names {networks.Count} networks; an instance may have at most {networking.MaxNicsPerInstance} NICs (Networking:MaxNicsPerInstance).");
        if (forwardPorts.Count > MaxForwardPorts)
            throw new InvalidInputException("forwardPorts", $"'forwardPorts' has {forwardPorts.Count} ports; at most {MaxForwardPorts} are accepted.");
        foreach (var port in forwardPorts)
            if (port is < 1 or > 65535) throw new InvalidInputException("forwardPorts", $"'forwardPorts' contains {port}; guest ports are 1..65535.");
        if (forwardPorts.Distinct().Count() != forwardPorts.Count)
            throw new InvalidInputException("forwardPorts", "'forwardPorts' names a port twice; give each guest port once.");

        var names = networks.Count == 0 ? [DefaultNetworkName] : networks;
        var rows = new Dictionary<string, NetworkRow>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in names)
        {
            if (rows.ContainsKey(name)) continue;
            var row = await store.FindNetworkAsync(name);
            if (row is null || long.TryParse(name, out _) || !AccessRules.Can(caller, OwnershipOf(row), Operation.Use))
            {
                var usable = (await store.ListNetworksAsync()).Where(n => AccessRules.Can(caller, OwnershipOf(n), Operation.Use)).Select(n => n.Name);
                throw new InvalidInputException("networks", $"Unknown network '{Validate.Trim(name)}'; networks you may use: {string.Join(", ", usable.DefaultIfEmpty("(none)"))}.", unprocessable: true);
            }
            rows[name] = row;
        }
        var counts = await store.CountLeasesAsync();
        foreach (var group in names.GroupBy(n => rows[n].Id))
        {
            var row = rows[group.First()];
            if (NetworkingStore.HasPrivateLeases(row)) continue;
            var size = (await store.RangesAsync(row.Id)).Sum(r => r.Last - r.First + 1);
            var (used, held) = counts.GetValueOrDefault(row.Id);
            var free = size - used - held;
            var needed = (long)group.Count() * count;
            if (free < needed)
                throw new NetworkFullException($"Network '{row.Name}' has {free} free address(es) ({used} used, {held} held of {size}); this request needs {needed}. " +
                    "Terminate instances, release held addresses, or use another network.");
        }
    }

    public async Task<IReadOnlyList<NicPlan>> AllocateAsync(NicRequest request, CancellationToken ct = default)
    {
        var names = request.Networks.Count == 0 ? [DefaultNetworkName] : request.Networks;
        var allocation = await store.AllocateAsync(request.InstanceId, names, request.FirstMac, networks =>
        {
            var patNic = networks.ToList().FindIndex(n => n.Kind != "public");
            // A simulated VM without real media forwards nothing: it must not hold ports of this machine that real VMs need.
            if (patNic < 0 || request.Simulated && !networking.SimulatedPorts) return null;
            var guestPorts = networking.GuestPorts.Concat(request.ForwardPorts).Distinct().ToList();
            var address = networking.PatAddress;
            return new PortWant(patNic, guestPorts, address, networking.PatPortFirst, networking.PatPortLast,
                request.Simulated ? null : port => IsPortFree(address, port));
        });
        return PlansOf(request.InstanceId, allocation, await VxlanMtuAsync(allocation.Networks));
    }

    public async Task<IReadOnlyList<NicPlan>> PlansAsync(long instanceId, CancellationToken ct = default)
    {
        var leases = await store.LeasesOfInstanceAsync(instanceId);
        if (leases.Count == 0) return [];
        var ports = await store.PortsOfInstanceAsync(instanceId);
        var networks = new List<NetworkRow>();
        foreach (var id in leases.Select(l => l.NetworkId).Distinct()) networks.Add((await store.GetNetworkAsync(id))!);
        return PlansOf(instanceId, new Allocation(leases, ports, networks), await VxlanMtuAsync(networks));
    }

    /// <summary>
    /// The MTU guests of bridge networks get once SSH nodes exist (a bridge network may then span nodes over VXLAN, whose
    /// 50 bytes come off the underlay's MTU); null when none of the networks is a bridge network or no node exists.
    /// </summary>
    async Task<int?> VxlanMtuAsync(IEnumerable<NetworkRow> networks)
    {
        if (!networks.Any(n => n.Driver == NetworkDriverNames.Bridge)) return null;
        return (await nodes.ListNodesAsync()).Count == 0 ? null : networking.VxlanUnderlayMtu - BridgeNetworkDriver.VxlanOverhead;
    }

    /// <summary>A network's guest MTU: its own, capped by <paramref name="vxlanMtu"/> for bridge networks (pure).</summary>
    public static int? EffectiveMtu(NetworkRow row, int? vxlanMtu) =>
        row.Driver != NetworkDriverNames.Bridge || vxlanMtu is not { } cap ? row.Mtu : Math.Min(row.Mtu ?? cap, cap);

    IReadOnlyList<NicPlan> PlansOf(long instanceId, Allocation allocation, int? vxlanMtu)
    {
        var plans = new List<NicPlan>();
        foreach (var lease in allocation.Leases)
        {
            var network = allocation.Networks.First(n => n.Id == lease.NetworkId);
            var forwards = ForwardsOf(lease, allocation.Ports);
            var driver = Driver(network.Driver);
            var dns = DnsOf(network);
            plans.Add(new NicPlan(lease.Nic ?? plans.Count, network.Name, network.Driver, lease.Mac, lease.Ip, network.Subnet.MaskText, network.Subnet.ToString(),
                network.Gateway, dns, EffectiveMtu(network, vxlanMtu), driver.TapOf(new NicSpec(instanceId, lease.Nic ?? 0, lease.Mac, (uint)lease.Address, forwards, [])), forwards)
            {
                UserDns = dns.FirstOrDefault(d => Ipv4.TryParse(d, out var a) && network.Subnet.IsHostAddress(a))
                    ?? (network.Subnet.Prefix <= 29 ? Ipv4.Format(network.Subnet.Network + 3) : null),
            });
        }
        return plans;
    }

    public async Task PreBootAsync(long instanceId, string? host, CancellationToken ct = default)
    {
        // A VM on an SSH node has its NICs on that node's bridge, joined to the front-end's over VXLAN.
        var site = host is null || await nodes.FindNodeAsync(host, ct) is not { } node ? null : new NodeSite(node.Name, node.Ssh, node.Ssh.Address);
        await HostStepAsync(instanceId, "pre-boot", async (driver, network, nic) =>
        {
            if (site is not null) network = network with { Vni = network.Vni ?? await store.VniAsync(network.Id, networking.VxlanFirstVni) };
            if (!await store.SetPlumbedAsync(instanceId, network.Id, nic.Address, site?.Name))
                throw new NetworkUnavailableException($"the lease of NIC {nic.Index} ({nic.Ip}) on network '{network.Name}' is no longer this instance's");
            await driver.PreBootAsync(network, nic with { Node = site }, await ServedAsync(network, exceptInstance: null), ct);
        }, ct);
    }

    public Task PostBootAsync(long instanceId, CancellationToken ct = default) =>
        HostStepAsync(instanceId, "post-boot", (driver, network, nic) => driver.PostBootAsync(network, nic, ct), ct);

    public async Task CleanAsync(long instanceId, CancellationToken ct = default)
    {
        var gate = _instanceLocks.GetOrAdd(instanceId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            foreach (var lease in await store.LeasesOfInstanceAsync(instanceId))
            {
                var row = await store.GetNetworkAsync(lease.NetworkId);
                var driver = row is null ? null : Driver(row.Driver);
                if (lease.Plumbed && driver is { HasHostSide: true })
                {
                    var network = await SpecOfAsync(row!);
                    await _hostGate.WaitAsync(ct);
                    try
                    {
                        var started = Stopwatch.GetTimestamp();
                        await driver.CleanAsync(network, await NicOfAsync(lease, network.Id), await ServedAsync(network, exceptInstance: instanceId), ct);
                        // Within the gate: the next NIC's clean must not count this one as still served.
                        await store.DeleteLeaseAsync(instanceId, lease.NetworkId, lease.Address);
                        logger.LogInformation("Instance {Id}: NIC {Nic} on network {Network} ({Ip}) removed in {Ms} ms",
                            instanceId, lease.Nic, network.Name, lease.Ip, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        // The lease stays (plumbed), so the next reconciliation pass tries again.
                        logger.LogError(e, "Instance {Id}: removing NIC {Nic} on network {Network} failed; reconciliation will retry", instanceId, lease.Nic, network.Name);
                        continue;
                    }
                    finally
                    {
                        _hostGate.Release();
                    }
                    continue;
                }
                await store.DeleteLeaseAsync(instanceId, lease.NetworkId, lease.Address);
            }
        }
        finally
        {
            gate.Release();
            if (gate.CurrentCount == 1) _instanceLocks.TryRemove(instanceId, out _);
        }
    }

    /// <summary>Re-applies the security group rules of every plumbed NIC on the networks (a group's rules changed).</summary>
    public async Task ApplyRulesAsync(IReadOnlyList<long> networkIds, CancellationToken ct)
    {
        foreach (var id in networkIds)
        {
            var row = await store.GetNetworkAsync(id);
            if (row is null || !Driver(row.Driver).HasHostSide) continue;
            var network = await SpecOfAsync(row);
            await _hostGate.WaitAsync(ct);
            try
            {
                foreach (var lease in await store.PlumbedLeasesAsync(id))
                    await Driver(row.Driver).ApplyRulesAsync(network, await NicOfAsync(lease, id), ct);
            }
            finally
            {
                _hostGate.Release();
            }
        }
    }

    /// <summary>Releases the leases of ended instances; at start-up also makes each driver's host side match the live NICs.</summary>
    public async Task ReconcileAsync(Func<long, Task<bool>> isLive, bool atStartup, CancellationToken ct)
    {
        foreach (var instanceId in await store.LeasingInstancesAsync())
        {
            if (await isLive(instanceId)) continue;
            logger.LogWarning("Instance {Id} has ended but still holds leases; releasing them", instanceId);
            await CleanAsync(instanceId, ct);
        }
        if (!atStartup) return;
        await _hostGate.WaitAsync(ct);
        try
        {
            foreach (var name in NetworkDriverNames.All)
            {
                var driver = Driver(name);
                if (!driver.HasHostSide) continue;
                var live = new List<(NetworkSpec, IReadOnlyList<NicSpec>)>();
                var rows = (await store.ListNetworksAsync()).Where(n => n.Driver == name).ToList();
                // The driver publishes every forward on Networking:PatAddress as it is now: the leases must say so.
                if (await store.SetPortHostAddressAsync(rows.Select(r => r.Id).ToList(), networking.PatAddress) is > 0 and var moved)
                    logger.LogWarning("Networking:PatAddress is now {Address}: {Count} forwarded port(s) of running instances moved to it", networking.PatAddress, moved);
                foreach (var row in rows)
                {
                    var network = await SpecOfAsync(row);
                    var nics = await ServedAsync(network, exceptInstance: null);
                    if (nics.Count > 0) live.Add((network, nics));
                }
                await driver.ReconcileAsync(live, ct);
            }
        }
        finally
        {
            _hostGate.Release();
        }
    }

    /// <summary>Removes what a network still has on the host (it is being deleted; it has no NIC left).</summary>
    public async Task TearDownAsync(NetworkRow row, CancellationToken ct)
    {
        var driver = Driver(row.Driver);
        if (!driver.HasHostSide || !Directory.Exists(Path.Combine(options.DataDir, "networks", row.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)))) return;
        await _hostGate.WaitAsync(ct);
        try { await driver.TearDownAsync(await SpecOfAsync(row), ct); }
        finally { _hostGate.Release(); }
    }

    async Task HostStepAsync(long instanceId, string step, Func<INetworkDriver, NetworkSpec, NicSpec, Task> act, CancellationToken ct)
    {
        var gate = _instanceLocks.GetOrAdd(instanceId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            foreach (var lease in await store.LeasesOfInstanceAsync(instanceId))
            {
                var row = await store.GetNetworkAsync(lease.NetworkId) ?? throw new NetworkUnavailableException($"the network of NIC {lease.Nic} no longer exists");
                var driver = Driver(row.Driver);
                if (!driver.HasHostSide) continue;
                var network = await SpecOfAsync(row);
                await _hostGate.WaitAsync(ct);
                try
                {
                    var started = Stopwatch.GetTimestamp();
                    await act(driver, network, await NicOfAsync(lease, network.Id));
                    logger.LogInformation("Instance {Id}: {Step} of NIC {Nic} on network {Network} ({Ip}) done in {Ms} ms",
                        instanceId, step, lease.Nic, network.Name, lease.Ip, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
                finally
                {
                    _hostGate.Release();
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Every NIC whose host side may exist on the network, but those of <paramref name="exceptInstance"/>.</summary>
    async Task<IReadOnlyList<NicSpec>> ServedAsync(NetworkSpec network, long? exceptInstance)
    {
        var list = new List<NicSpec>();
        foreach (var lease in await store.PlumbedLeasesAsync(network.Id))
            if (lease.InstanceId != exceptInstance && lease.InstanceId is not null)
                list.Add(await NicOfAsync(lease, network.Id));
        return list;
    }

    async Task<NicSpec> NicOfAsync(LeaseRow lease, long networkId)
    {
        var ports = lease.InstanceId is { } id ? await store.PortsOfInstanceAsync(id) : [];
        var rules = (await store.RulesOfNetworkAsync(networkId))
            .Select(r => new SecurityRule(r.Direction, r.Action, r.Protocol, r.PortFirst, r.PortLast, r.Cidr)).ToList();
        NodeSite? site = null;
        if (lease.Node is { } name)
            site = await nodes.FindNodeAsync(name) is { } node ? new NodeSite(node.Name, node.Ssh, node.Ssh.Address) : new NodeSite(name, null, "");
        return new NicSpec(lease.InstanceId ?? 0, lease.Nic ?? 0, lease.Mac, (uint)lease.Address, ForwardsOf(lease, ports), rules, site);
    }

    static IReadOnlyList<PortForwardPlan> ForwardsOf(LeaseRow lease, IReadOnlyList<PortRow> ports) =>
        ports.Where(p => p.NetworkId == lease.NetworkId && p.Address == lease.Address)
            .Select(p => new PortForwardPlan((int)p.GuestPort, p.HostAddress, (int)p.Port, p.Protocol)).ToList();

    public async Task<NetworkSpec> SpecOfAsync(NetworkRow row)
    {
        var linkedNames = networking.LinkedTo(row.Name);
        var linked = linkedNames.Count == 0 ? [] : (await store.ListNetworksAsync())
            .Where(n => n.Id != row.Id && linkedNames.Contains(n.Name, StringComparer.OrdinalIgnoreCase)).Select(n => n.Id).ToList();
        return new(row.Id, row.Name, row.Subnet, row.Gateway, DnsOf(row), EffectiveMtu(row, await VxlanMtuAsync([row])), row.VlanId, row.Uplink, guestApi.LoopbackPort, linked,
            row.Vni);
    }

    public static IReadOnlyList<string> DnsOf(NetworkRow row) => row.Dns;

    /// <summary>The keyed driver service of a network's driver name.</summary>
    public INetworkDriver Driver(string name) => services.GetNetworkDriver(name);

    public static Ownership OwnershipOf(NetworkRow row) => new(row.OwnerId, row.GroupId, new Permissions((int)row.Permissions));

    static bool IsPortFree(string address, int port)
    {
        try
        {
            using var listener = new TcpListener(address == "0.0.0.0" ? IPAddress.Any : IPAddress.Parse(address), port);
            listener.Start();
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse) { return false; }
        catch (SocketException) { return true; }
    }
}
