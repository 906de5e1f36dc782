using System.Data;
using Dapper;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Firewall;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Networking;

/// <summary>One network as stored.</summary>
internal sealed class NetworkRow
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public string Kind { get; init; } = "";
    public string Driver { get; init; } = "";
    public long OwnerId { get; init; }
    public long GroupId { get; init; }
    public long Permissions { get; init; }
    public long Network { get; init; }
    public int Prefix { get; init; }
    public string? Gateway { get; init; }
    public IReadOnlyList<string> Dns { get; init; } = [];
    public int? Mtu { get; init; }
    public int? VlanId { get; init; }
    public string? Uplink { get; init; }
    /// <summary>The allocation cursor: the next address to try.</summary>
    public long NextAddress { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>The VXLAN network identifier, given on the network's first NIC on an SSH node.</summary>
    public long? Vni { get; init; }

    public Subnet Subnet => new((uint)Network, Prefix);
}

/// <summary>An address range of a network.</summary>
internal sealed record RangeRow(long NetworkId, long First, long Last);

/// <summary>One lease: an address used by an instance NIC, or held.</summary>
internal sealed class LeaseRow
{
    public long NetworkId { get; init; }
    public long Address { get; init; }
    public string Mac { get; init; } = "";
    public string State { get; init; } = "";
    public long? InstanceId { get; init; }
    public int? Nic { get; init; }
    public string? Reason { get; init; }
    public bool Plumbed { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>The SSH node whose bridge carries the plumbed NIC; null on this machine.</summary>
    public string? Node { get; init; }

    public string Ip => Ipv4.Format((uint)Address);
}

/// <summary>A forwarded host port.</summary>
internal sealed class PortRow
{
    public long Port { get; init; }
    public string Protocol { get; init; } = "";
    public string HostAddress { get; init; } = "";
    public long NetworkId { get; init; }
    public long Address { get; init; }
    public long GuestPort { get; init; }
    public long InstanceId { get; init; }
}

/// <summary>What an instance holds after allocation: its leases (by NIC), its PAT ports, and the networks they are on.</summary>
internal sealed record Allocation(IReadOnlyList<LeaseRow> Leases, IReadOnlyList<PortRow> Ports, IReadOnlyList<NetworkRow> Networks);

/// <summary>A security group as stored.</summary>
internal sealed class SecurityGroupRow
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public long OwnerId { get; init; }
    public long GroupId { get; init; }
    public long Permissions { get; init; }
    public string? Description { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>A security group rule as stored.</summary>
internal sealed class SecurityRuleRow
{
    public long Id { get; init; }
    public long SecurityGroupId { get; init; }
    public string Direction { get; init; } = "";
    public string Action { get; init; } = "";
    public string Protocol { get; init; } = "";
    public int? PortFirst { get; init; }
    public int? PortLast { get; init; }
    public string? Cidr { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>A network to insert, with its ranges, the addresses held from the start (gateway, DNS) and security groups.</summary>
internal sealed record NewNetwork(
    string Name, string Kind, string Driver, long OwnerId, long GroupId, long Permissions, Subnet Subnet, string? Gateway, IReadOnlyList<string> Dns,
    int? Mtu, int? VlanId, string? Uplink, IReadOnlyList<AddressRange> Ranges, IReadOnlyList<(uint Address, string Reason)> Held, IReadOnlyList<long> SecurityGroups);

/// <summary>What PROLOG asks of the allocator: a network per NIC, and the PAT ports of one NIC.</summary>
internal sealed record PortWant(int Nic, IReadOnlyList<int> GuestPorts, string HostAddress, int First, int Last, Func<int, bool>? IsFree);

/// <summary>The Networking module's SQL (tables net_*).</summary>
internal sealed class NetworkingStore(Store store)
{
    /// <summary>Runs several of this store's operations in one IMMEDIATE transaction (all or nothing).</summary>
    public Task<T> WriteAsync<T>(Func<IDbConnection, IDbTransaction, Task<T>> work) => store.WriteAsync<T>((c, tx) => work(c, tx));

    public Task WriteAsync(Func<IDbConnection, IDbTransaction, Task> work) => store.WriteAsync((c, tx) => work(c, tx));

    const string NetworkColumns = """
        id AS Id, name AS Name, kind AS Kind, driver AS Driver, owner_id AS OwnerId, group_id AS GroupId, permissions AS Permissions,
        network AS Network, prefix AS Prefix, gateway AS Gateway, dns_json AS Dns, mtu AS Mtu, vlan_id AS VlanId, uplink AS Uplink,
        next_address AS NextAddress, created_at AS CreatedAt, vni AS Vni
        """;
    const string LeaseColumns = """
        network_id AS NetworkId, address AS Address, mac AS Mac, state AS State, instance_id AS InstanceId, nic AS Nic, reason AS Reason,
        plumbed AS Plumbed, created_at AS CreatedAt, node AS Node
        """;
    const string PortColumns = """
        port AS Port, protocol AS Protocol, host_address AS HostAddress, network_id AS NetworkId, address AS Address, guest_port AS GuestPort,
        instance_id AS InstanceId
        """;
    const string GroupColumns = "id AS Id, name AS Name, owner_id AS OwnerId, group_id AS GroupId, permissions AS Permissions, description AS Description, created_at AS CreatedAt";
    const string RuleColumns = """
        id AS Id, security_group_id AS SecurityGroupId, direction AS Direction, action AS Action, protocol AS Protocol,
        port_first AS PortFirst, port_last AS PortLast, cidr AS Cidr, created_at AS CreatedAt
        """;

    // ---- networks ---------------------------------------------------------------------------------------

    public async Task<long> InsertNetworkAsync(IDbConnection c, IDbTransaction tx, NewNetwork n)
    {
        var now = DateTimeOffset.UtcNow;
        var id = await c.ExecuteScalarAsync<long>("""
            INSERT INTO net_networks (name, kind, driver, owner_id, group_id, permissions, network, prefix, gateway, dns_json, mtu, vlan_id, uplink,
                next_address, created_at)
            VALUES (@Name, @Kind, @Driver, @OwnerId, @GroupId, @Permissions, @network, @prefix, @Gateway, @Dns, @Mtu, @VlanId, @Uplink, @next, @now)
            RETURNING id
            """, new { n.Name, n.Kind, n.Driver, n.OwnerId, n.GroupId, n.Permissions, network = (long)n.Subnet.Network, prefix = n.Subnet.Prefix,
                n.Gateway, n.Dns, n.Mtu, n.VlanId, n.Uplink, next = (long)n.Ranges[0].First, now }, tx);
        foreach (var r in n.Ranges)
            await c.ExecuteAsync("INSERT INTO net_ranges (network_id, first, last) VALUES (@id, @first, @last)",
                new { id, first = (long)r.First, last = (long)r.Last }, tx);
        foreach (var (address, reason) in n.Held)
            await c.ExecuteAsync("""
                INSERT INTO net_leases (network_id, address, mac, state, reason, created_at) VALUES (@id, @address, @mac, 'held', @reason, @now)
                ON CONFLICT DO NOTHING
                """, new { id, address = (long)address, mac = Macs.FromAddress(address), reason, now }, tx);
        for (var i = 0; i < n.SecurityGroups.Count; i++)
            await c.ExecuteAsync("INSERT INTO net_network_security_groups (network_id, security_group_id, position) VALUES (@id, @sg, @i)",
                new { id, sg = n.SecurityGroups[i], i }, tx);
        return id;
    }

    public async Task<IReadOnlyList<NetworkRow>> ListNetworksAsync(IDbConnection? c = null, IDbTransaction? tx = null)
    {
        if (c is not null) return (await c.QueryAsync<NetworkRow>($"SELECT {NetworkColumns} FROM net_networks ORDER BY id", transaction: tx)).AsList();
        await using var own = await store.OpenAsync();
        return (await own.QueryAsync<NetworkRow>($"SELECT {NetworkColumns} FROM net_networks ORDER BY id")).AsList();
    }

    /// <summary>By numeric id or by name.</summary>
    public async Task<NetworkRow?> FindNetworkAsync(string idOrName, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        var sql = long.TryParse(idOrName, out var id)
            ? $"SELECT {NetworkColumns} FROM net_networks WHERE id = @id"
            : $"SELECT {NetworkColumns} FROM net_networks WHERE name = @idOrName";
        if (c is not null) return await c.QuerySingleOrDefaultAsync<NetworkRow>(sql, new { id, idOrName }, tx);
        await using var own = await store.OpenAsync();
        return await own.QuerySingleOrDefaultAsync<NetworkRow>(sql, new { id, idOrName });
    }

    public async Task<NetworkRow?> GetNetworkAsync(long id)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<NetworkRow>($"SELECT {NetworkColumns} FROM net_networks WHERE id = @id", new { id });
    }

    public async Task<IReadOnlyList<RangeRow>> RangesAsync(long networkId, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = "SELECT network_id AS NetworkId, first AS First, last AS Last FROM net_ranges WHERE network_id = @networkId ORDER BY first";
        if (c is not null) return (await c.QueryAsync<RangeRow>(sql, new { networkId }, tx)).AsList();
        await using var own = await store.OpenAsync();
        return (await own.QueryAsync<RangeRow>(sql, new { networkId })).AsList();
    }

    /// <summary>Leases in use and held, per network.</summary>
    public async Task<Dictionary<long, (long Used, long Held)>> CountLeasesAsync()
    {
        await using var c = await store.OpenAsync();
        var rows = await c.QueryAsync<(long NetworkId, long Used, long Held)>("""
            SELECT network_id, SUM(state = 'used' AND address <= 4294967295), SUM(state = 'held') FROM net_leases GROUP BY network_id
            """);
        return rows.ToDictionary(r => r.NetworkId, r => (r.Used, r.Held));
    }

    public async Task<IReadOnlyList<string>> SecurityGroupNamesAsync(long networkId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<string>("""
            SELECT g.name FROM net_network_security_groups n JOIN net_security_groups g ON g.id = n.security_group_id
            WHERE n.network_id = @networkId ORDER BY n.position
            """, new { networkId })).AsList();
    }

    public async Task DeleteNetworkAsync(IDbConnection c, IDbTransaction tx, long id) =>
        await c.ExecuteAsync("DELETE FROM net_networks WHERE id = @id", new { id }, tx);

    // ---- leases -----------------------------------------------------------------------------------------

    public async Task<IReadOnlyList<LeaseRow>> LeasesOfNetworkAsync(long networkId, string? state, int limit, int offset)
    {
        await using var c = await store.OpenAsync();
        var sql = $"SELECT {LeaseColumns} FROM net_leases WHERE network_id = @networkId" + (state is null ? "" : " AND state = @state") +
                  " ORDER BY address LIMIT @limit OFFSET @offset";
        return (await c.QueryAsync<LeaseRow>(sql, new { networkId, state, limit, offset })).AsList();
    }

    static async Task<LeaseRow?> LeaseAsync(IDbConnection c, IDbTransaction tx, long networkId, uint address) =>
        await c.QuerySingleOrDefaultAsync<LeaseRow>($"SELECT {LeaseColumns} FROM net_leases WHERE network_id = @networkId AND address = @address",
            new { networkId, address = (long)address }, tx);

    /// <summary>
    /// Holds a free address: the lease is written only if the address has none. Returns the lease now on the address and
    /// whether this call made it (false: the address was already used or held, and that lease is returned).
    /// </summary>
    public Task<(LeaseRow Lease, bool Held)> HoldAsync(long networkId, uint address, string reason) =>
        store.WriteAsync<(LeaseRow, bool)>(async (c, tx) =>
        {
            var held = await c.QuerySingleOrDefaultAsync<LeaseRow>($"""
                INSERT INTO net_leases (network_id, address, mac, state, reason, created_at) VALUES (@networkId, @address, @mac, 'held', @reason, @now)
                ON CONFLICT (network_id, address) DO NOTHING
                RETURNING {LeaseColumns}
                """, new { networkId, address = (long)address, mac = Macs.FromAddress(address), reason, now = DateTimeOffset.UtcNow }, tx);
            return held is not null ? (held, true) : ((await LeaseAsync(c, tx, networkId, address))!, false);
        });

    /// <summary>
    /// Gives a held address back, unless it is the network's own (gateway, DNS). Returns the lease that was on the
    /// address and whether it was released (false: free, used, or reserved for the network; nothing changed).
    /// </summary>
    public Task<(LeaseRow? Lease, bool Released)> ReleaseHeldAsync(long networkId, uint address) =>
        store.WriteAsync<(LeaseRow?, bool)>(async (c, tx) =>
        {
            var released = await c.QuerySingleOrDefaultAsync<LeaseRow>($"""
                DELETE FROM net_leases
                WHERE network_id = @networkId AND address = @address AND state = 'held' AND COALESCE(reason, '') NOT IN ('gateway', 'dns')
                RETURNING {LeaseColumns}
                """, new { networkId, address = (long)address }, tx);
            return released is not null ? (released, true) : (await LeaseAsync(c, tx, networkId, address), false);
        });

    public async Task<IReadOnlyList<long>> InstancesUsingAsync(IDbConnection c, IDbTransaction tx, long networkId) =>
        (await c.QueryAsync<long>("SELECT DISTINCT instance_id FROM net_leases WHERE network_id = @networkId AND state = 'used' ORDER BY instance_id",
            new { networkId }, tx)).AsList();

    /// <summary>The leases of an instance, by NIC.</summary>
    public async Task<IReadOnlyList<LeaseRow>> LeasesOfInstanceAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<LeaseRow>($"SELECT {LeaseColumns} FROM net_leases WHERE instance_id = @instanceId ORDER BY nic", new { instanceId })).AsList();
    }

