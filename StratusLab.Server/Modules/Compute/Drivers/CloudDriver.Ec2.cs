using System.Globalization;
using System.Text;
using System.Xml.Linq;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// Peers of kind ec2, through the EC2 Query API (signed with SigV4 by <see cref="Ec2PeerClient"/>): the image is the one
/// whose location (DescribeImages filter manifest-location) is the Marketplace identifier; the type is the smallest of
/// DescribeInstanceTypes that fits; RunInstances carries a client token per local instance, so a retried start never
/// launches twice. EC2 has no suspend: pause and resume are refused with what to do instead.
/// </summary>
internal sealed partial class CloudDriver
{
    /// <summary>The longest a launch or a stop on an EC2 peer is waited for.</summary>
    static readonly TimeSpan Ec2Wait = TimeSpan.FromMinutes(10);

    /// <summary>Why <paramref name="action"/> (suspend or resume) cannot pass to the instance's peer, checked before the action starts; null when it can.</summary>
    public async Task<string?> RefusalOfAsync(InstanceRow row, string action, CancellationToken ct) =>
        row.Host is { } host && await peers.FindPeerAsync(host, ct) is { Kind: "ec2" } peer
            ? $"EC2 has no {action}: instance {row.Id} runs on EC2 peer cloud {peer.Name}; stop it instead (its disk is kept there), and start it again later."
            : null;

    async Task<XDocument> Ec2CallAsync(Remote remote, string action, IEnumerable<KeyValuePair<string, string>> parameters, CancellationToken ct)
    {
        try { return await ec2.CallAsync(remote.Ec2, action, parameters, ct); }
        catch (PeerRefusedException e) { throw new HypervisorException($"EC2 peer cloud {remote.Peer.Name} refused {action} ({e.Status}): {e.Detail}"); }
        catch (PeerUnreachableException e) { throw new HypervisorException($"peer cloud {remote.Peer.Name} does not answer: {e.Message}"); }
    }

    /// <summary>The peer's ami- id of the image whose location is <paramref name="identifier"/>; absent or failed there is an error that says what to do.</summary>
    async Task<string> Ec2ImageIdAsync(Remote remote, string identifier, CancellationToken ct)
    {
        var peer = remote.Peer;
        var answer = await Ec2CallAsync(remote, "DescribeImages", [new("Filter.1.Name", "manifest-location"), new("Filter.1.Value.1", identifier)], ct);
        var image = Ec2PeerClient.Items(answer, "imagesSet").FirstOrDefault()
            ?? throw new HypervisorException($"image {identifier} is not in the Marketplace of peer cloud {peer.Name} ({peer.Url}): no image there has it as its location " +
                                             "(DescribeImages, filter manifest-location); register its signed entry there (on a StratusLab peer: stratuslab upload-metadata " +
                                             "with --endpoint of the peer), or run the instance on another host");
        var imageId = Ec2PeerClient.Child(image, "imageId") ?? throw new HypervisorException($"peer cloud {peer.Name} listed image {identifier} without an imageId");
        if (Ec2PeerClient.Child(image, "imageState") is "failed" or "deregistered" or "error")
            throw new HypervisorException($"image {identifier} ({imageId}) is in state {Ec2PeerClient.Child(image, "imageState")} on peer cloud {peer.Name}; repair it there, or run the instance on another host");
        return imageId;
    }

