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
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Compute;

/// <summary>
/// Runs instances through their lifecycle: PROLOG (disk overlay, ports, context), BOOT, RUNNING, actions,
/// EPILOG; every failing step rolls back what it did and leaves the instance FAILED with the step and reason.
/// </summary>
internal sealed partial class InstanceLifecycle(
    ComputeStore store,
    IServiceProvider services,
    IEnumerable<IHypervisorDriver> allDrivers,
    IContextMedia contextMedia,
    IQuotaLedger quotas,
    GuestApiAddress guestApi,
    InstanceEvents events,
    Scheduling.Contracts.IHostAllocations allocations,
    Marketplace.Contracts.IImagePolicy imagePolicy,
    IUserDirectory users,
    Images.Contracts.IImageCache images,
    Pdisk.Contracts.IVolumes volumes,
    Networking.Contracts.IInstanceNetworking networking,
    ServerOptions options,
    ComputeOptions compute,
    Console.ConsoleLogs consoles,
    Scheduling.Contracts.INodeDirectory nodes,
    ILogger<InstanceLifecycle> logger) : BackgroundService
{
    public const string GuestTokenPrefix = "slg_";

    readonly Channel<long> _queue = Channel.CreateUnbounded<long>();
    readonly ConcurrentDictionary<long, CancellationTokenSource> _deploying = new();
    readonly ConcurrentDictionary<long, SemaphoreSlim> _locks = new();
    readonly ConcurrentDictionary<long, byte> _resuming = new();
    readonly SemaphoreSlim _slots = new(compute.MaxConcurrentDeployments);
    // Instances a deployment or an EPILOG is working on now (a count: the same id may be queued twice); see RecoverStrandedAsync.
    readonly ConcurrentDictionary<long, int> _working = new();
    // Failures a deployment could not record (the store refused the write: disk full); the recovery pass records them.
    readonly ConcurrentDictionary<long, (InstanceState Step, string Reason)> _unrecorded = new();
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
                using var working = Working(id);
                try { await DeployAsync(id, stoppingToken); }
                catch (Exception e) { logger.LogError(e, "Deployment of instance {Id} crashed", id); }
                finally { _slots.Release(); }
            }, CancellationToken.None);
        }
    }

    SemaphoreSlim LockOf(long id) => _locks.GetOrAdd(id, _ => new SemaphoreSlim(1, 1));

    /// <summary>Marks <paramref name="id"/> as worked on until disposed.</summary>
    IDisposable Working(long id)
    {
        _working.AddOrUpdate(id, 1, (_, n) => n + 1);
        return new WorkingScope(_working, id);
    }

    sealed class WorkingScope(ConcurrentDictionary<long, int> working, long id) : IDisposable
    {
        int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            if (working.AddOrUpdate(id, 0, (_, n) => n - 1) <= 0) working.TryRemove(new KeyValuePair<long, int>(id, 0));
        }
    }

    string InstanceDir(long id) => Path.Combine(options.DataDir, "instances", id.ToString(CultureInfo.InvariantCulture));

    static readonly System.Diagnostics.Metrics.Histogram<long> DeployRoundTrips =
        Platform.Telemetry.Telemetry.Meter.CreateHistogram<long>("stratuslab.compute.deploy.store_round_trips", "{round trip}",
            "Store connections opened plus commands executed by one deployment, PENDING to RUNNING (all modules)");

    async Task DeployAsync(long id, CancellationToken stopping)
    {
        using var trips = store.CountRoundTrips();
        try { await DeployStepsAsync(id, stopping); }
        finally { DeployRoundTrips.Record(trips.Total); }
    }

    async Task DeployStepsAsync(long id, CancellationToken stopping)
    {
        // A launch resumed after a restart is still PROLOG on its host (see ReconcileAsync); any other starts PENDING.
        var from = _resuming.TryRemove(id, out _) ? InstanceState.Prolog : InstanceState.Pending;
        var row = await store.TransitionAsync(id, [from], InstanceState.Prolog);
        if (row is null) return;
        var driver = services.GetHypervisor(row.Driver);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        cts.CancelAfter(TimeSpan.FromSeconds(compute.BootTimeoutSeconds));
        _deploying[id] = cts;
        var step = InstanceState.Prolog;
        await using var undo = new UndoStack(logger);
        try
        {
            Publish(row);
            var (spec, prolog) = await PrologAsync(row, driver, undo, cts.Token);

            step = InstanceState.Boot;
            Publish(await store.EnterBootAsync(id, prolog) ?? throw new OperationCanceledException("terminated"));
            // The simulated driver changes nothing on the host, so its NICs have no host side (taps, rules, DHCP).
            if (driver.UsesRealMedia) await networking.PreBootAsync(id, row.Host, cts.Token);
            var started = await driver.StartAsync(spec, cts.Token);
            undo.Add("stop the VM", () => driver.KillAsync(new VmRef(id, spec.Directory, started.Pid), CancellationToken.None));
            var running = await store.MarkRunningAsync(id, started.Pid, started.Accelerator) ?? throw new OperationCanceledException("terminated");
            if (driver.UsesRealMedia) await networking.PostBootAsync(id, cts.Token);
            undo.Commit();
            Publish(running);
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
            else if (e is OperationCanceledException && ServerStopping(stopping) && step == InstanceState.Prolog && await WaitsForDownloadAsync(row))
            {
                // What PROLOG made is undone; the launch stays PROLOG and resumes at the next start, the download with a Range request.
                logger.LogInformation("Instance {Id}: the server stops while its image downloads; it resumes at the next start", id);
            }
            else
            {
                // A lack of space also tells /health (the guard remembers it until writing works again).
                var full = services.GetService<Platform.Contracts.IFreeSpaceGuard>()?.ReportIfFull(e) ?? Platform.Host.DiskSpace.IsFull(e);
                var reason = e switch
                {
                    OperationCanceledException when ServerStopping(stopping) => "the server stopped during " + StateName(step),
                    OperationCanceledException => $"not RUNNING within {compute.BootTimeoutSeconds} s (Compute:BootTimeoutSeconds): the {row.Driver} driver did not answer",
                    _ when full => "the data dir's filesystem is full: " + e.Message,
                    _ => e.Message,
                };
                if (!full && e is not (HypervisorException or ToolFailedException or ToolMissingException or OperationCanceledException or Platform.Contracts.DomainException or PolicyRefusedException or ImagePreparationException))
                    logger.LogError(e, "Instance {Id} failed in {Step}", id, step);
                try { await FailAsync(id, step, reason); }
                catch (Exception failing)
                {
                    // Recording the failure failed too (disk full): the monitor's recovery pass records it once the store takes writes.
                    _unrecorded[id] = (step, reason);
                    logger.LogError("Instance {Id}: marking it FAILED ({Reason}) failed: {Error}; it is retried by the next recovery pass", id, reason, failing.Message);
                }
            }
        }
        finally
        {
            _deploying.TryRemove(id, out _);
        }
    }

    /// <summary>The host is shutting down (the image download, owned by the server, is cancelled before this service's token).</summary>
    bool ServerStopping(CancellationToken stopping) =>
        stopping.IsCancellationRequested || services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested;

    /// <summary>The instance's PROLOG waits for an image download that a server stop cut short (and that resumes with Range).</summary>
    async Task<bool> WaitsForDownloadAsync(InstanceRow row)
    {
        if (row.ImageRef is null) return false;
        try { return await images.DownloadInterruptedAsync(ImageReferenceOf(row), CancellationToken.None); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Instance {Id}: whether its image download can resume is unknown ({Error}); it is failed", row.Id, e.Message);
            return false;
        }
    }

    /// <summary>Everything a VM needs before it boots; what it made is recorded with the move to BOOT (one write).</summary>
    async Task<(VmSpec Spec, PrologRecord Record)> PrologAsync(InstanceRow row, IHypervisorDriver driver, UndoStack undo, CancellationToken ct)
    {
        var id = row.Id;
        await CheckImagePolicyAsync(row, ct);
        var dir = InstanceDir(id);
        var token = GuestTokenPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

        var nics = await networking.AllocateAsync(new Networking.Contracts.NicRequest(id, row.OwnerId, row.Networks, row.ForwardPorts,
            row.Admin.Mac, Simulated: !driver.UsesRealMedia), ct);
        undo.Add("release the network leases", () => networking.CleanAsync(id, CancellationToken.None));

        var dataDisks = await MountVolumesAsync(row, undo, ct);
        string? iso = null;
        BootDiskRecord? boot = null;
        if (driver.UsesRealMedia)
        {
            Directory.CreateDirectory(dir);
            undo.Add("remove the instance directory", () => { DeleteDirectory(dir); return Task.CompletedTask; });
            boot = await PrepareBootDiskAsync(row, undo, ct);
            var media = await contextMedia.BuildAsync(ContextRequestOf(row, dir, token, nics), ct);
            iso = media.IsoPath;
        }

        var record = new PrologRecord(Platform.Security.TokenHash.Of(token),
            nics.SelectMany(n => n.Forwards).Select(f => new PortForward(f.GuestPort, f.HostAddress, f.HostPort, f.Protocol)).ToList(),
            nics.Select(n => new InstanceNic(n.Index, n.Network, n.Ip, n.Mac)).ToList(),
            driver.UsesRealMedia ? dir : null, boot);
        var spec = SpecOf(row, boot, dataDisks, dir, nics, iso);
        await driver.PrologAsync(spec, ct);
        return (spec, record);
    }

    /// <summary>
    /// The boot disk comes from the image cache: a LIVE copy-on-write snapshot of the cached ORIGIN (downloaded and
    /// verified once), or a user's persistent volume; Pdisk records the mount and quarantines a LIVE root disk at the end.
    /// On an SSH node in boot mode iscsi the clone is shared over iSCSI and the node opens it (with its ORIGIN as backing);
    /// in boot mode cache it is copied to the node (its cache).
    /// </summary>
    async Task<BootDiskRecord> PrepareBootDiskAsync(InstanceRow row, UndoStack undo, CancellationToken ct)
    {
        var reference = ImageReferenceOf(row);
        var overIscsi = await BootsOverIscsiAsync(row, ct);
        Images.Contracts.BootDisk boot;
        try { boot = await images.PrepareBootDiskAsync(reference, row.OwnerId, ct, overIscsi ? "iscsi" : "local"); }
        catch (Images.Contracts.ImageUnavailableException e) { throw new ImagePreparationException(e.Message); }
        if (boot.QuarantineWhenReleased)
            undo.Add("remove the copy-on-write clone", () => RemoveCloneAsync(row.Id, boot.VolumeUuid));
        Pdisk.Contracts.VolumeMountSummary mount;
        var staged = row.Driver == "ssh" && !overIscsi;
        try
        {
            mount = await volumes.MountAsync(new Pdisk.Contracts.VolumeMountRequest(boot.VolumeUuid, row.Id, row.Host ?? "", "vda", false, boot.QuarantineWhenReleased)
            {
                Staged = staged,
            }, ct);
        }
        catch (Platform.Contracts.DomainException e) { throw new ImagePreparationException($"the boot disk could not be mounted: {e.Detail}"); }
        undo.Add("release the boot disk", () => volumes.ReleaseMountsAsync(row.Id, CancellationToken.None));
        return new BootDiskRecord(boot.VolumeUuid, PathOf(mount.Turl), mount.Format, boot.CacheHit)
        {
            Host = row.Host, Staged = staged, BackingPath = mount.BackingTurl, BackingFormat = mount.BackingFormat,
        };
    }

    /// <summary>Whether the instance's host is an SSH node in boot mode iscsi.</summary>
    async Task<bool> BootsOverIscsiAsync(InstanceRow row, CancellationToken ct) =>
        row.Driver == "ssh" && row.Host is { } host && (await nodes.FindNodeAsync(host, ct))?.BootDisks == Scheduling.Contracts.NodeBootDisks.Iscsi;

    /// <summary>
    /// The boot disk of an instance that moved (evacuated) since it was mounted: Pdisk moves the mount to the new host,
    /// withdrawing the old host's node from the export first. A clone shared over iSCSI is opened by a node in boot mode
    /// iscsi; anywhere else the volume's file is opened (here) or copied (a node in boot mode cache).
    /// </summary>
    async Task<BootDiskRecord?> BootDiskForHostAsync(InstanceRow row, CancellationToken ct)
    {
        if (row.BootDisk is not { } boot || boot.Host is null || string.Equals(boot.Host, row.Host, StringComparison.OrdinalIgnoreCase)) return row.BootDisk;
        var volume = await volumes.FindAsync(boot.Volume, ct) ?? throw new HypervisorException($"its boot disk {boot.Volume} no longer exists");
        var overIscsi = await BootsOverIscsiAsync(row, ct) && volume.Turl.StartsWith("iscsi://", StringComparison.Ordinal);
        var staged = row.Driver == "ssh" && !overIscsi;
        Pdisk.Contracts.VolumeMountSummary mount;
        try
        {
            mount = await volumes.RemountAsync(new Pdisk.Contracts.VolumeMountRequest(boot.Volume, row.Id, row.Host ?? "", "vda", false, false) { Staged = staged }, ct);
        }
        catch (Platform.Contracts.DomainException e) { throw new HypervisorException($"the boot disk could not be moved to {row.Host}: {e.Detail}", e); }
        var moved = boot with
        {
            Path = overIscsi ? PathOf(mount.Turl) : volume.LocalPath, Format = mount.Format,
            Host = row.Host, Staged = staged, BackingPath = mount.BackingTurl, BackingFormat = mount.BackingFormat,
        };
        await store.SetBootDiskAsync(row.Id, moved);
        logger.LogInformation("Instance {Id}: boot disk {Volume} moved from {From} to {To} ({Mode})", row.Id, boot.Volume, boot.Host, row.Host,
            overIscsi ? "opened over iSCSI" : staged ? "copied to the node" : "opened here");
        return moved;
    }

    /// <summary>
    /// Undoes a boot clone. Releasing the boot disk (undone just before) already put it in quarantine, which removes it
    /// later; only a clone that never got that far is deleted here.
    /// </summary>
    async Task RemoveCloneAsync(long id, Guid uuid)
    {
        var clone = await volumes.FindAsync(uuid, CancellationToken.None);
        if (clone is null) return;
        if (string.Equals(clone.State, "QUARANTINED", StringComparison.OrdinalIgnoreCase))
        {
            logger.LogInformation("Instance {Id}: its copy-on-write clone {Uuid} is in quarantine and is removed with it", id, uuid);
            return;
        }
        await volumes.DeleteAsync(uuid, CancellationToken.None);
    }

    /// <summary>The request's persistent volumes, mounted as vdb, vdc, ... (read-only when their type is); Pdisk records the mounts.</summary>
    async Task<IReadOnlyList<VmDisk>> MountVolumesAsync(InstanceRow row, UndoStack undo, CancellationToken ct)
    {
        if (row.Volumes.Count == 0) return [];
        undo.Add("release the attached volumes", () => volumes.ReleaseMountsAsync(row.Id, CancellationToken.None));
        var disks = new List<VmDisk>();
        for (var i = 0; i < row.Volumes.Count; i++)
        {
            var uuid = Guid.Parse(row.Volumes[i]);
            var volume = await volumes.FindAsync(uuid, ct) ?? throw new ImagePreparationException($"volume {uuid} no longer exists");
            var readOnly = Pdisk.Contracts.VolumeTypes.IsReadOnly(volume.Type);
            Pdisk.Contracts.VolumeMountSummary mount;
            try { mount = await volumes.MountAsync(new Pdisk.Contracts.VolumeMountRequest(uuid, row.Id, row.Host ?? "", DataDevice(i), readOnly, false), ct); }
            catch (Platform.Contracts.DomainException e) { throw new ImagePreparationException($"volume {uuid} could not be attached: {e.Detail}"); }
            disks.Add(new VmDisk(PathOf(mount.Turl), mount.Format, readOnly));
        }
        return disks;
    }

    /// <summary>The disks attached at boot, as Pdisk recorded them (for a start after a stop).</summary>
    async Task<IReadOnlyList<VmDisk>> MountedVolumesAsync(InstanceRow row, CancellationToken ct)
    {
        if (row.Volumes.Count == 0) return [];
        var devices = Enumerable.Range(0, row.Volumes.Count).Select(DataDevice).ToList();
        return (await volumes.MountsOfAsync(row.Id, ct)).Where(m => !m.HotPlugged && devices.Contains(m.Device))
            .OrderBy(m => m.Device, StringComparer.Ordinal).Select(m => new VmDisk(PathOf(m.Turl), m.Format, m.ReadOnly)).ToList();
    }

    static string DataDevice(int index) => "vd" + (char)('b' + index);

    static string PathOf(string turl) => turl.StartsWith("file://", StringComparison.Ordinal) ? new Uri(turl).LocalPath : turl;

    /// <summary>StratusLab's --save: the powered-off disk becomes a new signed image; the instance shows its identifier.</summary>
    async Task SaveImageAsync(InstanceRow row, CancellationToken ct)
    {
        if (row.BootDisk is not { } boot)
        {
            await store.SetFailureReasonAsync(row.Id, "save: the instance has no disk to save (simulated VMs without media)");
            return;
        }
        var reference = ImageReferenceOf(row);
        var owner = await users.FindAsync(row.OwnerId, ct);
        try
        {
            var identifier = await images.SaveAsync(boot.Volume, reference.Kind == Images.Contracts.ImageSourceKind.Marketplace ? reference.Value : null,
                owner?.Name ?? "", row.Id, ct);
            await store.SetSavedImageAsync(row.Id, identifier);
        }
        catch (Exception e) when (e is Platform.Contracts.DomainException or ToolFailedException)
        {
            var reason = "save failed: " + e.Message;
            logger.LogWarning("Instance {Id}: {Reason}", row.Id, reason);
            await store.SetFailureReasonAsync(row.Id, reason);
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
        var reference = ImageReferenceOf(row);
        var owner = await users.FindAsync(row.OwnerId, ct);
        var caller = new Caller(row.OwnerId, owner?.Name ?? "", owner?.Role == "admin", row.GroupId, []);
        if (InstanceRequests.SourceOf(reference.Kind) is { } source)
        {
            // URLs and boot volumes are not Marketplace entries: the site's switch for them decides, with the same audit.
            var switched = await imagePolicy.CheckSourceLaunchAsync(source, reference.Value, caller, row.Id.ToString(CultureInfo.InvariantCulture), ct);
            if (!switched.Accepted)
                throw new PolicyRefusedException($"the site image policy refused image {reference.Value} (rule {switched.Rule}, from {switched.Source}): {switched.Reason}");
            return;
        }
        if (reference.Kind != Images.Contracts.ImageSourceKind.Marketplace) return;
        var identifier = reference.Value;
        var decision = await imagePolicy.CheckLaunchAsync(identifier, caller, row.Id.ToString(CultureInfo.InvariantCulture), ct);
        if (!decision.Accepted)
            throw new PolicyRefusedException($"the site image policy refused image {identifier} (rule {decision.Rule}, from {decision.Source}): {decision.Reason}");
    }

    static VmSpec SpecOf(InstanceRow row, BootDiskRecord? boot, IReadOnlyList<VmDisk> dataDisks, string dir, IReadOnlyList<Networking.Contracts.NicPlan> nics, string? iso) =>
        new(row.Id, row.Name, dir, (int)row.Cpu, row.MemoryMib,
            (boot is null ? [] : new[] { new VmDisk(boot.Path, boot.Format) { BackingPath = boot.BackingPath, BackingFormat = boot.BackingFormat } }).Concat(dataDisks).ToList(), iso,
            nics.Select(NicOf).ToList(),
            row.Admin.RawQemuArguments ?? []);

    /// <summary>A NIC from its lease: a tap on the network's bridge, or QEMU user-mode networking with the leased address as its DHCP address.</summary>
    static VmNic NicOf(Networking.Contracts.NicPlan nic) => nic.TapDevice is { } tap
        ? new VmNic(nic.Mac, []) { Tap = tap, Mtu = nic.Mtu }
        : new VmNic(nic.Mac, nic.Forwards.Select(f => new PortForward(f.GuestPort, f.HostAddress, f.HostPort, f.Protocol)).ToList())
        {
            Cidr = nic.Cidr, Host = nic.Gateway, Dns = nic.UserDns, GuestIp = nic.Ip, Mtu = nic.Mtu,
        };

    /// <summary>
    /// The context medium of an instance: by its method (the request's; later the image's; else opennebula), with its
    /// unique instance-id, hostname, keys, NICs from the leases, user data verbatim, phone_home to the guest API (NoCloud's
    /// vendor-data), and the platform's variables (guest API address, guest token, instance id) plus the user's.
    /// </summary>
    ContextRequest ContextRequestOf(InstanceRow row, string dir, string token, IReadOnlyList<Networking.Contracts.NicPlan> nics)
    {
        var api = guestApi.UrlVia(nics.Count > 0 ? nics[0].Gateway : null);
        var variables = new List<KeyValuePair<string, string>>
        {
            new("STRATUSLAB_API", api),
            new("STRATUSLAB_TOKEN", token),
            new("STRATUSLAB_INSTANCE_ID", row.Id.ToString(CultureInfo.InvariantCulture)),
        };
        foreach (var (k, v) in row.Context) variables.Add(new(k, v));
        return new ContextRequest(dir, variables, row.UserData)
        {
            Method = ContextMethodOf(row),
            InstanceUid = row.Guest.Uid ?? $"i-stratuslab-{row.Id}",
            Hostname = HostnameOf(row),
            SshKeys = row.SshKeys,
            Nics = nics.Select(n => new ContextNic(n.Index, n.Mac, n.Ip, n.Mask, n.Gateway, n.Dns, n.Mtu)).ToList(),
            PhoneHomeUrl = $"{api.TrimEnd('/')}/guest/v1/phone-home/{token}",
        };
    }

    public static ContextMethod ContextMethodOf(InstanceRow row) => ContextMethods.Parse(row.Guest.ContextMethod) ?? ContextMethod.OpenNebula;

    /// <summary>The guest's host name: the request's, else the instance name made into a valid host name.</summary>
    public static string HostnameOf(InstanceRow row)
    {
        if (row.Guest.Hostname is { } hostname) return hostname;
        var label = new string(row.Name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c == '-' ? c : '-').ToArray()).Trim('-');
        return label.Length == 0 ? $"vm-{row.Id}" : label.Length > 63 ? label[..63].TrimEnd('-') : label;
    }

    /// <summary>Marks the instance FAILED at <paramref name="step"/> and gives its quota back; media were rolled back by the caller.</summary>
    async Task FailAsync(long id, InstanceState step, string reason)
    {
        logger.LogWarning("Instance {Id} FAILED in {Step}: {Reason}", id, StateName(step), reason);
        // Quota and capacity go back before the state changes, so whoever sees FAILED also sees them free.
        await ReleaseQuotaAsync(id);
        await allocations.ReleaseAsync(id);
        var failed = await store.FailAsync(id, StateName(step), reason);
        if (failed is null) logger.LogInformation("Instance {Id} had already ended; it stays as it is", id);
        else Publish(failed);
    }

    async Task FinishAsync(long id)
    {
        await ReleaseQuotaAsync(id);
        await allocations.ReleaseAsync(id);
        if (await store.FinishAsync(id) is { } done) Publish(done);
        _locks.TryRemove(id, out _);
    }

    async Task ReleaseQuotaAsync(long id)
    {
        await store.ReleaseQuotaHeldAsync(id, (tx, held) => quotas.ReleaseAsync(tx, held.OwnerId, new ResourceAmount(1, held.Cpu, held.MemoryMib, 0)));
    }

    public async Task SetSchedulingMessageAsync(long id, string message)
    {
        if (await store.SetSchedulingMessageAsync(id, message) is { } row) Publish(row);
    }

    /// <summary>A PENDING instance that no host took in time: FAILED, quota back.</summary>
    public async Task FailPendingAsync(long id, string reason)
    {
        if (await store.TransitionAsync(id, [InstanceState.Pending], InstanceState.Epilog) is null)
            return;
        logger.LogWarning("Instance {Id} FAILED while PENDING: {Reason}", id, reason);
        await ReleaseQuotaAsync(id);
        await allocations.ReleaseAsync(id);
        if (await store.FailUnplacedAsync(id, reason) is { } failed) Publish(failed);
    }

    /// <summary>Removes everything an instance has on the host: VM, context ISO, overlay, directory, network leases and NICs, guest token.</summary>
    async Task CleanUpAsync(InstanceRow row, CancellationToken ct)
    {
        var driver = services.GetHypervisor(row.Driver);
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
        // PROLOG records the directory only at its end; a crash before that still leaves it at its usual place.
        DeleteDirectory(row.VmDir ?? InstanceDir(row.Id));
        await networking.CleanAsync(row.Id, ct);
        await store.ClearVmAsync(row.Id);
    }

    static void DeleteDirectory(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }


    static string StateName(InstanceState state) => InstanceStateMachine.Name(state);

    async Task PublishAsync(long id)
    {
        if (await store.GetAsync(id) is { } row) Publish(row);
    }

    void Publish(InstanceRow row) =>
        events.Publish(new InstanceEvent(row.Id, row.Name, row.State, row.Ready, row.FailedStep, row.FailureReason, DateTimeOffset.UtcNow)
        {
            Ownership = new Ownership(row.OwnerId, row.GroupId, new Permissions((int)row.Permissions)),
        });
}

/// <summary>The image could not be made into a boot disk (download, checksum, quota...).</summary>
internal sealed class ImagePreparationException(string message) : Exception(message);

/// <summary>The site image policy refused the image.</summary>
internal sealed class PolicyRefusedException(string message) : Exception(message);

