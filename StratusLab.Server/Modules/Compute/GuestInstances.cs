using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>The Compute side of the guest API: token lookup and the ready flag (guest KPIs go to Monitoring).</summary>
internal sealed class GuestInstances(ComputeStore store, InstanceEvents events) : IGuestInstances
{
    public async Task<GuestInstance?> FindByGuestTokenAsync(string token, CancellationToken ct = default)
    {
        if (!token.StartsWith(InstanceLifecycle.GuestTokenPrefix, StringComparison.Ordinal) || token.Length > 200) return null;
        var row = await store.FindByGuestTokenHashAsync(Platform.Security.TokenHash.Of(token));
        if (row is null || row.StateValue is InstanceState.Done or InstanceState.Failed or InstanceState.Epilog) return null;
        return new GuestInstance(row.Id, row.Name, row.Context);
    }

    public async Task MarkReadyAsync(long instanceId, string source = "guest-api", CancellationToken ct = default)
    {
        var row = await store.MarkReadyAsync(instanceId, source);
        if (row is not null)
            events.Publish(new InstanceEvent(row.Id, row.Name, row.State, row.Ready, row.FailedStep, row.FailureReason, DateTimeOffset.UtcNow)
            {
                Ownership = new Ownership(row.OwnerId, row.GroupId, new Permissions((int)row.Permissions)),
            });
    }
}
