using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Compute.Contracts;

/// <summary>
/// The lifecycle states of an instance (see API.md). <see cref="Unknown"/>: a RUNNING or SUSPENDED VM whose host does not
/// answer (an SSH node in ERROR after its missed probes, or QEMU silent past Compute:UnknownAfterSeconds); its capacity
/// stays held, and it goes back to RUNNING or SUSPENDED when the host answers, or FAILED when the VM turns out gone.
/// </summary>
public enum InstanceState { Pending, Prolog, Boot, Running, Shutdown, Stopped, Suspended, Epilog, Done, Failed, Unknown }

/// <summary>A forwarded port as the API shows it.</summary>
public sealed record PortForwardView(int GuestPort, string HostAddress, int HostPort, string Protocol);

/// <summary>A NIC of an instance as its view shows it.</summary>
public sealed record InstanceNic(int Index, string Network, string Ip, string Mac);

/// <summary>An instance as the API shows it; <c>nics</c> are its network interfaces (network, leased address, MAC) once it has them.</summary>
public sealed record InstanceView(
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
    /// <summary>The SSH public keys the guest was given (the request's sshKeys and the key pair's).</summary>
    public IReadOnlyList<string> SshKeys { get; init; } = [];
    /// <summary>On a peer cloud (host driver cloud): the peer's id for the instance (an i-... for an EC2 peer) and its address there.</summary>
    public string? RemoteId { get; init; }
    public string? RemoteAddress { get; init; }
}

/// <summary>
/// Body of POST /api/v1/instances: image (name or Marketplace identifier; empty for the default image), instanceType
/// or cpu + memoryMiB, name, networks (names, one NIC each; none: one NIC on the default network), forwardPorts (guest
/// ports forwarded besides Networking:PatGuestPorts), volumes (uuids of the caller's persistent volumes, attached at boot as
/// vdb, vdc, ...; to boot from a volume, give its uuid as image), context variables (KEY=value), sshKeys, userData,
/// count (1..the site maximum); admins only: rawQemuArguments, mac (of the first NIC), requirements, policy.
/// Cloud-init guests: contextMethod (opennebula: a CONTEXT CD with context.sh; nocloud: a cidata seed; when absent, the image's declared method, else opennebula), hostname
/// (default: the name), keyName (a stored key pair; with neither keyName nor sshKeys the caller's default key pair is used),
/// readyPort (a guest TCP port whose answer marks the instance ready, besides the guest API, phone_home and SSH).
/// </summary>
public sealed record CreateInstanceRequest(
    string? Image = null,
    string? InstanceType = null,
    int? Cpu = null,
    long? MemoryMiB = null,
    string? Name = null,
    IReadOnlyList<string>? Networks = null,
    IReadOnlyList<string>? Volumes = null,
    IReadOnlyDictionary<string, string>? Context = null,
    IReadOnlyList<string>? SshKeys = null,
    string? UserData = null,
    int? Count = null,
    string? Requirements = null,
    string? Policy = null,
    IReadOnlyList<string>? RawQemuArguments = null,
    string? Mac = null,
    bool Save = false,
    IReadOnlyList<int>? ForwardPorts = null,
    string? ContextMethod = null,
    string? Hostname = null,
    string? KeyName = null,
    int? ReadyPort = null)
{
    /// <summary>Seconds after RUNNING within which the guest must become ready, else the instance is flagged notReady (default Compute:ReadyTimeoutSeconds; 0: never).</summary>
    public int? ReadyTimeoutSeconds { get; init; }
}

/// <summary>
/// How an action is carried out. <see cref="Force"/>: stop powers the VM off at once (no ACPI request, no wait; the disk is
/// kept, writes the guest had not flushed are lost), reboot is the hardware reset it always is. <see cref="Graceful"/>: reboot
/// asks the guest to power off (ACPI, as stop does) and powers it on again, instead of a hardware reset. Other actions take neither.
/// </summary>
public sealed record InstanceActionOptions(bool Force = false, bool Graceful = false, bool Save = false);

/// <summary>A lifecycle change of an instance, as /api/v1/events and the dashboard stream it.</summary>
public sealed record InstanceChange(long Id, string Name, string State, bool Ready, string? FailedStep, string? FailureReason, DateTimeOffset Time);

/// <summary>An instance type as the API shows it.</summary>
public sealed record InstanceTypeView(string Name, long Cpu, long MemoryMiB, bool Builtin);

/// <summary>Which instances to list: by state names (RUNNING, ...) and ids, a page at a time. Admins see everyone's.</summary>
public sealed record InstanceQuery(IReadOnlyList<string>? States = null, IReadOnlyList<long>? Ids = null, int? Limit = null, int? Offset = null);

/// <summary>
/// What a front door writes in a launch's own transaction, once the instances' rows exist (their ids, in order): its own
/// ids for them, tags, an idempotency token. It commits with the instances and their quota, or nothing does; it must
/// only write the door's own tables on <paramref name="transaction"/>'s connection.
/// </summary>
public delegate Task LaunchRecord(System.Data.IDbTransaction transaction, IReadOnlyList<long> instanceIds);

