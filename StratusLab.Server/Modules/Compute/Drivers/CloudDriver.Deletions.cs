using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// Terminations owed to peer clouds: an instance killed here while its peer was silent is DONE here at once, and its
/// instance there is recorded (compute_remote_deletions) and terminated when the peer answers again
/// (<see cref="Jobs.RemoteDeletionJob"/>), for both kinds of peer.
/// </summary>
internal sealed partial class CloudDriver
{
    async Task OweDeletionAsync(Remote remote, string remoteId, string reason)
    {
        await store.RecordRemoteDeletionAsync(remote.Peer.Name, remoteId, remote.Row.Id, reason);
        logger.LogWarning("Instance {Id}: instance {RemoteId} on peer cloud {Peer} is to be terminated when the peer answers again: {Reason}",
            remote.Row.Id, remoteId, remote.Peer.Name, reason);
    }

    /// <summary>Terminates <paramref name="remoteId"/> on the peer; one the peer no longer has (or is ending already) counts as done.</summary>
    async Task TerminateRemoteAsync(PeerInfo peer, string remoteId, CancellationToken ct)
    {
        if (peer.Kind == "ec2")
        {
            IReadOnlyList<string> ids = remoteId.StartsWith(ClientTokenPrefix, StringComparison.Ordinal)
                ? await Ec2FindByClientTokenAsync(peer, remoteId[ClientTokenPrefix.Length..], ct)
                : [remoteId];
            foreach (var id in ids)
            {
                try { await ec2.CallAsync(Ec2EndpointOf(peer), "TerminateInstances", [new("InstanceId.1", id)], ct); }
                catch (PeerRefusedException e) when (e.Code == "InvalidInstanceID.NotFound") { }
            }
            return;
        }
        try { await client.SendAsync(new PeerEndpoint(peer.Url, peer.Secret), HttpMethod.Delete, $"api/v1/instances/{remoteId}", null, ct); }
        catch (PeerRefusedException e) when (e.Status is 404 or 409) { }
    }

    /// <summary>One pass over the owed terminations: each of a peer that answers (OK, no missed probe) is tried now.</summary>
    public async Task RetryRemoteDeletionsAsync(CancellationToken ct)
    {
        foreach (var owed in await store.ListRemoteDeletionsAsync())
        {
            var peer = await peers.FindPeerAsync(owed.Host, ct);
            if (peer is null)
            {
                if (owed.LastError is null || !owed.LastError.StartsWith("host ", StringComparison.Ordinal))
                    await store.RemoteDeletionFailedAsync(owed.Id, $"host {owed.Host} is no longer a peer cloud of this server; terminate instance {owed.RemoteId} on that cloud by hand");
                continue;
            }
            if (peer.State != "OK" || peer.MissedProbes > 0) continue;
            try
            {
                await TerminateRemoteAsync(peer, owed.RemoteId, ct);
                await store.RemoteDeletionDoneAsync(owed.Id);
                logger.LogInformation("Instance {Id}: terminated instance {RemoteId} on peer cloud {Peer}, owed since {Since}", owed.InstanceId, owed.RemoteId, peer.Name, owed.CreatedAt);
            }
            catch (Exception e) when (e is PeerRefusedException or PeerUnreachableException)
            {
                await store.RemoteDeletionFailedAsync(owed.Id, e.Message);
                logger.LogWarning("Instance {Id}: terminating instance {RemoteId} on peer cloud {Peer} failed again (attempt {Attempt}): {Error}",
                    owed.InstanceId, owed.RemoteId, peer.Name, owed.Attempts + 1, e.Message);
            }
        }
    }
}

/// <summary>What each peer cloud host is still owed, for GET /hosts/{name} (Scheduling asks through its contract).</summary>
internal sealed class RemoteDeletionLedger(ComputeStore store) : IPendingRemoteDeletions
{
    public async Task<IReadOnlyList<PendingRemoteDeletion>> ListAsync(string host, CancellationToken ct = default) =>
        (await store.ListRemoteDeletionsAsync(host))
            .Select(d => new PendingRemoteDeletion(d.RemoteId, d.InstanceId, d.Reason, d.Attempts, d.LastError, d.CreatedAt, d.LastAttemptAt)).ToList();

    public async Task ForgetAsync(string host, CancellationToken ct = default) => await store.ForgetRemoteDeletionsAsync(host);
}