    /// <summary>The peer's instance types, all pages.</summary>
    async Task<IReadOnlyList<(string Name, long Cpu, long MemoryMiB)>> Ec2InstanceTypesAsync(Remote remote, CancellationToken ct)
    {
        var types = new List<(string, long, long)>();
        string? next = null;
        do
        {
            IEnumerable<KeyValuePair<string, string>> parameters = next is null ? [] : [new("NextToken", next)];
            var answer = await Ec2CallAsync(remote, "DescribeInstanceTypes", parameters, ct);
            foreach (var item in Ec2PeerClient.Items(answer, "instanceTypeSet"))
            {
                var name = Ec2PeerClient.Child(item, "instanceType");
                var cpu = Ec2PeerClient.Text(item.Elements().FirstOrDefault(e => e.Name.LocalName == "vCpuInfo"), "defaultVCpus");
                var memory = Ec2PeerClient.Text(item.Elements().FirstOrDefault(e => e.Name.LocalName == "memoryInfo"), "sizeInMiB");
                if (name is not null && long.TryParse(cpu, CultureInfo.InvariantCulture, out var c) && long.TryParse(memory, CultureInfo.InvariantCulture, out var m))
                    types.Add((name, c, m));
            }
            next = answer.Root?.Elements().FirstOrDefault(e => e.Name.LocalName == "nextToken")?.Value is { Length: > 0 } token && token != next ? token : null;
        } while (next is not null);
        return types;
    }

    /// <summary>
    /// The instance's own type when the peer has it with enough CPUs and memory, else the peer's smallest type (memory,
    /// then CPUs) that holds the instance's CPUs and memory.
    /// </summary>
    async Task<string> Ec2InstanceTypeAsync(Remote remote, CancellationToken ct)
    {
        var row = remote.Row;
        var types = await Ec2InstanceTypesAsync(remote, ct);
        return PickInstanceType(types, row.InstanceType, row.Cpu, row.MemoryMib)
            ?? throw new HypervisorException($"no instance type of EC2 peer cloud {remote.Peer.Name} has {row.Cpu} CPU(s) and {row.MemoryMib} MiB" +
                                             (types.Count == 0 ? " (it lists none)" : $" (its largest: {string.Join(", ", types.OrderByDescending(t => t.MemoryMiB).Take(3).Select(t => $"{t.Name} {t.Cpu} CPU/{t.MemoryMiB} MiB"))})") +
                                             "; run a smaller instance, or on another host");
    }

    /// <summary>Pure choice of a peer's type (null: none fits).</summary>
    internal static string? PickInstanceType(IReadOnlyList<(string Name, long Cpu, long MemoryMiB)> types, string? wanted, long cpu, long memoryMiB)
    {
        var fitting = types.Where(t => t.Cpu >= cpu && t.MemoryMiB >= memoryMiB).ToList();
        if (wanted is not null && fitting.FirstOrDefault(t => string.Equals(t.Name, wanted, StringComparison.OrdinalIgnoreCase)) is { Name: not null } same) return same.Name;
        return fitting.OrderBy(t => t.MemoryMiB).ThenBy(t => t.Cpu).ThenBy(t => t.Name, StringComparer.Ordinal).Select(t => t.Name).FirstOrDefault();
    }

    /// <summary>
    /// The client token of the instance's launch on the peer: the same for every retry of one launch (so the peer answers
    /// a retry with the first launch's instance), a new one only once an earlier remote instance is gone.
    /// </summary>
    internal static string ClientToken(InstanceRow row) =>
        $"stratuslab-{row.Id.ToString(CultureInfo.InvariantCulture)}-{row.CreatedAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}" +
        (row.RemoteId is { } earlier ? "-after-" + earlier : "");

