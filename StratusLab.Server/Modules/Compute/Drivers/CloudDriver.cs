using System.Globalization;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// A VM on a peer cloud (host driver "cloud"): another StratusLab server through its REST API (kind stratuslab), or an
/// EC2 endpoint through the EC2 Query API (kind ec2, CloudDriver.Ec2.cs). Start creates the instance there with the image
/// of the same Marketplace identifier (the peer checks the entry again by its own policy); query maps the peer's state
/// to ours; stop, start, suspend, resume, reboot and kill pass through. The peer's id and the instance's address there
/// are recorded on the instance. A peer that does not answer leaves the VM's state unknown (UNKNOWN, re-attached when it
/// answers again), as for SSH nodes; a kill meanwhile ends the instance here and owes the peer its termination
/// (CloudDriver.Deletions.cs), retried until the peer confirms it.
/// </summary>
internal sealed partial class CloudDriver(ComputeStore store, IPeerDirectory peers, PeerClient client, Ec2PeerClient ec2, ILogger<CloudDriver> logger) : IHypervisorDriver
{
    /// <summary>The longest a peer's long-poll (GET instances/{id}/wait) is asked to wait at once.</summary>
    const int PollSeconds = 20;

    public string Name => "cloud";
    public bool UsesRealMedia => false;

    sealed record Remote(InstanceRow Row, PeerInfo Peer, PeerEndpoint Endpoint)
    {
        public bool IsEc2 => Peer.Kind == "ec2";
        public Ec2PeerEndpoint Ec2 => Ec2EndpointOf(Peer);
    }

    static Ec2PeerEndpoint Ec2EndpointOf(PeerInfo peer) => new(peer.Url, peer.KeyId ?? "", peer.Secret, peer.Region ?? "us-east-1");

    async Task<Remote> RemoteOfAsync(long instanceId, CancellationToken ct)
    {
        var row = await store.GetAsync(instanceId) ?? throw new HypervisorException($"instance {instanceId} does not exist");
        if (row.Host is null) throw new HypervisorException($"instance {instanceId} is not placed on a host");
        var peer = await peers.FindPeerAsync(row.Host, ct) ?? throw new HypervisorException($"host {row.Host} of instance {instanceId} is not a peer cloud");
        if (peer.Kind is not ("stratuslab" or "ec2"))
            throw new HypervisorException($"peer cloud {peer.Name} is of kind {peer.Kind}; this server starts instances on peers of kind stratuslab or ec2");
        return new Remote(row, peer, new PeerEndpoint(peer.Url, peer.Secret));
    }

    static string MarketplaceIdentifier(InstanceRow row)
    {
        var reference = row.ImageRef ?? "";
        if (!reference.StartsWith("marketplace:", StringComparison.Ordinal))
            throw new HypervisorException($"image {row.Image} is not a Marketplace entry ({reference.Split(':')[0]}); only Marketplace images run on peer clouds, found there by their identifier");
        return reference["marketplace:".Length..];
    }

    /// <summary>The peer must be OK, the request must need nothing that stays on this site, and the peer's Marketplace must hold the image.</summary>
    public async Task PrologAsync(VmSpec spec, CancellationToken ct)
    {
        var remote = await RemoteOfAsync(spec.InstanceId, ct);
        var (row, peer) = (remote.Row, remote.Peer);
        if (peer.State != "OK") throw new HypervisorException($"peer cloud {peer.Name} is in state {peer.State}: {peer.Reason}");
        if (row.Volumes.Count > 0)
            throw new HypervisorException($"persistent volumes stay on this site and cannot follow an instance to peer cloud {peer.Name}; start it without volumes, or on a local host");
        var identifier = MarketplaceIdentifier(row);
        if (remote.IsEc2)
        {
            await Ec2ImageIdAsync(remote, identifier, ct);
            await Ec2InstanceTypeAsync(remote, ct);
            return;
        }
        try { await client.GetAsync(remote.Endpoint, $"api/v1/marketplace/metadata/{Uri.EscapeDataString(identifier)}", ct); }
        catch (PeerRefusedException e) when (e.Status == 404)
        {
            throw new HypervisorException($"image {identifier} is not in the Marketplace of peer cloud {peer.Name} ({peer.Url}): upload its signed entry there (stratuslab upload-metadata with --endpoint {peer.Url}), or run the instance on another host");
        }
        catch (PeerRefusedException e) { throw new HypervisorException($"peer cloud {peer.Name} refused to show image {identifier} ({e.Status}): {e.Detail}"); }
        catch (PeerUnreachableException e) { throw new HypervisorException($"peer cloud {peer.Name} does not answer: {e.Message}"); }
    }

