using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>A forwarded port as the API shows it.</summary>
internal sealed record PortForwardView(int GuestPort, string HostAddress, int HostPort, string Protocol);

/// <summary>An instance as the API shows it; <c>nics</c> are its network interfaces (network, leased address, MAC) once it has them.</summary>
internal sealed record InstanceView(
    long Id, string Name, string Owner, string State, string? FailedStep, string? FailureReason, bool Ready,
    string Image, string? InstanceType, long Cpu, long MemoryMiB, string? Host, string Driver, string? Accelerator,
    IReadOnlyList<PortForwardView> PortForwards, IReadOnlyList<InstanceNic> Nics, IReadOnlyList<string> AllowedActions, string? SchedulingMessage,
    IReadOnlyDictionary<string, string> Context, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    DateTimeOffset? PlacedAt, DateTimeOffset? StartedAt, DateTimeOffset? ReadyAt, DateTimeOffset? EndedAt)
{
    /// <summary>With save: the identifier of the image the disk became at shutdown.</summary>
    public string? SavedImage { get; init; }
    public bool Save { get; init; }
    /// <summary>Uuids of the persistent volumes attached at boot (vdb, vdc, ...).</summary>
    public IReadOnlyList<string> Volumes { get; init; } = [];
    /// <summary>The user to log in as (the image's defaultUser), or null when the image does not say (root for the appliance).</summary>
    public string? LoginUser { get; init; }
    /// <summary>Seconds after RUNNING within which the guest had to become ready (null: no limit).</summary>
    public long? ReadyTimeoutSeconds { get; init; }
    /// <summary>True when the guest did not become ready within <see cref="ReadyTimeoutSeconds"/>; <see cref="NotReadyReason"/> says what to look at.</summary>
    public bool NotReady { get; init; }
    public string? NotReadyReason { get; init; }
    /// <summary>How the instance became ready (at readyAt): guest-api (the guest's report), phone-home (cloud-init's phone_home), ssh (its SSH port answered with a banner) or port (the request's readyPort answered).</summary>
    public string? ReadySource { get; init; }
    /// <summary>opennebula (CONTEXT CD, context.sh) or nocloud (cidata seed).</summary>
    public string ContextMethod { get; init; } = StratusLab.Server.Modules.Context.Contracts.ContextMethods.OpenNebula;
    /// <summary>The host name the guest is given.</summary>
    public string? Hostname { get; init; }
    /// <summary>The stored key pair whose public key the guest got, if any.</summary>
    public string? KeyName { get; init; }
    public int? ReadyPort { get; init; }
    /// <summary>The unique instance-id the guest sees (cloud-init's instance-id: VMID in context.sh, instance-id in meta-data).</summary>
    public string? InstanceUid { get; init; }
}

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
        };
    }

    public static Ownership OwnershipOf(InstanceRow row) => new(row.OwnerId, row.GroupId, new Permissions((int)row.Permissions));
}
