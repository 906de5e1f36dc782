using System.Data;
using Dapper;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Compute;

/// <summary>One instance as stored; the JSON columns come back typed (see <see cref="ComputeStore.RegisterColumnTypes"/>).</summary>
internal sealed class InstanceRow
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public long OwnerId { get; init; }
    public long GroupId { get; init; }
    public long Permissions { get; init; }
    public string State { get; init; } = "";
    public string? FailedStep { get; init; }
    public string? FailureReason { get; init; }
    public bool Ready { get; init; }
    public string Image { get; init; } = "";
    /// <summary>The resolved image: marketplace:ID, url:URL or volume:UUID.</summary>
    public string? ImageRef { get; init; }
    public string? InstanceType { get; init; }
    public long Cpu { get; init; }
    public long MemoryMib { get; init; }
    public string? Host { get; init; }
    public string Driver { get; init; } = "";
    public string? Accelerator { get; init; }
    public IReadOnlyDictionary<string, string> Context { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> SshKeys { get; init; } = [];
    public string? UserData { get; init; }
    /// <summary>What the guest's context needs besides variables: method, hostname, key name, ready port, its unique id.</summary>
    public GuestOptions Guest { get; init; } = new();
    /// <summary>How the instance became ready: guest-api, phone-home, ssh or port.</summary>
    public string? ReadySource { get; init; }
    public AdminAttributes Admin { get; init; } = new();
    public IReadOnlyList<PortForward> PortForwards { get; init; } = [];
    /// <summary>The networks the request named (empty: the default network) and the extra guest ports to forward.</summary>
    public IReadOnlyList<string> Networks { get; init; } = [];
    public IReadOnlyList<int> ForwardPorts { get; init; } = [];
    /// <summary>Uuids of the persistent volumes attached at boot (vdb, vdc, ...).</summary>
    public IReadOnlyList<string> Volumes { get; init; } = [];
    /// <summary>The NICs the instance got in PROLOG.</summary>
    public IReadOnlyList<InstanceNic> Nics { get; init; } = [];
    public string? VmDir { get; init; }
    /// <summary>The boot disk QEMU opens (a Pdisk volume).</summary>
    public BootDiskRecord? BootDisk { get; init; }
    /// <summary>StratusLab's --save: on shutdown the disk becomes a new image.</summary>
    public bool SaveImage { get; init; }
    public string? SavedImage { get; init; }
    /// <summary>On a peer cloud (driver cloud): the peer's id for the instance, and its address there.</summary>
    public string? RemoteId { get; init; }
    public string? RemoteAddress { get; init; }
    public long? Pid { get; init; }
    public string? SchedulingMessage { get; init; }
    public bool QuotaHeld { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? PlacedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? ReadyAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    /// <summary>The user to log in as, from the image's entry (defaultUser).</summary>
    public string? LoginUser { get; init; }
    /// <summary>Seconds from RUNNING within which the guest must become ready, else it is flagged not ready (null: no limit).</summary>
    public long? ReadyTimeoutSeconds { get; init; }
    public bool NotReady { get; init; }
    public string? NotReadyReason { get; init; }

    public InstanceState StateValue => Enum.Parse<InstanceState>(State, ignoreCase: true);
}

/// <summary>Restricted attributes only admins may set, stored with the instance.</summary>
internal sealed record AdminAttributes(IReadOnlyList<string>? RawQemuArguments = null, string? Mac = null, string? Requirements = null, string? Policy = null);

/// <summary>
/// Per-instance guest settings from the request: the context method (null: the image's, else opennebula), the hostname
/// (null: the instance name), the key pair name used, the TCP port whose answer means ready, and the unique instance-id
/// the guest sees (VMID / meta-data instance-id), fixed at admission so it is stable across stop and start.
/// </summary>
internal sealed record GuestOptions(string? ContextMethod = null, string? Hostname = null, string? KeyName = null, int? ReadyPort = null, string? Uid = null);

/// <summary>Where an instance's boot disk is: the Pdisk volume, the path or URL QEMU opens, its format.</summary>
internal sealed record BootDiskRecord(Guid Volume, string Path, string Format, bool CacheHit)
{
    /// <summary>The host it was mounted for (null in records made before boot modes: the instance's host).</summary>
    public string? Host { get; init; }
    /// <summary>Copied to an SSH node's cache (boot mode cache) rather than opened where it is.</summary>
    public bool Staged { get; init; }
    /// <summary>For a clone a node opens over iSCSI: its backing volume's URL and format, given to QEMU instead of the header's path.</summary>
    public string? BackingPath { get; init; }
    public string? BackingFormat { get; init; }

    /// <summary>Opened by an SSH node over iSCSI from this machine (so it survives the node, and the node must be fenced off it).</summary>
    public bool OverIscsi => !Staged && Path.StartsWith("iscsi://", StringComparison.Ordinal);
}

/// <summary>A new instance to insert.</summary>
internal sealed record NewInstance(
    string? Name, long OwnerId, long GroupId, long Permissions, string Image, string? ImageRef, string? InstanceType,
    long Cpu, long MemoryMib, string Driver, IReadOnlyDictionary<string, string> Context, IReadOnlyList<string> SshKeys, string? UserData, AdminAttributes Admin,
    IReadOnlyList<string> Networks, IReadOnlyList<int> ForwardPorts, bool SaveImage = false)
{
    public GuestOptions Guest { get; init; } = new();
    /// <summary>Uuids of persistent volumes to attach at boot.</summary>
    public IReadOnlyList<string> Volumes { get; init; } = [];
    public string? LoginUser { get; init; }
    public long? ReadyTimeoutSeconds { get; init; }
}

/// <summary>What PROLOG made for an instance, recorded in one write once it is all there.</summary>
internal sealed record PrologRecord(string GuestTokenHash, IReadOnlyList<PortForward> PortForwards, IReadOnlyList<InstanceNic> Nics, string? VmDir, BootDiskRecord? BootDisk);

/// <summary>The owner and size of an instance whose quota was just given back.</summary>
internal sealed record HeldQuota(long OwnerId, long Cpu, long MemoryMib);

/// <summary>An instance on a peer cloud that ended here while the peer was silent: its termination there is still owed.</summary>
internal sealed class RemoteDeletionRow
{
    public long Id { get; init; }
    public string Host { get; init; } = "";
    public string RemoteId { get; init; } = "";
    public long InstanceId { get; init; }
    public string Reason { get; init; } = "";
    public long Attempts { get; init; }
    public string? LastError { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? LastAttemptAt { get; init; }
}

/// <summary>An instance type.</summary>
internal sealed record InstanceTypeRow(string Name, long Cpu, long MemoryMib, bool Builtin, DateTimeOffset CreatedAt)
{
    public InstanceTypeRow(string name, long cpu, long memoryMib, long builtin, string createdAt)
        : this(name, cpu, memoryMib, builtin != 0,
            DateTimeOffset.Parse(createdAt, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal)) { }
}

/// <summary>
/// The Compute module's SQL (tables compute_*). Every state change is guarded: "from S to T, only if the row is
/// still in S"; a method returns the row as it is after the change, or null when the instance was no longer in S
/// (a lost race the caller sees, never a silent overwrite).
/// </summary>
internal sealed class ComputeStore(Store store)
{
    const string Columns = """
        id AS Id, name AS Name, owner_id AS OwnerId, group_id AS GroupId, permissions AS Permissions, state AS State,
        failed_step AS FailedStep, failure_reason AS FailureReason, ready AS Ready, image AS Image, image_ref AS ImageRef,
        instance_type AS InstanceType, cpu AS Cpu, memory_mib AS MemoryMib, host AS Host, driver AS Driver, accelerator AS Accelerator,
        context_json AS Context, ssh_keys_json AS SshKeys, user_data AS UserData, guest_json AS Guest, ready_source AS ReadySource, admin_json AS Admin,
        port_forwards_json AS PortForwards, networks_json AS Networks, forward_ports_json AS ForwardPorts, volumes_json AS Volumes, nics_json AS Nics, vm_dir AS VmDir,
        boot_disk_json AS BootDisk, save_image AS SaveImage, saved_image AS SavedImage, pid AS Pid, scheduling_message AS SchedulingMessage,
        quota_held AS QuotaHeld, created_at AS CreatedAt, updated_at AS UpdatedAt, placed_at AS PlacedAt, started_at AS StartedAt, ready_at AS ReadyAt, ended_at AS EndedAt,
        login_user AS LoginUser, ready_timeout_seconds AS ReadyTimeoutSeconds, not_ready AS NotReady, not_ready_reason AS NotReadyReason,
        remote_id AS RemoteId, remote_address AS RemoteAddress
        """;

    /// <summary>Counts the store round trips of the current async flow (all modules' stores share the one store).</summary>
    public StoreRoundTrips CountRoundTrips() => store.CountRoundTrips();

    /// <summary>The JSON columns of compute_instances read and written as their types.</summary>
    public static void RegisterColumnTypes()
    {
        DapperTypes.AddJson<IReadOnlyDictionary<string, string>>();
        DapperTypes.AddJson<IReadOnlyList<PortForward>>();
        DapperTypes.AddJson<IReadOnlyList<InstanceNic>>();
        DapperTypes.AddJson<AdminAttributes>();
        DapperTypes.AddJson<GuestOptions>();
        DapperTypes.AddJson<BootDiskRecord>();
    }

    /// <summary>
    /// Inserts PENDING rows holding quota; <paramref name="reserve"/> takes that quota in the same transaction (all or
    /// nothing), and <paramref name="record"/> (a front door's own rows for them) runs last in it.
    /// </summary>
    public async Task<IReadOnlyList<InstanceRow>> InsertInstancesAsync(IReadOnlyList<NewInstance> instances, Func<IDbTransaction, Task> reserve, LaunchRecord? record = null)
    {
        return await store.WriteAsync(async (c, tx) =>
        {
            await reserve(tx);
            var rows = new List<InstanceRow>();
            var now = DateTimeOffset.UtcNow;
            for (var n = 0; n < instances.Count; n++)
            {
                var i = instances[n];
                var id = await c.ExecuteScalarAsync<long>("""
                    INSERT INTO compute_instances (name, owner_id, group_id, permissions, state, image, image_ref, instance_type, cpu, memory_mib,
                        driver, context_json, ssh_keys_json, user_data, guest_json, admin_json, networks_json, forward_ports_json, volumes_json, save_image, quota_held, created_at, updated_at,
                        login_user, ready_timeout_seconds)
                    VALUES ('', @OwnerId, @GroupId, @Permissions, 'PENDING', @Image, @ImageRef, @InstanceType, @Cpu, @MemoryMib,
                        @Driver, @Context, @SshKeys, @UserData, @Guest, @Admin, @Networks, @ForwardPorts, @Volumes, @SaveImage, 1, @now, @now,
                        @LoginUser, @ReadyTimeoutSeconds)
                    RETURNING id
                    """, new
                    {
                        i.OwnerId, i.GroupId, i.Permissions, i.Image, i.ImageRef, i.InstanceType, i.Cpu, i.MemoryMib, i.Driver,
                        i.Context, i.SshKeys, i.UserData, Guest = i.Guest with { Uid = i.Guest.Uid ?? NewUid() }, i.Admin, i.Networks, i.ForwardPorts, i.Volumes, i.SaveImage, now,
                        i.LoginUser, i.ReadyTimeoutSeconds,
                    }, tx);
                var row = await c.QuerySingleAsync<InstanceRow>($"UPDATE compute_instances SET name = @name WHERE id = @id RETURNING {Columns}",
                    new { id, name = i.Name is null ? $"vm-{id}" : instances.Count > 1 ? $"{i.Name}-{n + 1}" : i.Name }, tx);
                rows.Add(row);
            }
            if (record is not null) await record(tx, rows.Select(r => r.Id).ToList());
            return (IReadOnlyList<InstanceRow>)rows;
        });
    }

    public async Task<InstanceRow?> GetAsync(long id)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<InstanceRow>($"SELECT {Columns} FROM compute_instances WHERE id = @id", new { id });
    }

    /// <summary>The rows of those ids that exist, in no particular order.</summary>
    public async Task<IReadOnlyList<InstanceRow>> GetManyAsync(IReadOnlyCollection<long> ids)
    {
        var rows = new List<InstanceRow>();
        if (ids.Count == 0) return rows;
        await using var c = await store.OpenAsync();
        foreach (var chunk in ids.Distinct().Chunk(500))
            rows.AddRange(await c.QueryAsync<InstanceRow>($"SELECT {Columns} FROM compute_instances WHERE id IN @chunk", new { chunk }));
        return rows;
    }

    public async Task<InstanceRow?> FindByGuestTokenHashAsync(string hash)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<InstanceRow>($"SELECT {Columns} FROM compute_instances WHERE guest_token_hash = @hash", new { hash });
    }

    /// <summary>Instances in any of the states, optionally of one owner; others' visibility is filtered by the caller.</summary>
    public async Task<IReadOnlyList<InstanceRow>> ListAsync(IReadOnlyCollection<InstanceState>? states, long? ownerId, int limit = int.MaxValue, int offset = 0)
    {
        await using var c = await store.OpenAsync();
        var sql = $"SELECT {Columns} FROM compute_instances WHERE 1 = 1";
        if (states is { Count: > 0 }) sql += " AND state IN @states";
        if (ownerId is not null) sql += " AND owner_id = @ownerId";
        sql += " ORDER BY id LIMIT @limit OFFSET @offset";
        return (await c.QueryAsync<InstanceRow>(sql, new { states = states?.Select(Name).ToList(), ownerId, limit, offset })).AsList();
    }

    /// <summary>Instances that have not ended, and those that ended at or after <paramref name="endedSince"/> (for monitoring and accounting).</summary>
    public async Task<IReadOnlyList<InstanceRow>> ListForStatsAsync(DateTimeOffset endedSince)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<InstanceRow>($"""
            SELECT {Columns} FROM compute_instances
            WHERE state NOT IN ('DONE', 'FAILED') OR COALESCE(ended_at, updated_at) >= @endedSince ORDER BY id
            """, new { endedSince })).AsList();
    }

    /// <summary>Instance count per state name.</summary>
    public async Task<IReadOnlyDictionary<string, long>> CountByStateAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<(string State, long Count)>("SELECT state, count(*) FROM compute_instances GROUP BY state"))
            .ToDictionary(r => r.State, r => r.Count);
    }

    /// <summary>Ids of the instances that hold a host: placed and not yet DONE or FAILED.</summary>
    public async Task<IReadOnlyList<long>> ListPlacedIdsAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<long>("""
            SELECT id FROM compute_instances WHERE state IN ('PROLOG', 'BOOT', 'RUNNING', 'SHUTDOWN', 'STOPPED', 'SUSPENDED', 'EPILOG', 'UNKNOWN')
            """)).AsList();
    }

    /// <summary>PENDING → PENDING on a host: the scheduler chose it and reserved its capacity.</summary>
    public Task<InstanceRow?> PlaceAsync(long id, string host, string driver) =>
        ChangeAsync(id, [InstanceState.Pending], InstanceState.Pending,
            "host = @host, driver = @driver, scheduling_message = NULL, placed_at = @now", new { host, driver });

    /// <summary>A plain move from one of <paramref name="from"/> to <paramref name="to"/>.</summary>
    public Task<InstanceRow?> TransitionAsync(long id, IReadOnlyCollection<InstanceState> from, InstanceState to) =>
        ChangeAsync(id, from, to, null, null);

    /// <summary>PROLOG → BOOT, recording what PROLOG made (guest token, NICs and ports, VM directory, boot disk) in the same write.</summary>
    public Task<InstanceRow?> EnterBootAsync(long id, PrologRecord prolog) =>
        ChangeAsync(id, [InstanceState.Prolog], InstanceState.Boot,
            "guest_token_hash = @GuestTokenHash, port_forwards_json = @PortForwards, nics_json = @Nics, vm_dir = @VmDir, boot_disk_json = @BootDisk",
            new { prolog.GuestTokenHash, prolog.PortForwards, prolog.Nics, prolog.VmDir, prolog.BootDisk });

    /// <summary>BOOT → RUNNING: the hypervisor started the VM (a null pid or accelerator keeps the recorded one).</summary>
    public Task<InstanceRow?> MarkRunningAsync(long id, long? pid = null, string? accelerator = null) =>
        ChangeAsync(id, [InstanceState.Boot], InstanceState.Running,
            "pid = COALESCE(@pid, pid), accelerator = COALESCE(@accelerator, accelerator), started_at = COALESCE(@started, started_at), failure_reason = NULL",
            new { pid, accelerator, started = pid is null ? (DateTimeOffset?)null : DateTimeOffset.UtcNow });

    /// <summary>A new name (and the guest options, with the host name pinned) for an instance that has not ended.</summary>
    public Task<InstanceRow?> RenameAsync(long id, string name, GuestOptions guest) =>
        ChangeAsync(id, Enum.GetValues<InstanceState>().Where(s => s != InstanceState.Done).ToArray(), null, "name = @name, guest_json = @guest", new { name, guest });

    /// <summary>RUNNING (or SUSPENDED, for an evacuation) → STOPPED: powered off, disks and leases kept.</summary>
    public Task<InstanceRow?> MarkStoppedAsync(long id) =>
        ChangeAsync(id, [InstanceState.Running, InstanceState.Suspended], InstanceState.Stopped, "pid = NULL, ready = 0", null);

    /// <summary>RUNNING or SUSPENDED → UNKNOWN: its host does not answer; the reason is kept (prefixed "monitor: ").</summary>
    public Task<InstanceRow?> MarkUnknownAsync(long id, string reason) =>
        ChangeAsync(id, [InstanceState.Running, InstanceState.Suspended, InstanceState.Unknown], InstanceState.Unknown,
            "failure_reason = @reason", new { reason = "monitor: " + reason });

    /// <summary>UNKNOWN → RUNNING or SUSPENDED (what the host shows now): the VM answers again; the reason goes.</summary>
    public Task<InstanceRow?> MarkAnsweringAsync(long id, InstanceState now) =>
        ChangeAsync(id, [InstanceState.Unknown], now, "failure_reason = NULL", null);

    /// <summary>UNKNOWN → STOPPED: the VM's host is dead and was fenced off its disks (evacuation of a node that boots over iSCSI).</summary>
    public Task<InstanceRow?> MarkFencedAsync(long id, string reason) =>
        ChangeAsync(id, [InstanceState.Unknown], InstanceState.Stopped, "pid = NULL, ready = 0, failure_reason = @reason", new { reason });

    /// <summary>The boot disk as it is mounted now (after a move to another host).</summary>
    public async Task SetBootDiskAsync(long id, BootDiskRecord boot)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("UPDATE compute_instances SET boot_disk_json = @boot WHERE id = @id", new { id, boot });
    }

    /// <summary>A STOPPED instance moves to another host (evacuation); its capacity was moved there first.</summary>
    public Task<InstanceRow?> MoveStoppedAsync(long id, string host, string driver) =>
        ChangeAsync(id, [InstanceState.Stopped], null, "host = @host, driver = @driver, placed_at = @now", new { host, driver });

    /// <summary>Any live state → FAILED with the step and the reason; null when the instance had already ended.</summary>
    public Task<InstanceRow?> FailAsync(long id, string step, string reason) =>
        ChangeAsync(id, NonTerminal, InstanceState.Failed,
            "failed_step = @step, failure_reason = @reason, pid = NULL, ready = 0, guest_token_hash = NULL", new { step, reason });

    /// <summary>EPILOG → FAILED for an instance that no host took in time (taken out of PENDING first, so no deploy races it).</summary>
    public Task<InstanceRow?> FailUnplacedAsync(long id, string reason) =>
        ChangeAsync(id, [InstanceState.Epilog], InstanceState.Failed,
            "failed_step = 'PENDING', failure_reason = @reason, scheduling_message = @reason", new { reason });

    /// <summary>EPILOG → DONE: everything the instance had is gone.</summary>
    public Task<InstanceRow?> FinishAsync(long id) =>
        ChangeAsync(id, [InstanceState.Epilog], InstanceState.Done, "ended_at = @now, pid = NULL, ready = 0, guest_token_hash = NULL", null);

    /// <summary>Why no host fits, while the instance is still PENDING.</summary>
    public Task<InstanceRow?> SetSchedulingMessageAsync(long id, string message) =>
        ChangeAsync(id, [InstanceState.Pending], InstanceState.Pending, "scheduling_message = @message", new { message });

    /// <summary>The guest was seen ready by <paramref name="source"/> (guest-api, phone-home, ssh, port); the first sign's time and source are kept.</summary>
    public Task<InstanceRow?> MarkReadyAsync(long id, string source = "guest-api") =>
        ChangeAsync(id, [InstanceState.Boot, InstanceState.Running], null,
            "ready = 1, ready_source = CASE WHEN ready = 0 OR ready_source IS NULL THEN @source ELSE ready_source END, ready_at = CASE WHEN ready = 0 OR ready_at IS NULL THEN @now ELSE ready_at END",
            new { source });

    /// <summary>RUNNING instances not ready yet (what the readiness probe watches).</summary>
    public async Task<IReadOnlyList<InstanceRow>> ListRunningNotReadyAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<InstanceRow>($"SELECT {Columns} FROM compute_instances WHERE state = 'RUNNING' AND ready = 0")).AsList();
    }

    /// <summary>A unique instance-id for the guest (cloud-init runs per-instance modules once per id): never reused, even across servers.</summary>
    static string NewUid() => "i-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    /// <summary>After a reboot the guest has to report ready again.</summary>
    public Task<InstanceRow?> ClearReadyAsync(long id) =>
        ChangeAsync(id, [InstanceState.Running, InstanceState.Suspended], null, "ready = 0, ready_at = NULL, ready_source = NULL, failure_reason = NULL", null);

    /// <summary>RUNNING and still not ready past its ready timeout: flagged with the reason (once; a later ready report wins in the view).</summary>
    public Task<InstanceRow?> MarkNotReadyAsync(long id, string reason) =>
        ChangeAsync(id, [InstanceState.Running], null, "not_ready = 1, not_ready_reason = @reason", new { reason });

    /// <summary>RUNNING instances with a ready timeout that are neither ready nor flagged yet.</summary>
    public async Task<IReadOnlyList<InstanceRow>> ListAwaitingReadyAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<InstanceRow>($"""
            SELECT {Columns} FROM compute_instances
            WHERE state = 'RUNNING' AND ready = 0 AND not_ready = 0 AND ready_timeout_seconds IS NOT NULL
            """)).AsList();
    }

    /// <summary>Deletes DONE and FAILED instances that ended (or last changed) before <paramref name="before"/>; returns their ids.</summary>
    public async Task<IReadOnlyList<long>> DeleteEndedBeforeAsync(DateTimeOffset before)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<long>("""
            DELETE FROM compute_instances WHERE state IN ('DONE', 'FAILED') AND COALESCE(ended_at, updated_at) < @before RETURNING id
            """, new { before })).AsList();
    }

    /// <summary>Notes why an action failed (the instance stays in its state).</summary>
    public Task<InstanceRow?> SetFailureReasonAsync(long id, string reason) =>
        ChangeAsync(id, null, null, "failure_reason = @reason", new { reason });

    /// <summary>What the VM monitor says about a RUNNING or SUSPENDED VM, prefixed "monitor: "; null clears only such a note.</summary>
    public async Task<InstanceRow?> SetMonitorWarningAsync(long id, string? warning)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<InstanceRow>($"""
            UPDATE compute_instances SET failure_reason = @reason, updated_at = @now
            WHERE id = @id AND state IN ('RUNNING', 'SUSPENDED')
              AND (@reason IS NOT NULL OR failure_reason LIKE 'monitor: %')
              AND failure_reason IS NOT @reason
            RETURNING {Columns}
            """, new { id, reason = warning is null ? null : "monitor: " + warning, now = DateTimeOffset.UtcNow });
    }

    /// <summary>The identifier of the image saved from this instance's disk.</summary>
    public Task<InstanceRow?> SetSavedImageAsync(long id, string identifier) =>
        ChangeAsync(id, null, null, "saved_image = @identifier", new { identifier });

    /// <summary>Records the peer cloud's id for the instance and its address there (driver cloud).</summary>
    public Task<InstanceRow?> SetRemoteAsync(long id, string? remoteId, string? remoteAddress) =>
        ChangeAsync(id, null, null, "remote_id = @remoteId, remote_address = @remoteAddress", new { remoteId, remoteAddress });

    /// <summary>The VM and its guest token are gone (clean-up); the state is left to the caller.</summary>
    public Task<InstanceRow?> ClearVmAsync(long id) =>
        ChangeAsync(id, null, null, "guest_token_hash = NULL, pid = NULL", null);

    /// <summary>
    /// Clears quota_held and has <paramref name="release"/> give the amount back in the same transaction, exactly once:
    /// the usage and the row that justified it change together.
    /// </summary>
    public Task<HeldQuota?> ReleaseQuotaHeldAsync(long id, Func<IDbTransaction, HeldQuota, Task> release) =>
        store.WriteAsync(async (c, tx) =>
        {
            var held = await c.QuerySingleOrDefaultAsync<HeldQuota>("""
                UPDATE compute_instances SET quota_held = 0 WHERE id = @id AND quota_held = 1
                RETURNING owner_id AS OwnerId, cpu AS Cpu, memory_mib AS MemoryMib
                """, new { id }, tx);
            if (held is not null) await release(tx, held);
            return held;
        });

    static readonly InstanceState[] NonTerminal = Enum.GetValues<InstanceState>().Where(s => s is not (InstanceState.Done or InstanceState.Failed)).ToArray();

    static string Name(InstanceState state) => state.ToString().ToUpperInvariant();

    /// <summary>The one guarded UPDATE: only while the row is in one of <paramref name="from"/> (any state when null).</summary>
    async Task<InstanceRow?> ChangeAsync(long id, IReadOnlyCollection<InstanceState>? from, InstanceState? to, string? set, object? values)
    {
        await using var c = await store.OpenAsync();
        var parameters = new DynamicParameters(values);
        parameters.Add("id", id);
        parameters.Add("now", DateTimeOffset.UtcNow);
        parameters.Add("from", from?.Select(Name).ToList());
        parameters.Add("to", to is { } t ? Name(t) : null);
        var assignments = "updated_at = @now" + (to is null ? "" : ", state = @to") + (set is null ? "" : ", " + set);
        var guard = from is null ? "" : " AND state IN @from";
        return await c.QuerySingleOrDefaultAsync<InstanceRow>(
            $"UPDATE compute_instances SET {assignments} WHERE id = @id{guard} RETURNING {Columns}", parameters);
    }

    // ---- remote deletions owed to peer clouds -------------------------------------------------------------

    const string DeletionColumns = """
        id AS Id, host AS Host, remote_id AS RemoteId, instance_id AS InstanceId, reason AS Reason, attempts AS Attempts,
        last_error AS LastError, created_at AS CreatedAt, last_attempt_at AS LastAttemptAt
        """;

    /// <summary>Records that <paramref name="remoteId"/> on peer <paramref name="host"/> must still be terminated (once per remote instance).</summary>
    public async Task RecordRemoteDeletionAsync(string host, string remoteId, long instanceId, string reason)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("""
            INSERT INTO compute_remote_deletions (host, remote_id, instance_id, reason, created_at)
            VALUES (@host, @remoteId, @instanceId, @reason, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            ON CONFLICT (host, remote_id) DO UPDATE SET reason = excluded.reason
            """, new { host, remoteId, instanceId, reason });
    }

    /// <summary>The remote deletions still owed, oldest first; those of one host when <paramref name="host"/> is given.</summary>
    public async Task<IReadOnlyList<RemoteDeletionRow>> ListRemoteDeletionsAsync(string? host = null)
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<RemoteDeletionRow>($"""
            SELECT {DeletionColumns} FROM compute_remote_deletions WHERE @host IS NULL OR host = @host ORDER BY id
            """, new { host })).AsList();
    }

    public async Task RemoteDeletionFailedAsync(long id, string error)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("""
            UPDATE compute_remote_deletions SET attempts = attempts + 1, last_error = @error, last_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
            WHERE id = @id
            """, new { id, error });
    }

    public async Task ForgetRemoteDeletionsAsync(string host)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("DELETE FROM compute_remote_deletions WHERE host = @host", new { host });
    }

    public async Task RemoteDeletionDoneAsync(long id)
    {
        await using var c = await store.OpenAsync();
        await c.ExecuteAsync("DELETE FROM compute_remote_deletions WHERE id = @id", new { id });
    }

    public async Task<IReadOnlyList<InstanceTypeRow>> ListTypesAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<InstanceTypeRow>("""
            SELECT name AS Name, cpu AS Cpu, memory_mib AS MemoryMib, builtin AS Builtin, created_at AS CreatedAt
            FROM compute_instance_types ORDER BY memory_mib, cpu, name
            """)).AsList();
    }

    public async Task<bool> InsertTypeAsync(string name, long cpu, long memoryMib)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("""
            INSERT INTO compute_instance_types (name, cpu, memory_mib, builtin, created_at) VALUES (@name, @cpu, @memoryMib, 0, @now)
            ON CONFLICT (name) DO NOTHING
            """, new { name, cpu, memoryMib, now = DateTimeOffset.UtcNow }) == 1;
    }

    public async Task<int> DeleteTypeAsync(string name)
    {
        await using var c = await store.OpenAsync();
        return await c.ExecuteAsync("DELETE FROM compute_instance_types WHERE name = @name AND builtin = 0", new { name });
    }

    public async Task SetSimulatedVmAsync(long instanceId, string? state)
    {
        await using var c = await store.OpenAsync();
        if (state is null) await c.ExecuteAsync("DELETE FROM compute_simulated_vms WHERE instance_id = @instanceId", new { instanceId });
        else await c.ExecuteAsync("""
            INSERT INTO compute_simulated_vms (instance_id, state) VALUES (@instanceId, @state)
            ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state
            """, new { instanceId, state });
    }

    public async Task<string?> GetSimulatedVmAsync(long instanceId)
    {
        await using var c = await store.OpenAsync();
        return await c.QuerySingleOrDefaultAsync<string>("SELECT state FROM compute_simulated_vms WHERE instance_id = @instanceId", new { instanceId });
    }

    public async Task<IReadOnlyList<long>> ListSimulatedVmsAsync()
    {
        await using var c = await store.OpenAsync();
        return (await c.QueryAsync<long>("SELECT instance_id FROM compute_simulated_vms")).AsList();
    }
}