    /// <summary>Creates the instance on the peer (or, after a stop, starts it again there) and waits until it runs there.</summary>
    public async Task<VmStarted> StartAsync(VmSpec spec, CancellationToken ct)
    {
        var remote = await RemoteOfAsync(spec.InstanceId, ct);
        if (remote.IsEc2) return await Ec2StartAsync(remote, ct);
        var (row, peer) = (remote.Row, remote.Peer);
        if (row.RemoteId is { } existing && await FindAsync(remote, existing, ct) is { } there && State(there) is "STOPPED" or "RUNNING")
        {
            if (State(there) == "STOPPED") await ActAsync(remote, existing, "start", ct);
            var back = await WaitForAsync(remote, existing, "RUNNING", TimeSpan.FromMinutes(10), ct);
            await RecordAddressAsync(row, back);
            return new VmStarted(null, AcceleratorOf(peer, back));
        }
        var identifier = MarketplaceIdentifier(row);
        var body = new Dictionary<string, object?>
        {
            ["image"] = identifier,
            ["cpu"] = (int)row.Cpu,
            ["memoryMiB"] = row.MemoryMib,
            ["name"] = row.Name,
            ["sshKeys"] = row.SshKeys.Count == 0 ? null : row.SshKeys,
            ["userData"] = row.UserData,
            ["context"] = row.Context.Count == 0 ? null : row.Context,
        };
        JsonNode created;
        try { created = await client.SendAsync(remote.Endpoint, HttpMethod.Post, "api/v1/instances", body, ct) ?? throw new HypervisorException($"peer cloud {peer.Name} answered the launch with no body"); }
        catch (PeerRefusedException e) { throw new HypervisorException($"peer cloud {peer.Name} refused the instance ({e.Status}): {e.Detail}"); }
        catch (PeerUnreachableException e) { throw new HypervisorException($"peer cloud {peer.Name} does not answer: {e.Message}"); }
        var remoteId = created["id"]?.ToString() ?? throw new HypervisorException($"peer cloud {peer.Name} answered the launch without an instance id");
        await store.SetRemoteAsync(row.Id, remoteId, null);
        logger.LogInformation("Instance {Id}: created as instance {RemoteId} on peer cloud {Peer}", row.Id, remoteId, peer.Name);
        try
        {
            var running = await WaitForAsync(remote, remoteId, "RUNNING", TimeSpan.FromMinutes(10), ct);
            await RecordAddressAsync(row, running, remoteId);
            return new VmStarted(null, AcceleratorOf(peer, running));
        }
        catch
        {
            // The caller's undo only covers a VM that started: one that failed to start on the peer is terminated there now.
            await TerminateQuietlyAsync(remote, remoteId);
            throw;
        }
    }

    public async Task<VmPowerState> QueryAsync(VmRef vm, CancellationToken ct)
    {
        var remote = await RemoteOfAsync(vm.InstanceId, ct);
        var (row, peer) = (remote.Row, remote.Peer);
        if (row.RemoteId is not { } remoteId) return VmPowerState.Off;
        if (peer.State != "OK" && peer.MissedProbes > 0)
            throw new VmStateUnknownException($"peer cloud {peer.Name} is in ERROR ({peer.Reason}); the instance is re-attached if it still runs there when the peer answers again");
        if (remote.IsEc2) return await Ec2QueryAsync(remote, remoteId, ct);
        JsonNode? there;
        try { there = await FindAsync(remote, remoteId, ct); }
        catch (PeerUnreachableException e)
        {
            throw new VmStateUnknownException($"peer cloud {peer.Name} does not answer ({e.Message})", e, hostDown: false);
        }
        if (there is null) return VmPowerState.Off;
        await RecordAddressAsync(row, there);
        return State(there) switch
        {
            "RUNNING" or "PENDING" or "PROLOG" or "BOOT" or "SHUTDOWN" => VmPowerState.Running,
            "SUSPENDED" => VmPowerState.Paused,
            "UNKNOWN" => throw new VmStateUnknownException($"peer cloud {peer.Name} does not know the state of instance {remoteId} either: {there["failureReason"]}", hostDown: false),
            _ => VmPowerState.Off,
        };
    }