    async Task<VmStarted> Ec2StartAsync(Remote remote, CancellationToken ct)
    {
        var (row, peer) = (remote.Row, remote.Peer);
        if (row.RemoteId is { } existing && await Ec2FindAsync(remote, existing, ct) is { } there && Ec2State(there) is "stopped" or "stopping" or "running" or "pending")
        {
            if (Ec2State(there) is "stopped" or "stopping")
            {
                if (Ec2State(there) == "stopping") await Ec2WaitForAsync(remote, existing, "stopped", Ec2Wait, ct);
                await Ec2CallAsync(remote, "StartInstances", [new("InstanceId.1", existing)], ct);
            }
            var back = await Ec2WaitForAsync(remote, existing, "running", Ec2Wait, ct);
            await Ec2RecordAddressAsync(row, existing, back);
            return new VmStarted(null, $"peer {peer.Name} (ec2 {Ec2PeerClient.Child(back, "instanceType")})");
        }
        var imageId = await Ec2ImageIdAsync(remote, MarketplaceIdentifier(row), ct);
        var type = await Ec2InstanceTypeAsync(remote, ct);
        var parameters = new List<KeyValuePair<string, string>>
        {
            new("ImageId", imageId), new("InstanceType", type), new("MinCount", "1"), new("MaxCount", "1"), new("ClientToken", ClientToken(row)),
            new("TagSpecification.1.ResourceType", "instance"), new("TagSpecification.1.Tag.1.Key", "Name"), new("TagSpecification.1.Tag.1.Value", row.Name),
        };
        if (row.UserData is { Length: > 0 } userData) parameters.Add(new("UserData", Convert.ToBase64String(Encoding.UTF8.GetBytes(userData))));
        XDocument launched;
        try { launched = await ec2.CallAsync(remote.Ec2, "RunInstances", parameters, ct); }
        catch (PeerRefusedException e) { throw new HypervisorException($"EC2 peer cloud {peer.Name} refused RunInstances ({e.Status}): {e.Detail}"); }
        catch (PeerUnreachableException e)
        {
            // The peer may have launched it and only the answer was lost: it is found by its client token and terminated
            // once the peer answers again (nothing when that launch made nothing).
            await OweDeletionAsync(remote, ByClientToken(ClientToken(row)), $"its launch got no answer ({e.Message})");
            throw new HypervisorException($"peer cloud {peer.Name} does not answer: {e.Message}");
        }
        var remoteId = Ec2PeerClient.Items(launched, "instancesSet").Select(i => Ec2PeerClient.Child(i, "instanceId")).FirstOrDefault()
            ?? throw new HypervisorException($"EC2 peer cloud {peer.Name} answered RunInstances without an instance id");
        await store.SetRemoteAsync(row.Id, remoteId, null);
        logger.LogInformation("Instance {Id}: launched as {RemoteId} ({Type}, {Image}) on EC2 peer cloud {Peer}", row.Id, remoteId, type, imageId, peer.Name);
        try
        {
            var running = await Ec2WaitForAsync(remote, remoteId, "running", Ec2Wait, ct);
            await Ec2RecordAddressAsync(row, remoteId, running);
            return new VmStarted(null, $"peer {peer.Name} (ec2 {type})");
        }
        catch
        {
            // The caller's undo only covers a VM that started: one that failed to start on the peer is terminated there now.
            await TerminateQuietlyAsync(remote, remoteId);
            throw;
        }
    }

    /// <summary>The peer's Instance item, or null when the peer does not know the id (any more). Silence is <see cref="PeerUnreachableException"/>.</summary>
    async Task<XElement?> Ec2FindAsync(Remote remote, string remoteId, CancellationToken ct)
    {
        try
        {
            var answer = await ec2.CallAsync(remote.Ec2, "DescribeInstances", [new("InstanceId.1", remoteId)], ct);
            return Ec2PeerClient.Items(answer, "instancesSet").FirstOrDefault(i => Ec2PeerClient.Child(i, "instanceId") == remoteId);
        }
        catch (PeerRefusedException e) when (e.Code == "InvalidInstanceID.NotFound") { return null; }
        catch (PeerRefusedException e) { throw new HypervisorException($"EC2 peer cloud {remote.Peer.Name} refused to describe instance {remoteId} ({e.Status}): {e.Detail}"); }
    }

    const string ClientTokenPrefix = "client-token:";

    /// <summary>
    /// Stands for "the instance this client token launched, if any": a launch whose answer was lost (the peer went silent,
    /// or this server stopped before recording the i- id) is terminated by it, found again with DescribeInstances'
    /// client-token filter.
    /// </summary>
    static string ByClientToken(string token) => ClientTokenPrefix + token;

    /// <summary>The ids of the peer's instances launched with <paramref name="token"/> that are not terminated.</summary>
    async Task<IReadOnlyList<string>> Ec2FindByClientTokenAsync(PeerInfo peer, string token, CancellationToken ct)
    {
        var answer = await ec2.CallAsync(Ec2EndpointOf(peer), "DescribeInstances", [new("Filter.1.Name", "client-token"), new("Filter.1.Value.1", token)], ct);
        return Ec2PeerClient.Items(answer, "instancesSet").Where(i => Ec2State(i) != "terminated")
            .Select(i => Ec2PeerClient.Child(i, "instanceId")).OfType<string>().ToList();
    }

