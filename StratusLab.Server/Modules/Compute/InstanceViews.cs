using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>Builds API views of instances (owner names looked up once per call).</summary>
internal sealed class InstanceViews(IUserDirectory users)
{
    public async Task<IReadOnlyList<InstanceView>> ViewAsync(IEnumerable<InstanceRow> rows)
    {
        var names = new Dictionary<long, string>();
        var list = new List<InstanceView>();
        foreach (var row in rows)
        {
            if (!names.TryGetValue(row.OwnerId, out var owner))
                names[row.OwnerId] = owner = (await users.FindAsync(row.OwnerId))?.Name ?? $"#{row.OwnerId}";
            list.Add(View(row, owner));
        }
        return list;
    }

    public async Task<InstanceView> ViewAsync(InstanceRow row) => (await ViewAsync([row]))[0];

    static InstanceView View(InstanceRow r, string owner)
    {
        return new InstanceView(r.Id, r.Name, owner, r.State, r.FailedStep, r.FailureReason, r.Ready, r.Image, r.InstanceType, r.Cpu, r.MemoryMib,
            r.Host, r.Driver, r.Accelerator,
            r.StateValue is InstanceState.Done or InstanceState.Failed ? [] :
                r.PortForwards.Select(f => new PortForwardView(f.GuestPort, f.HostAddress, f.HostPort, f.Protocol)).ToList(),
            r.StateValue is InstanceState.Done or InstanceState.Failed ? [] :
                r.Nics,
            InstanceStateMachine.AllowedActions(r.StateValue).Select(InstanceStateMachine.Name).ToList(),
            r.SchedulingMessage, r.Context, r.CreatedAt, r.UpdatedAt, r.PlacedAt, r.StartedAt, r.ReadyAt, r.EndedAt)
        {
            SavedImage = r.SavedImage,
            Save = r.SaveImage,
            Volumes = r.Volumes,
            LoginUser = r.LoginUser,
            ReadyTimeoutSeconds = r.ReadyTimeoutSeconds,
            NotReady = r.NotReady && !r.Ready,
            NotReadyReason = r.NotReady && !r.Ready ? r.NotReadyReason : null,
            ReadySource = r.Ready ? r.ReadySource : null,
            ContextMethod = InstanceLifecycle.ContextMethodOf(r) == StratusLab.Server.Modules.Context.Contracts.ContextMethod.NoCloud ? StratusLab.Server.Modules.Context.Contracts.ContextMethods.NoCloud : StratusLab.Server.Modules.Context.Contracts.ContextMethods.OpenNebula,
            Hostname = InstanceLifecycle.HostnameOf(r),
            KeyName = r.Guest.KeyName,
            ReadyPort = r.Guest.ReadyPort,
            InstanceUid = r.Guest.Uid,
            SshKeys = r.SshKeys,
            RemoteId = r.RemoteId,
            RemoteAddress = r.StateValue is InstanceState.Done or InstanceState.Failed ? null : r.RemoteAddress,
        };
    }

    public static Ownership OwnershipOf(InstanceRow row) => new(row.OwnerId, row.GroupId, new Permissions((int)row.Permissions));
}
