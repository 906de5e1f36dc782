using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Compute;

/// <summary>
/// Runs instances through their lifecycle: PROLOG (disk overlay, ports, context), BOOT, RUNNING, actions,
/// EPILOG; every failing step rolls back what it did and leaves the instance FAILED with the step and reason.
/// </summary>
public sealed partial class InstanceLifecycle(
    ComputeStore store,
    HypervisorRegistry drivers,
    IContextMedia contextMedia,
    IQuotaLedger quotas,
    GuestEndpoint guestEndpoint,
    InstanceEvents events,
    ICommandRunner runner,
    Scheduling.Contracts.IHostAllocations allocations,
    Marketplace.Contracts.IImagePolicy imagePolicy,
    IUserDirectory users,
    Images.Contracts.IImageCache images,
    Pdisk.Contracts.IVolumes volumes,
    Networking.Contracts.IInstanceNetworking networking,
    ServerOptions options,
    ILogger<InstanceLifecycle> logger) : BackgroundService
{
    public const string GuestTokenPrefix = "slg_";

    readonly Channel<long> _queue = Channel.CreateUnbounded<long>();
    readonly ConcurrentDictionary<long, CancellationTokenSource> _deploying = new();
    readonly ConcurrentDictionary<long, SemaphoreSlim> _locks = new();
    readonly SemaphoreSlim _slots = new(options.Compute.MaxConcurrentDeployments);
    CancellationToken _stopping = CancellationToken.None;

    /// <summary>Queues a PENDING instance for deployment.</summary>
    public void Enqueue(long id) => _queue.Writer.TryWrite(id);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        await foreach (var id in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            await _slots.WaitAsync(stoppingToken);
            _ = Task.Run(async () =>
            {
                try { await DeployAsync(id, stoppingToken); }
                catch (Exception e) { logger.LogError(e, "Deployment of instance {Id} crashed", id); }
                finally { _slots.Release(); }
            }, CancellationToken.None);
        }
    }

    SemaphoreSlim LockOf(long id) => _locks.GetOrAdd(id, _ => new SemaphoreSlim(1, 1));

    string InstanceDir(long id) => Path.Combine(options.DataDir, "instances", id.ToString(CultureInfo.InvariantCulture));

    async Task DeployAsync(long id, CancellationToken stopping)
    {
        var row = await store.GetAsync(id);
        if (row is null || row.StateValue != InstanceState.Pending) return;
        var driver = drivers.Get(row.Driver);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        cts.CancelAfter(TimeSpan.FromSeconds(options.Compute.BootTimeoutSeconds));
        _deploying[id] = cts;
        var step = InstanceState.Prolog;
        await using var undo = new UndoStack(logger);
        try
        {
            if (!await store.TransitionAsync(id, [InstanceState.Pending], InstanceState.Prolog))
                return;
            await PublishAsync(id);

            var spec = await PrologAsync(row, driver, undo, cts.Token);

            step = InstanceState.Boot;
            if (!await store.TransitionAsync(id, [InstanceState.Prolog], InstanceState.Boot)) throw new OperationCanceledException("terminated");
            await PublishAsync(id);
            // The simulated driver changes nothing on the host, so its NICs have no host side (taps, rules, DHCP).
            if (driver.UsesRealMedia) await networking.PreBootAsync(id, cts.Token);
            var started = await driver.StartAsync(spec, cts.Token);
            undo.Add("stop the VM", () => driver.KillAsync(new VmRef(id, spec.Directory, started.Pid), CancellationToken.None));
            if (!await store.TransitionAsync(id, [InstanceState.Boot], InstanceState.Running,
                    new { pid = started.Pid, accelerator = started.Accelerator, now = DateTimeOffset.UtcNow },
                    "pid = @pid, accelerator = @accelerator, started_at = @now"))
                throw new OperationCanceledException("terminated");
            if (driver.UsesRealMedia) await networking.PostBootAsync(id, cts.Token);
            undo.Commit();
            await PublishAsync(id);
        }
        catch (Exception e)
        {
            await undo.RollbackAsync();
            var current = await store.GetAsync(id);
            if (current?.StateValue == InstanceState.Epilog)
            {
                // Terminated while deploying: what PROLOG/BOOT made is undone; the instance just ends.
                await FinishAsync(id);
            }
            else
            {
                var reason = e switch
                {
                    OperationCanceledException when stopping.IsCancellationRequested => "the server stopped during " + StateName(step),
                    OperationCanceledException => $"not RUNNING within {options.Compute.BootTimeoutSeconds} s (Compute:BootTimeoutSeconds): the {row.Driver} driver did not answer",
                    _ => e.Message,
                };
                if (e is not (HypervisorException or ToolFailedException or ToolMissingException or OperationCanceledException or Networking.Contracts.NetworkUnavailableException or PolicyRefusedException or ImagePreparationException))
                    logger.LogError(e, "Instance {Id} failed in {Step}", id, step);
                await FailAsync(id, step, reason);
            }
        }
        finally
        {
            _deploying.TryRemove(id, out _);
        }
    }

    async Task<VmSpec> PrologAsync(InstanceRow row, IHypervisorDriver driver, UndoStack undo, CancellationToken ct)
    {
        var id = row.Id;
        await CheckImagePolicyAsync(row, ct);
        var dir = InstanceDir(id);
        var token = GuestTokenPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        await store.UpdateAsync(id, "guest_token_hash = @hash", new { hash = HashGuestToken(token) });
        undo.Add("revoke the guest token", () => store.UpdateAsync(id, "guest_token_hash = NULL", new { }));

        var admin = JsonSerializer.Deserialize<AdminAttributes>(row.AdminJson, Json) ?? new AdminAttributes();
        var nics = await networking.AllocateAsync(new Networking.Contracts.NicRequest(id, row.OwnerId,
            JsonSerializer.Deserialize<List<string>>(row.NetworksJson, Json) ?? [], JsonSerializer.Deserialize<List<int>>(row.ForwardPortsJson, Json) ?? [],
            admin.Mac, Simulated: !driver.UsesRealMedia), ct);
        undo.Add("release the network leases", () => networking.CleanAsync(id, CancellationToken.None));
        await store.UpdateAsync(id, "port_forwards_json = @forwards, nics_json = @nics", new
        {
            forwards = JsonSerializer.Serialize(nics.SelectMany(n => n.Forwards).Select(f => new PortForward(f.GuestPort, f.HostAddress, f.HostPort, f.Protocol)), Json),
            nics = JsonSerializer.Serialize(nics.Select(n => new InstanceNic(n.Index, n.Network, n.Ip, n.Mac)), Json),
        });

        string? iso = null;
        if (driver.UsesRealMedia)
        {
            Directory.CreateDirectory(dir);
            undo.Add("remove the instance directory", () => { DeleteDirectory(dir); return Task.CompletedTask; });
            await store.UpdateAsync(id, "vm_dir = @dir", new { dir });

            row = await PrepareBootDiskAsync(row, undo, ct);

            var media = await contextMedia.BuildAsync(new ContextRequest(dir, ContextVariablesOf(row, token, nics), row.UserData), ct);
            iso = media.IsoPath;
        }

        var spec = SpecOf(row, dir, nics, iso);
        await driver.PrologAsync(spec, ct);
        return spec;
    }

    /// <summary>
    /// The boot disk comes from the image cache: a LIVE copy-on-write snapshot of the cached ORIGIN (downloaded and
    /// verified once), or a user's persistent volume; Pdisk records the mount and quarantines a LIVE root disk at the end.
    /// </summary>
    async Task<InstanceRow> PrepareBootDiskAsync(InstanceRow row, UndoStack undo, CancellationToken ct)
    {
        var reference = ImageReferenceOf(row);
        Images.Contracts.BootDisk boot;
        try { boot = await images.PrepareBootDiskAsync(reference, row.OwnerId, ct); }
        catch (Images.Contracts.ImageUnavailableException e) { throw new ImagePreparationException(e.Message); }
        if (boot.QuarantineWhenReleased)
            undo.Add("remove the copy-on-write clone", () => volumes.DeleteAsync(boot.VolumeUuid, CancellationToken.None));
        Pdisk.Contracts.VolumeMountSummary mount;
        try
        {
            mount = await volumes.MountAsync(new Pdisk.Contracts.VolumeMountRequest(boot.VolumeUuid, row.Id, row.Host ?? "", "vda", false, boot.QuarantineWhenReleased), ct);
        }
        catch (Platform.Contracts.DomainException e) { throw new ImagePreparationException($"the boot disk could not be mounted: {e.Detail}"); }
        undo.Add("release the boot disk", () => volumes.ReleaseMountsAsync(row.Id, CancellationToken.None));
        var path = mount.Turl.StartsWith("file://", StringComparison.Ordinal) ? new Uri(mount.Turl).LocalPath : mount.Turl;
        var json = JsonSerializer.Serialize(new BootDiskRecord(boot.VolumeUuid, path, mount.Format, boot.CacheHit), Json);
        await store.UpdateAsync(row.Id, "boot_disk_json = @json", new { json });
        return (await store.GetAsync(row.Id))!;
    }

    /// <summary>StratusLab's --save: the powered-off disk becomes a new signed image; the instance shows its identifier.</summary>
    async Task SaveImageAsync(InstanceRow row, CancellationToken ct)
    {
        if (row.BootDiskJson is not { } json || JsonSerializer.Deserialize<BootDiskRecord>(json, Json) is not { } boot)
        {
            await store.UpdateAsync(row.Id, "failure_reason = @reason", new { reason = "save: the instance has no disk to save (simulated VMs without media)" });
            return;
        }
        var reference = ImageReferenceOf(row);
        var owner = await users.FindAsync(row.OwnerId, ct);
        try
        {
            var identifier = await images.SaveAsync(boot.Volume, reference.Kind == Images.Contracts.ImageSourceKind.Marketplace ? reference.Value : null,
                owner?.Name ?? "", row.Id, ct);
            await store.UpdateAsync(row.Id, "saved_image = @identifier", new { identifier });
        }
        catch (Exception e) when (e is Platform.Contracts.DomainException or ToolFailedException)
        {
            var reason = "save failed: " + e.Message;
            logger.LogWarning("Instance {Id}: {Reason}", row.Id, reason);
            await store.UpdateAsync(row.Id, "failure_reason = @reason", new { reason });
        }
    }

    static Images.Contracts.ImageReference ImageReferenceOf(InstanceRow row)
    {
        var text = row.ImageRef ?? throw new InvalidOperationException($"instance {row.Id} has no resolved image");
        var colon = text.IndexOf(':');
        return new Images.Contracts.ImageReference(Enum.Parse<Images.Contracts.ImageSourceKind>(text[..colon], ignoreCase: true), text[(colon + 1)..]);
    }

    /// <summary>The site image policy applies at every launch, cached image or not; a refusal is audited by the Marketplace.</summary>
    async Task CheckImagePolicyAsync(InstanceRow row, CancellationToken ct)
    {
        // URLs and persistent volumes are not Marketplace images; the policy judges Marketplace entries.
        var reference = ImageReferenceOf(row);
        if (reference.Kind != Images.Contracts.ImageSourceKind.Marketplace) return;
        var identifier = reference.Value;
        var owner = await users.FindAsync(row.OwnerId, ct);
        var caller = new Caller(row.OwnerId, owner?.Name ?? "", owner?.Role == "admin", row.GroupId, []);
        var decision = await imagePolicy.CheckLaunchAsync(identifier, caller, row.Id.ToString(CultureInfo.InvariantCulture), ct);
        if (!decision.Accepted)
            throw new PolicyRefusedException($"the site image policy refused image {identifier} (rule {decision.Rule}, from {decision.Source}): {decision.Reason}");
    }

    VmSpec SpecOf(InstanceRow row, string dir, IReadOnlyList<Networking.Contracts.NicPlan> nics, string? iso)
    {
        var admin = JsonSerializer.Deserialize<AdminAttributes>(row.AdminJson, Json) ?? new AdminAttributes();
        var boot = row.BootDiskJson is { } b ? JsonSerializer.Deserialize<BootDiskRecord>(b, Json) : null;
        return new VmSpec(row.Id, row.Name, dir, (int)row.Cpu, row.MemoryMib,
            boot is null ? [] : [new VmDisk(boot.Path, boot.Format)], iso,
            nics.Select(NicOf).ToList(),
            admin.RawQemuArguments ?? []);
    }

    /// <summary>A NIC from its lease: a tap on the network's bridge, or QEMU user-mode networking with the leased address as its DHCP address.</summary>
    static VmNic NicOf(Networking.Contracts.NicPlan nic) => nic.TapDevice is { } tap
        ? new VmNic(nic.Mac, []) { Tap = tap, Mtu = nic.Mtu }
        : new VmNic(nic.Mac, nic.Forwards.Select(f => new PortForward(f.GuestPort, f.HostAddress, f.HostPort, f.Protocol)).ToList())
        {
            Cidr = nic.Cidr, Host = nic.Gateway, Dns = nic.UserDns, GuestIp = nic.Ip, Mtu = nic.Mtu,
        };

    IReadOnlyList<KeyValuePair<string, string>> ContextVariablesOf(InstanceRow row, string token, IReadOnlyList<Networking.Contracts.NicPlan> nics)
    {
        var list = new List<KeyValuePair<string, string>> { new("HOSTNAME", row.Name) };
        // OpenNebula's ETHn_* variables, one set per NIC, from its lease.
        foreach (var nic in nics)
        {
            var eth = "ETH" + nic.Index.ToString(CultureInfo.InvariantCulture);
            list.Add(new(eth + "_IP", nic.Ip));
            list.Add(new(eth + "_MASK", nic.Mask));
            if (nic.Gateway is not null) list.Add(new(eth + "_GATEWAY", nic.Gateway));
            if (nic.Dns.Count > 0) list.Add(new(eth + "_DNS", string.Join(' ', nic.Dns)));
            list.Add(new(eth + "_MAC", nic.Mac));
            if (nic.Mtu is { } mtu) list.Add(new(eth + "_MTU", mtu.ToString(CultureInfo.InvariantCulture)));
        }
        var keys = JsonSerializer.Deserialize<List<string>>(row.SshKeysJson, Json) ?? [];
        if (keys.Count > 0) list.Add(new("SSH_PUBLIC_KEY", string.Join("\n", keys)));
        list.Add(new("STRATUSLAB_API", guestEndpoint.UrlVia(nics.Count > 0 ? nics[0].Gateway : null)));
        list.Add(new("STRATUSLAB_TOKEN", token));
        list.Add(new("STRATUSLAB_INSTANCE_ID", row.Id.ToString(CultureInfo.InvariantCulture)));
        foreach (var (k, v) in JsonSerializer.Deserialize<Dictionary<string, string>>(row.ContextJson, Json) ?? []) list.Add(new(k, v));
        return list;
    }

    /// <summary>Marks the instance FAILED at <paramref name="step"/> and gives its quota back; media were rolled back by the caller.</summary>
    async Task FailAsync(long id, InstanceState step, string reason)
    {
        logger.LogWarning("Instance {Id} FAILED in {Step}: {Reason}", id, StateName(step), reason);
        // Quota and capacity go back before the state changes, so whoever sees FAILED also sees them free.
        await ReleaseQuotaAsync(id);
        await allocations.ReleaseAsync(id);
        await store.UpdateAsync(id, "state = 'FAILED', failed_step = @step, failure_reason = @reason, pid = NULL, ready = 0",
            new { step = StateName(step), reason });
        await PublishAsync(id);
    }

    async Task FinishAsync(long id)
    {
        await ReleaseQuotaAsync(id);
        await allocations.ReleaseAsync(id);
        await store.UpdateAsync(id, "state = 'DONE', ended_at = @ended, pid = NULL, ready = 0, guest_token_hash = NULL",
            new { ended = DateTimeOffset.UtcNow });
        await PublishAsync(id);
        _locks.TryRemove(id, out _);
    }

    async Task ReleaseQuotaAsync(long id)
    {
        if (!await store.TakeQuotaHeldAsync(id)) return;
        var row = await store.GetAsync(id);
        if (row is not null) await quotas.ReleaseAsync(row.OwnerId, new ResourceAmount(1, row.Cpu, row.MemoryMib, 0));
    }

    public async Task SetSchedulingMessageAsync(long id, string message)
    {
        await store.UpdateAsync(id, "scheduling_message = @message", new { message });
        await PublishAsync(id);
    }

    /// <summary>A PENDING instance that no host took in time: FAILED, quota back.</summary>
    public async Task FailPendingAsync(long id, string reason)
    {
        if (!await store.TransitionAsync(id, [InstanceState.Pending], InstanceState.Epilog))
            return;
        logger.LogWarning("Instance {Id} FAILED while PENDING: {Reason}", id, reason);
        await ReleaseQuotaAsync(id);
        await allocations.ReleaseAsync(id);
        await store.UpdateAsync(id, "state = 'FAILED', failed_step = 'PENDING', failure_reason = @reason, scheduling_message = @reason", new { reason });
        await PublishAsync(id);
    }

    /// <summary>Removes everything an instance has on the host: VM, context ISO, overlay, directory, network leases and NICs, guest token.</summary>
    async Task CleanUpAsync(InstanceRow row, CancellationToken ct)
    {
        var driver = drivers.Get(row.Driver);
        try
        {
            await driver.KillAsync(new VmRef(row.Id, row.VmDir, (int?)row.Pid), ct);
        }
        catch (Exception e) when (e is HypervisorException or OperationCanceledException)
        {
            logger.LogWarning("Instance {Id}: stopping the VM failed during clean-up: {Error}", row.Id, e.Message);
        }
        // Volumes mounted in the VM are released before anything else, so they can be deleted right away.
        try { await volumes.ReleaseMountsAsync(row.Id, ct); }
        catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Instance {Id}: releasing its volumes failed", row.Id); }
        if (row.VmDir is not null) DeleteDirectory(row.VmDir);
        await networking.CleanAsync(row.Id, ct);
        await store.UpdateAsync(row.Id, "guest_token_hash = NULL, pid = NULL", new { });
    }

    static void DeleteDirectory(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    public static string HashGuestToken(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    static string StateName(InstanceState state) => InstanceStateMachine.Name(state);

    async Task PublishAsync(long id)
    {
        var row = await store.GetAsync(id);
        if (row is null) return;
        events.Publish(new InstanceEvent(row.Id, row.Name, row.State, row.Ready, row.FailedStep, row.FailureReason, DateTimeOffset.UtcNow)
        {
            Ownership = new Ownership(row.OwnerId, row.GroupId, new Permissions((int)row.Permissions)),
        });
    }

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
}

/// <summary>Restricted attributes only admins may set, stored with the instance.</summary>
public sealed record AdminAttributes(IReadOnlyList<string>? RawQemuArguments = null, string? Mac = null, string? Requirements = null, string? Policy = null);

/// <summary>Where an instance's boot disk is: the Pdisk volume, the path or URL QEMU opens, its format.</summary>
public sealed record BootDiskRecord(Guid Volume, string Path, string Format, bool CacheHit);

/// <summary>The image could not be made into a boot disk (download, checksum, quota...).</summary>
public sealed class ImagePreparationException(string message) : Exception(message);

/// <summary>The site image policy refused the image.</summary>
public sealed class PolicyRefusedException(string message) : Exception(message);

/// <summary>A NIC of an instance as its view shows it.</summary>
public sealed record InstanceNic(int Index, string Network, string Ip, string Mac);