    static string Ec2State(XElement instance) =>
        Ec2PeerClient.Text(instance.Elements().FirstOrDefault(e => e.Name.LocalName == "instanceState"), "name") ?? "";

    async Task<VmPowerState> Ec2QueryAsync(Remote remote, string remoteId, CancellationToken ct)
    {
        XElement? there;
        try { there = await Ec2FindAsync(remote, remoteId, ct); }
        catch (PeerUnreachableException e)
        {
            throw new VmStateUnknownException($"peer cloud {remote.Peer.Name} does not answer ({e.Message})", e, hostDown: false);
        }
        if (there is null) return VmPowerState.Off;
        await Ec2RecordAddressAsync(remote.Row, remoteId, there);
        // shutting-down may still run (a guest shutdown on a StratusLab EC2 peer); the next pass sees it terminated.
        return Ec2State(there) is "pending" or "running" or "stopping" or "shutting-down" ? VmPowerState.Running : VmPowerState.Off;
    }

    async Task Ec2ShutdownAsync(Remote remote, string remoteId, TimeSpan timeout, CancellationToken ct)
    {
        if (await Ec2FindAsync(remote, remoteId, ct) is not { } there || Ec2State(there) is "stopped" or "terminated") return;
        if (Ec2State(there) is "stopping" or "shutting-down")
        {
            await Ec2WaitForAsync(remote, remoteId, "stopped", timeout + TimeSpan.FromSeconds(60), ct);
            return;
        }
        var parameters = new List<KeyValuePair<string, string>> { new("InstanceId.1", remoteId) };
        if (timeout <= TimeSpan.Zero) parameters.Add(new("Force", "true"));
        await Ec2CallAsync(remote, "StopInstances", parameters, ct);
        await Ec2WaitForAsync(remote, remoteId, "stopped", timeout + TimeSpan.FromSeconds(60), ct);
    }

    /// <summary>Polls DescribeInstances until the instance is in <paramref name="state"/>; terminated (or the time running out) is an error with the peer's reason.</summary>
    async Task<XElement> Ec2WaitForAsync(Remote remote, string remoteId, string state, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            XElement? there;
            try { there = await Ec2FindAsync(remote, remoteId, ct); }
            catch (PeerUnreachableException e) { throw new HypervisorException($"peer cloud {remote.Peer.Name} does not answer: {e.Message}"); }
            if (there is null) throw new HypervisorException($"EC2 peer cloud {remote.Peer.Name} no longer knows instance {remoteId} (waiting for {state})");
            var now = Ec2State(there);
            if (now == state) return there;
            if (now == "terminated")
            {
                var reason = Ec2PeerClient.Text(there.Elements().FirstOrDefault(e => e.Name.LocalName == "stateReason"), "message") ?? Ec2PeerClient.Child(there, "reason");
                throw new HypervisorException($"on EC2 peer cloud {remote.Peer.Name}, instance {remoteId} is {now}" + (string.IsNullOrEmpty(reason) ? "" : $": {reason}"));
            }
            if (DateTimeOffset.UtcNow >= deadline)
                throw new HypervisorException($"on EC2 peer cloud {remote.Peer.Name}, instance {remoteId} is still {now} after {timeout.TotalSeconds:0} s (waiting for {state})");
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
        }
    }

    /// <summary>The instance's public address there (ipAddress), else its private one, recorded when it changes.</summary>
    async Task Ec2RecordAddressAsync(InstanceRow row, string remoteId, XElement instance)
    {
        var address = Ec2PeerClient.Child(instance, "ipAddress") is { Length: > 0 } pub ? pub : Ec2PeerClient.Child(instance, "privateIpAddress");
        if (address is { Length: > 0 } && (address != row.RemoteAddress || remoteId != row.RemoteId)) await store.SetRemoteAsync(row.Id, remoteId, address);
    }
}