    /// <summary>A stop on the peer (forced with a zero timeout); the instance stays there, powered off, until killed.</summary>
    public async Task ShutdownAsync(VmRef vm, TimeSpan timeout, CancellationToken ct)
    {
        var remote = await RemoteOfAsync(vm.InstanceId, ct);
        if (remote.Row.RemoteId is not { } remoteId) return;
        if (remote.IsEc2)
        {
            await Ec2ShutdownAsync(remote, remoteId, timeout, ct);
            return;
        }
        if (await FindAsync(remote, remoteId, ct) is not { } there || State(there) is "STOPPED" or "DONE" or "FAILED") return;
        await ActAsync(remote, remoteId, timeout <= TimeSpan.Zero ? "stop?force=true" : "stop", ct);
        await WaitForAsync(remote, remoteId, "STOPPED", timeout + TimeSpan.FromSeconds(60), ct);
    }

    /// <summary>
    /// Terminates the instance on the peer (nothing to do when it is gone there already). A peer that is silent (ERROR, or
    /// no answer now) does not keep the instance alive here: the termination is recorded as owed and retried when the
    /// peer answers again, so the local instance still ends.
    /// </summary>
    public async Task KillAsync(VmRef vm, CancellationToken ct)
    {
        var row = await store.GetAsync(vm.InstanceId);
        if (row is null) return;
        var remote = await RemoteOfAsync(vm.InstanceId, ct);
        // No remote id recorded: the server may have stopped between the peer's answer to the launch and its record here.
        // An EC2 launch is found again by its client token; a StratusLab peer's launch has nothing to find it by.
        if (row.RemoteId is not { } remoteId)
        {
            if (!remote.IsEc2 || row.StateValue != Contracts.InstanceState.Boot) return;
            remoteId = ByClientToken(ClientToken(row));
        }
        var peer = remote.Peer;
        if (peer.State != "OK" && peer.MissedProbes > 0)
        {
            await OweDeletionAsync(remote, remoteId, $"killed while the peer was in {peer.State} ({peer.Reason})");
            return;
        }
        try
        {
            await TerminateRemoteAsync(peer, remoteId, ct);
            logger.LogInformation("Instance {Id}: terminated instance {RemoteId} on peer cloud {Peer}", row.Id, remoteId, peer.Name);
        }
        catch (PeerRefusedException e) { throw new HypervisorException($"peer cloud {peer.Name} refused to terminate instance {remoteId} ({e.Status}): {e.Detail}"); }
        catch (PeerUnreachableException e) { await OweDeletionAsync(remote, remoteId, $"killed while the peer did not answer ({e.Message})"); }
    }

    public async Task PauseAsync(VmRef vm, CancellationToken ct) => await PassAsync(vm, "suspend", "SUSPENDED", ct);

    public async Task ResumeAsync(VmRef vm, CancellationToken ct) => await PassAsync(vm, "resume", "RUNNING", ct);

    public async Task ResetAsync(VmRef vm, CancellationToken ct)
    {
        var remote = await RemoteOfAsync(vm.InstanceId, ct);
        if (remote.IsEc2)
        {
            await Ec2CallAsync(remote, "RebootInstances", [new("InstanceId.1", remote.Row.RemoteId ?? throw NotThere(remote))], ct);
            return;
        }
        await ActAsync(remote, remote.Row.RemoteId ?? throw NotThere(remote), "reboot", ct);
    }

    async Task PassAsync(VmRef vm, string action, string state, CancellationToken ct)
    {
        var remote = await RemoteOfAsync(vm.InstanceId, ct);
        if (remote.IsEc2)
            throw new HypervisorException($"EC2 has no {action}: instance {remote.Row.Id} runs on EC2 peer cloud {remote.Peer.Name}; stop it instead (its disk is kept there), and start it again later");
        var remoteId = remote.Row.RemoteId ?? throw NotThere(remote);
        await ActAsync(remote, remoteId, action, ct);
        await WaitForAsync(remote, remoteId, state, TimeSpan.FromMinutes(5), ct);
    }

    static HypervisorException NotThere(Remote remote) =>
        new($"instance {remote.Row.Id} has no instance on peer cloud {remote.Peer.Name} yet");

    public Task AttachDiskAsync(VmRef vm, HotDisk disk, CancellationToken ct) =>
        throw new HypervisorException("persistent volumes stay on this site and cannot be attached to an instance on a peer cloud");

    public Task DetachDiskAsync(VmRef vm, string deviceId, CancellationToken ct) =>
        throw new HypervisorException("instances on a peer cloud have no volumes of this site attached");

    public Task<Contracts.InstanceCounters?> StatsAsync(VmRef vm, VmStatsRequest request, CancellationToken ct) => Task.FromResult<Contracts.InstanceCounters?>(null);