    public async Task<IReadOnlyList<PortRow>> PortsOfInstanceAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<PortRow>($"SELECT {PortColumns} FROM net_ports WHERE instance_id = @instanceId ORDER BY port", new { instanceId })).AsList();
    }

    /// <summary>Makes the forwarded ports of the networks say the host address they are now published on; returns how many changed.</summary>
    public Task<int> SetPortHostAddressAsync(IReadOnlyList<long> networkIds, string hostAddress) =>
        networkIds.Count == 0 ? Task.FromResult(0) : store.WriteAsync((c, tx) => c.ExecuteAsync(
            "UPDATE net_ports SET host_address = @hostAddress WHERE network_id IN @networkIds AND host_address <> @hostAddress",
            new { networkIds, hostAddress }, tx));

    public async Task<IReadOnlyList<PortRow>> PortsOfNetworkAsync(long networkId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<PortRow>($"SELECT {PortColumns} FROM net_ports WHERE network_id = @networkId ORDER BY port", new { networkId })).AsList();
    }

    /// <summary>Leases whose host side may exist on a network.</summary>
    public async Task<IReadOnlyList<LeaseRow>> PlumbedLeasesAsync(long networkId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<LeaseRow>($"SELECT {LeaseColumns} FROM net_leases WHERE network_id = @networkId AND plumbed = 1 ORDER BY instance_id, nic",
            new { networkId })).AsList();
    }

    /// <summary>Ids of instances holding leases.</summary>
    public async Task<IReadOnlyList<long>> LeasingInstancesAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<long>("SELECT DISTINCT instance_id FROM net_leases WHERE state = 'used' ORDER BY instance_id")).AsList();
    }

    /// <summary>Marks an instance's lease as having host state; false when the lease is no longer that instance's.</summary>
    /// <summary>The network's VXLAN identifier, allocated (the next after the highest given, from <paramref name="first"/>) and stored on first use.</summary>
    public Task<long> VniAsync(long networkId, long first) => WriteAsync(async (c, tx) =>
    {
        await c.ExecuteAsync("""
            UPDATE net_networks SET vni = (SELECT MAX(COALESCE(MAX(vni) + 1, @first), @first) FROM net_networks)
            WHERE id = @networkId AND vni IS NULL
            """, new { networkId, first }, tx);
        return await c.ExecuteScalarAsync<long>("SELECT vni FROM net_networks WHERE id = @networkId", new { networkId }, tx);
    });

    public async Task<bool> SetPlumbedAsync(long instanceId, long networkId, uint address, string? node = null)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("""
            UPDATE net_leases SET plumbed = 1, node = @node
            WHERE network_id = @networkId AND address = @address AND instance_id = @instanceId AND state = 'used'
            """, new { instanceId, networkId, address = (long)address, node }) == 1;
    }

    /// <summary>Gives one lease of an instance back (its ports go with it).</summary>
    public async Task DeleteLeaseAsync(long instanceId, long networkId, long address)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("""
            DELETE FROM net_leases WHERE network_id = @networkId AND address = @address AND instance_id = @instanceId AND state = 'used'
            """, new { instanceId, networkId, address });
    }

    /// <summary>
    /// Leases one address per NIC (in the networks given, in order) and the PAT ports of one NIC, in one IMMEDIATE
    /// transaction: concurrent allocations never get the same address or port, and a failure leaves nothing.
    /// An instance that already has leases gets them back unchanged.
    /// </summary>
    /// <summary>
    /// Leases one address per named network (and PAT ports, as <paramref name="wantPorts"/> asks for the resolved networks) in one
    /// write transaction, and returns what the instance then holds; an instance that already has leases gets them back unchanged.
    /// </summary>
    public async Task<Allocation> AllocateAsync(long instanceId, IReadOnlyList<string> networkNames, string? firstMac, Func<IReadOnlyList<NetworkRow>, PortWant?> wantPorts)
    {
        return await store.WriteAsync(async (c, tx) =>
        {
            // The instance's leases (if it has some already) and the named networks, in one batch.
            var ids = networkNames.Select(n => long.TryParse(n, out var id) ? id : (long?)null).OfType<long>().ToList();
            using var batch = await c.QueryMultipleAsync($"""
                SELECT {LeaseColumns} FROM net_leases WHERE instance_id = @instanceId ORDER BY nic;
                SELECT {NetworkColumns} FROM net_networks WHERE name IN @names OR id IN @ids
                """, new { instanceId, names = networkNames.ToList(), ids }, tx);
            var existing = (await batch.ReadAsync<LeaseRow>()).AsList();
            var found = (await batch.ReadAsync<NetworkRow>()).AsList();
            var named = new List<NetworkRow>();
            foreach (var name in networkNames)
                named.Add(found.FirstOrDefault(n => long.TryParse(name, out var id) ? n.Id == id : n.Name == name)
                    ?? throw new NetworkUnavailableException($"network '{name}' no longer exists"));
            return await AllocateAsync(c, tx, instanceId, existing, named, firstMac, wantPorts);
        });
    }

    /// <summary>The same by network ids, with a fixed port request; returns the leases.</summary>
    public async Task<IReadOnlyList<LeaseRow>> AllocateAsync(long instanceId, IReadOnlyList<long> networkIds, string? firstMac, PortWant? ports) =>
        (await AllocateAsync(instanceId, networkIds.Select(id => id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList(), firstMac, _ => ports)).Leases;

    async Task<Allocation> AllocateAsync(IDbConnection c, IDbTransaction tx, long instanceId, List<LeaseRow> existing, List<NetworkRow> named, string? firstMac,
        Func<IReadOnlyList<NetworkRow>, PortWant?> wantPorts)
    {
        var networks = new List<NetworkRow>();
        if (existing.Count > 0)
        {
            foreach (var id in existing.Select(l => l.NetworkId).Distinct())
                networks.Add(await c.QuerySingleAsync<NetworkRow>($"SELECT {NetworkColumns} FROM net_networks WHERE id = @id", new { id }, tx));
            var held = (await c.QueryAsync<PortRow>($"SELECT {PortColumns} FROM net_ports WHERE instance_id = @instanceId ORDER BY port", new { instanceId }, tx)).AsList();
            return new Allocation(existing, held, networks);
        }
        networks = named;
        var networkIds = networks.Select(n => n.Id).ToList();
        var ports = wantPorts(networks);
        var given = new List<PortRow>();
        var now = DateTimeOffset.UtcNow;
        var leases = new List<LeaseRow>();
        // The rows were read in this transaction; a second NIC on the same network continues from the first one's address.
        var cursors = networks.GroupBy(n => n.Id).ToDictionary(g => g.Key, g => g.First().NextAddress);
        for (var nic = 0; nic < networkIds.Count; nic++)
        {
            var network = networks[nic];
            var ranges = await RangesAsync(networkIds[nic], c, tx);
            if (HasPrivateLeases(network))
            {
                // Every VM has its own slirp: each gets the range's first address, and the lease takes nothing from a pool.
                var own = PrivateAddress((uint)ranges[0].First, instanceId, nic);
                var ownMac = nic == 0 && firstMac is not null ? firstMac : Macs.FromAddress((uint)own);
                await c.ExecuteAsync("""
                    INSERT INTO net_leases (network_id, address, mac, state, instance_id, nic, created_at)
                    VALUES (@networkId, @own, @ownMac, 'used', @instanceId, @nic, @now)
                    """, new { networkId = networkIds[nic], own, ownMac, instanceId, nic, now }, tx);
                leases.Add(new LeaseRow { NetworkId = networkIds[nic], Address = own, Mac = ownMac, State = "used", InstanceId = instanceId, Nic = nic, CreatedAt = now });
                continue;
            }
            var address = await FirstFreeAsync(c, tx, networkIds[nic], ranges, cursors[network.Id]);
            if (address is null)
            {
                var taken = await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM net_leases WHERE network_id = @id", new { id = networkIds[nic] }, tx);
                throw new NetworkUnavailableException(
                    $"network '{network.Name}' has no free address ({taken} of {ranges.Sum(r => r.Last - r.First + 1)} leased or held); terminate instances, release held addresses or use another network");
            }
            var mac = nic == 0 && firstMac is not null ? firstMac : Macs.FromAddress((uint)address.Value);
            await c.ExecuteAsync("""
                INSERT INTO net_leases (network_id, address, mac, state, instance_id, nic, created_at)
                VALUES (@networkId, @address, @mac, 'used', @instanceId, @nic, @now);
                UPDATE net_networks SET next_address = @next WHERE id = @networkId
                """, new { networkId = networkIds[nic], address, mac, instanceId, nic, now, next = address + 1 }, tx);
            leases.Add(new LeaseRow { NetworkId = networkIds[nic], Address = address.Value, Mac = mac, State = "used", InstanceId = instanceId, Nic = nic, CreatedAt = now });
            cursors[network.Id] = address.Value + 1;
        }
        if (ports is not null && ports.GuestPorts.Count > 0)
        {
            var lease = leases[ports.Nic];
            var taken = (await c.QueryAsync<long>("SELECT port FROM net_ports WHERE protocol = 'tcp' AND port BETWEEN @First AND @Last",
                new { ports.First, ports.Last }, tx)).ToHashSet();
            var candidate = ports.First;
            foreach (var guestPort in ports.GuestPorts)
            {
                while (candidate <= ports.Last && (taken.Contains(candidate) || ports.IsFree?.Invoke(candidate) == false)) candidate++;
                if (candidate > ports.Last)
                    throw new NetworkUnavailableException(
                        $"no free PAT port left in {ports.First}-{ports.Last}; terminate instances or widen Networking:PatPortFirst/PatPortLast");
                given.Add(new PortRow { Port = candidate, Protocol = "tcp", HostAddress = ports.HostAddress, NetworkId = lease.NetworkId,
                    Address = lease.Address, GuestPort = guestPort, InstanceId = instanceId });
                candidate++;
            }
            // One statement for all of the instance's ports.
            var values = new DynamicParameters(new { ports.HostAddress, lease.NetworkId, lease.Address, instanceId });
            var rows = new List<string>();
            for (var i = 0; i < given.Count; i++)
            {
                values.Add($"port{i}", given[i].Port);
                values.Add($"guest{i}", given[i].GuestPort);
                rows.Add($"(@port{i}, 'tcp', @HostAddress, @NetworkId, @Address, @guest{i}, @instanceId)");
            }
            await c.ExecuteAsync($"""
                INSERT INTO net_ports (port, protocol, host_address, network_id, address, guest_port, instance_id)
                VALUES {string.Join(", ", rows)}
                """, values, tx);
        }
        return new Allocation(leases, given, networks);
    }

    /// <summary>
    /// The built-in default network uses QEMU user-mode networking, where each VM's NIC is private to it (its own slirp, its
    /// own 10.0.2.0/24): its leases are not a shared pool, so it never fills up. Networks made through the API keep their
    /// ranges as pools (distinct addresses, reservations, "network full"), as their owners asked for.
    /// </summary>
    public static bool HasPrivateLeases(NetworkRow network) =>
        network.Driver == "user" && string.Equals(network.Name, InstanceNetworking.DefaultNetworkName, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A private lease's key: the guest address in the low 32 bits (what every reader takes with a (uint) cast), and the
    /// instance and NIC above them, so that one address serves every VM without two leases sharing a key.
    /// </summary>
    public static long PrivateAddress(uint ip, long instanceId, int nic) => ((instanceId * 16 + nic + 1) << 32) | ip;

    /// <summary>Whether a stored lease address is a private one (see <see cref="PrivateAddress"/>).</summary>
    public static bool IsPrivate(long address) => address > uint.MaxValue;

    /// <summary>The first address no lease has, searching the ranges from the cursor on and wrapping around once.</summary>
    static async Task<long?> FirstFreeAsync(IDbConnection c, IDbTransaction tx, long networkId, IReadOnlyList<RangeRow> ranges, long cursor)
    {
        foreach (var (from, to) in Segments(ranges, cursor))
        {
            var free = await c.ExecuteScalarAsync<long?>("""
                SELECT CASE
                    WHEN NOT EXISTS (SELECT 1 FROM net_leases WHERE network_id = @networkId AND address = @from) THEN @from
                    ELSE (SELECT l.address + 1 FROM net_leases l
                          WHERE l.network_id = @networkId AND l.address >= @from AND l.address < @to
                            AND NOT EXISTS (SELECT 1 FROM net_leases m WHERE m.network_id = @networkId AND m.address = l.address + 1)
                          ORDER BY l.address LIMIT 1)
                END
                """, new { networkId, from, to }, tx);
            if (free is not null) return free;
        }
        return null;
    }

    /// <summary>The ranges as segments to search, starting at the cursor and wrapping around to just before it (pure).</summary>
    public static IEnumerable<(long From, long To)> Segments(IReadOnlyList<RangeRow> ranges, long cursor)
    {
        var start = ranges.ToList().FindIndex(r => r.Last >= cursor);
        if (start < 0) (start, cursor) = (0, ranges[0].First);
        var first = ranges[start];
        var from = Math.Max(first.First, cursor);
        yield return (from, first.Last);
        for (var i = 1; i < ranges.Count; i++) yield return (ranges[(start + i) % ranges.Count].First, ranges[(start + i) % ranges.Count].Last);
        if (from > first.First) yield return (first.First, from - 1);
    }

    // ---- security groups --------------------------------------------------------------------------------

    public async Task<IReadOnlyList<SecurityGroupRow>> ListGroupsAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<SecurityGroupRow>($"SELECT {GroupColumns} FROM net_security_groups ORDER BY id")).AsList();
    }

    public async Task<SecurityGroupRow?> FindGroupAsync(string name, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        var sql = $"SELECT {GroupColumns} FROM net_security_groups WHERE name = @name";
        if (c is not null) return await c.QuerySingleOrDefaultAsync<SecurityGroupRow>(sql, new { name }, tx);
        await using var own = await store.OpenAsync();
        return await own.QuerySingleOrDefaultAsync<SecurityGroupRow>(sql, new { name });
    }

    public async Task<long> InsertGroupAsync(IDbConnection c, IDbTransaction tx, string name, long ownerId, long groupId, long permissions, string? description) =>
        await c.ExecuteScalarAsync<long>("""
            INSERT INTO net_security_groups (name, owner_id, group_id, permissions, description, created_at)
            VALUES (@name, @ownerId, @groupId, @permissions, @description, @now) RETURNING id
            """, new { name, ownerId, groupId, permissions, description, now = DateTimeOffset.UtcNow }, tx);

    public async Task<long> InsertRuleAsync(IDbConnection c, IDbTransaction tx, long groupId, SecurityRule rule) =>
        await c.ExecuteScalarAsync<long>("""
            INSERT INTO net_security_rules (security_group_id, direction, action, protocol, port_first, port_last, cidr, created_at)
            VALUES (@groupId, @Direction, @Action, @Protocol, @PortFirst, @PortLast, @Cidr, @now) RETURNING id
            """, new { groupId, rule.Direction, rule.Action, rule.Protocol, rule.PortFirst, rule.PortLast, rule.Cidr, now = DateTimeOffset.UtcNow }, tx);

    public async Task<int> DeleteRuleAsync(IDbConnection c, IDbTransaction tx, long groupId, long ruleId) =>
        await c.ExecuteAsync("DELETE FROM net_security_rules WHERE id = @ruleId AND security_group_id = @groupId", new { groupId, ruleId }, tx);

    public async Task<IReadOnlyList<SecurityRuleRow>> RulesOfGroupAsync(long groupId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<SecurityRuleRow>($"SELECT {RuleColumns} FROM net_security_rules WHERE security_group_id = @groupId ORDER BY id", new { groupId })).AsList();
    }

    /// <summary>Every rule of every security group of a network.</summary>
    public async Task<IReadOnlyList<SecurityRuleRow>> RulesOfNetworkAsync(long networkId)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<SecurityRuleRow>($"""
            SELECT {RuleColumns} FROM net_security_rules
            WHERE security_group_id IN (SELECT security_group_id FROM net_network_security_groups WHERE network_id = @networkId)
            ORDER BY id
            """, new { networkId })).AsList();
    }

    public async Task<IReadOnlyList<long>> NetworksUsingGroupAsync(long groupId, IDbConnection? c = null, IDbTransaction? tx = null)
    {
        const string sql = "SELECT network_id FROM net_network_security_groups WHERE security_group_id = @groupId ORDER BY network_id";
        if (c is not null) return (await c.QueryAsync<long>(sql, new { groupId }, tx)).AsList();
        await using var own = await store.OpenAsync();
        return (await own.QueryAsync<long>(sql, new { groupId })).AsList();
    }

    public async Task DeleteGroupAsync(IDbConnection c, IDbTransaction tx, long id) =>
        await c.ExecuteAsync("DELETE FROM net_security_groups WHERE id = @id", new { id }, tx);
}