/// <summary>
/// Compute's application service: every front door (REST, EC2, OCCI, web) launches, lists and acts on instances
/// through it, so permissions, quotas, the image policy and validation are the same everywhere. Another user's
/// instance is not found (NotFoundException); bad input is InvalidInputException; an action the state does not
/// allow is ConflictException (with the allowed actions in its extensions).
/// </summary>
public interface IInstances
{
    /// <summary>Admits a request (quota, policy, placement checks) and queues its instances (PENDING).</summary>
    Task<IReadOnlyList<InstanceView>> LaunchAsync(Caller caller, CreateInstanceRequest request, CancellationToken ct = default) =>
        LaunchAsync(caller, request, null, ct);

    /// <summary>As <see cref="LaunchAsync(Caller, CreateInstanceRequest, CancellationToken)"/>, with <paramref name="record"/> run in the launch's transaction.</summary>
    Task<IReadOnlyList<InstanceView>> LaunchAsync(Caller caller, CreateInstanceRequest request, LaunchRecord? record, CancellationToken ct = default);

    Task<IReadOnlyList<InstanceView>> ListAsync(Caller caller, InstanceQuery query, CancellationToken ct = default);

    Task<InstanceView> GetAsync(Caller caller, long id, CancellationToken ct = default);

    /// <summary>Terminates (whatever its state, but DONE); the view is the state right after.</summary>
    Task<InstanceView> TerminateAsync(Caller caller, long id, CancellationToken ct = default);

    /// <summary>Starts an action: stop, start, reboot, suspend, resume or shutdown.</summary>
    Task<InstanceView> ActAsync(Caller caller, long id, string action, CancellationToken ct = default);

    /// <summary>Starts an action carried out as <paramref name="options"/> say (force: stop without waiting for the guest; graceful: reboot through a guest power-off).</summary>
    Task<InstanceView> ActAsync(Caller caller, long id, string action, InstanceActionOptions options, CancellationToken ct = default);

    /// <summary>Renames an instance (any state but DONE; manage permission). The guest keeps the host name it was given.</summary>
    Task<InstanceView> RenameAsync(Caller caller, long id, string name, CancellationToken ct = default);

    Task<IReadOnlyList<InstanceTypeView>> ListTypesAsync(CancellationToken ct = default);

    /// <summary>
    /// The lifecycle changes of the instances the caller may see, from now until <paramref name="ct"/> is cancelled
    /// (a slow reader loses the oldest changes past 1,024, never blocks the server).
    /// </summary>
    IAsyncEnumerable<InstanceChange> WatchAsync(Caller caller, CancellationToken ct = default);

    /// <summary>The serial console log (the last <paramref name="tail"/> lines, or all that is kept).</summary>
    Task<string> ConsoleAsync(Caller caller, long id, int? tail, CancellationToken ct = default);

    /// <summary>
    /// Opens the instance's graphical console: a byte stream to its screen's RFB (VNC) server, which asks no password
    /// (security type None) because the caller is authorized here. Using the screen controls the machine, so it takes the
    /// right to manage the instance (another user's instance is NotFound, one the caller may only see is Forbidden). An
    /// instance that is not running, or whose driver has no screen (simulated), is a ConflictException saying why.
    /// The caller disposes the stream.
    /// </summary>
    Task<Stream> OpenGraphicalConsoleAsync(Caller caller, long id, CancellationToken ct = default);

    /// <summary>
    /// Opens the instance's serial port (the interactive console: a root shell on the test appliance), on this machine or on
    /// an SSH node. Typing there controls the machine, so it takes the right to manage the instance, as the graphical console
    /// does; a stopped instance, or one whose driver has no serial port (simulated, peer cloud), is a ConflictException
    /// saying why. The caller disposes the stream.
    /// </summary>
    Task<Stream> OpenSerialConsoleAsync(Caller caller, long id, CancellationToken ct = default);

    /// <summary>The user data the instance was launched with (null when none), for a caller who may see the instance (else NotFound).</summary>
    Task<string?> UserDataAsync(Caller caller, long id, CancellationToken ct = default);

    /// <summary>
    /// Admins: drains <paramref name="host"/> (it takes no new instances) and moves each of its instances to another host
    /// the scheduler chooses: a RUNNING or SUSPENDED one is stopped there and started on the new host from its boot disk, a
    /// STOPPED one just moves; one that cannot move (its host does not answer, it is between states, no other host fits)
    /// stays as it was, with the reason in the answer.
    /// </summary>
    Task<HostEvacuation> EvacuateHostAsync(Caller caller, string host, CancellationToken ct = default);
}

/// <summary>What evacuating a host did: one line per instance that was on it.</summary>
public sealed record HostEvacuation(string Host, IReadOnlyList<EvacuatedInstance> Instances)
{
    public int Moved => Instances.Count(i => i.MovedTo is not null);
    public int Refused => Instances.Count(i => i.MovedTo is null);
}

/// <summary>One instance of an evacuated host: where it went (and its state there), or why it stayed.</summary>
public sealed record EvacuatedInstance(long Id, string Name, string StateBefore, string State, string? MovedTo, string? Reason);