    public Task<Stream> OpenGraphicalConsoleAsync(VmRef vm, CancellationToken ct) =>
        throw new NoConsoleException($"instance {vm.InstanceId} runs on a peer cloud; open its console on the peer (its remoteId there)");

    /// <summary>A peer's instances are not found by looking at this machine; those of ended instances were terminated on the way out.</summary>
    public Task<IReadOnlyList<VmRef>> ListRunningAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<VmRef>>([]);

    /// <summary>The peer's view of the instance, or null when the peer no longer has it.</summary>
    async Task<JsonNode?> FindAsync(Remote remote, string remoteId, CancellationToken ct)
    {
        try { return await client.GetAsync(remote.Endpoint, $"api/v1/instances/{remoteId}", ct); }
        catch (PeerRefusedException e) when (e.Status == 404) { return null; }
        catch (PeerRefusedException e) { throw new HypervisorException($"peer cloud {remote.Peer.Name} refused to show instance {remoteId} ({e.Status}): {e.Detail}"); }
    }

    async Task ActAsync(Remote remote, string remoteId, string action, CancellationToken ct)
    {
        try { await client.SendAsync(remote.Endpoint, HttpMethod.Post, $"api/v1/instances/{remoteId}/actions/{action}", null, ct); }
        catch (PeerRefusedException e) { throw new HypervisorException($"peer cloud {remote.Peer.Name} refused {action.Split('?')[0]} of instance {remoteId} ({e.Status}): {e.Detail}"); }
        catch (PeerUnreachableException e) { throw new HypervisorException($"peer cloud {remote.Peer.Name} does not answer: {e.Message}"); }
    }

    /// <summary>Long-polls the peer until the instance is in <paramref name="state"/>; FAILED or DONE there (or the time running out) is an error with the peer's reason.</summary>
    async Task<JsonNode> WaitForAsync(Remote remote, string remoteId, string state, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        var peer = remote.Peer;
        while (true)
        {
            var left = (int)Math.Clamp((deadline - DateTimeOffset.UtcNow).TotalSeconds, 0, PollSeconds);
            JsonNode? there;
            try
            {
                there = await client.GetAsync(remote.Endpoint, $"api/v1/instances/{remoteId}/wait?state={state}&timeout={left.ToString(CultureInfo.InvariantCulture)}", ct,
                    TimeSpan.FromSeconds(left + 15));
            }
            catch (PeerRefusedException e) { throw new HypervisorException($"peer cloud {peer.Name} refused to show instance {remoteId} ({e.Status}): {e.Detail}"); }
            catch (PeerUnreachableException e) { throw new HypervisorException($"peer cloud {peer.Name} does not answer: {e.Message}"); }
            var now = State(there);
            if (now == state) return there!;
            if (now is "FAILED" or "DONE")
                throw new HypervisorException($"on peer cloud {peer.Name}, instance {remoteId} is {now}" +
                    (there?["failedStep"] is { } step ? $" in {step}" : "") + (there?["failureReason"] is { } why ? $": {why}" : ""));
            if (DateTimeOffset.UtcNow >= deadline)
                throw new HypervisorException($"on peer cloud {peer.Name}, instance {remoteId} is still {now} after {timeout.TotalSeconds:0} s (waiting for {state})");
        }
    }

    static string State(JsonNode? view) => view?["state"]?.ToString() ?? "";

    static string AcceleratorOf(PeerInfo peer, JsonNode view) =>
        $"peer {peer.Name}" + (view["accelerator"]?.ToString() is { Length: > 0 } accelerator ? $" ({accelerator})" : "");

    /// <summary>The first NIC's address on the peer, recorded when it changes.</summary>
    async Task RecordAddressAsync(InstanceRow row, JsonNode view, string? remoteId = null)
    {
        var address = view["nics"]?.AsArray().FirstOrDefault()?["ip"]?.ToString();
        if (address is not null && address != row.RemoteAddress) await store.SetRemoteAsync(row.Id, remoteId ?? row.RemoteId, address);
    }

    async Task TerminateQuietlyAsync(Remote remote, string remoteId)
    {
        try { await TerminateRemoteAsync(remote.Peer, remoteId, CancellationToken.None); }
        catch (Exception e) when (e is PeerRefusedException or PeerUnreachableException)
        {
            logger.LogWarning("Instance {Id}: terminating instance {RemoteId} on peer cloud {Peer} failed: {Error}", remote.Row.Id, remoteId, remote.Peer.Name, e.Message);
            await OweDeletionAsync(remote, remoteId, $"its start failed and terminating it then failed ({e.Message})");
        }
    }
}
