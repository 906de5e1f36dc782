using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
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
    IEnumerable<IInstanceEndListener> endListeners,
    Scheduling.Contracts.IHostAllocations allocations,
    Marketplace.Contracts.IImagePolicy imagePolicy,
    IUserDirectory users,
    ImageCatalog images,
    ServerOptions options,
    ILogger<InstanceLifecycle> logger) : BackgroundService
{
    public static readonly int[] ForwardedGuestPorts = [22, 80];
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
            var started = await driver.StartAsync(spec, cts.Token);
            undo.Add("stop the VM", () => driver.KillAsync(new VmRef(id, spec.Directory, started.Pid), CancellationToken.None));
            if (!await store.TransitionAsync(id, [InstanceState.Boot], InstanceState.Running,
                    new { pid = started.Pid, accelerator = started.Accelerator, now = DateTimeOffset.UtcNow },
                    "pid = @pid, accelerator = @accelerator, started_at = @now"))
                throw new OperationCanceledException("terminated");
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
                if (e is not (HypervisorException or ToolFailedException or ToolMissingException or OperationCanceledException or PortsExhaustedException or PolicyRefusedException))
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

        IReadOnlyList<PortForward> forwards = [];
        string? iso = null;
        if (driver.UsesRealMedia)
        {
            Directory.CreateDirectory(dir);
            undo.Add("remove the instance directory", () => { DeleteDirectory(dir); return Task.CompletedTask; });
            await store.UpdateAsync(id, "vm_dir = @dir", new { dir });

            var image = row.ImagePath ?? throw new InvalidOperationException("the instance has no image path");
            if (!File.Exists(image)) throw new HypervisorException($"the image file {image} is missing; re-register the image");
            var format = Path.GetExtension(image) == ".raw" ? "raw" : "qcow2";
            // Copy-on-write: the root disk is a qcow2 overlay on the image, so start time does not depend on image size.
            await runner.RunAsync(new ToolCommand("qemu-img", ["create", "-q", "-f", "qcow2", "-F", format, "-b", image, Path.Combine(dir, "disk.qcow2")]), ct);

            var ports = await ReservePortsAsync(id);
            undo.Add("release forwarded ports", () => store.ReleasePortsAsync(id));
            forwards = ForwardedGuestPorts.Select((g, i) => new PortForward(g, "127.0.0.1", ports[i])).ToList();
            await store.UpdateAsync(id, "port_forwards_json = @json", new { json = JsonSerializer.Serialize(forwards, Json) });

            var media = await contextMedia.BuildAsync(new ContextRequest(dir, ContextVariablesOf(row, token), row.UserData), ct);
            iso = media.IsoPath;
        }

        var spec = SpecOf(row, dir, forwards, iso);
        await driver.PrologAsync(spec, ct);
        return spec;
    }

    /// <summary>The site image policy applies at every launch, cached image or not; a refusal is audited by the Marketplace.</summary>
    async Task CheckImagePolicyAsync(InstanceRow row, CancellationToken ct)
    {
        var image = await images.FindAsync(row.Image);
        if (image?.Identifier is not { } identifier)
            throw new PolicyRefusedException($"image '{row.Image}' has no Marketplace entry, so the site image policy cannot accept it");
        var owner = await users.FindAsync(row.OwnerId, ct);
        var caller = new Caller(row.OwnerId, owner?.Name ?? "", owner?.Role == "admin", row.GroupId, []);
        var decision = await imagePolicy.CheckLaunchAsync(identifier, caller, row.Id.ToString(CultureInfo.InvariantCulture), ct);
        if (!decision.Accepted)
            throw new PolicyRefusedException($"the site image policy refused image {identifier} (rule {decision.Rule}, from {decision.Source}): {decision.Reason}");
    }

    VmSpec SpecOf(InstanceRow row, string dir, IReadOnlyList<PortForward> forwards, string? iso)
    {
        var admin = JsonSerializer.Deserialize<AdminAttributes>(row.AdminJson, Json) ?? new AdminAttributes();
        return new VmSpec(row.Id, row.Name, dir, (int)row.Cpu, row.MemoryMib,
            [new VmDisk(Path.Combine(dir, "disk.qcow2"), "qcow2")], iso,
            [new VmNic(admin.Mac ?? QemuDriver.MacFor(row.Id, 0), forwards)],
            admin.RawQemuArguments ?? []);
    }

    IReadOnlyList<KeyValuePair<string, string>> ContextVariablesOf(InstanceRow row, string token)
    {
        var admin = JsonSerializer.Deserialize<AdminAttributes>(row.AdminJson, Json) ?? new AdminAttributes();
        var list = new List<KeyValuePair<string, string>>
        {
            new("HOSTNAME", row.Name),
            // QEMU user-mode networking: the guest is 10.0.2.15, the host 10.0.2.2, the DNS proxy 10.0.2.3.
            new("ETH0_IP", "10.0.2.15"),
            new("ETH0_MASK", "255.255.255.0"),
            new("ETH0_GATEWAY", "10.0.2.2"),
            new("ETH0_DNS", "10.0.2.3"),
            new("ETH0_MAC", admin.Mac ?? QemuDriver.MacFor(row.Id, 0)),
        };
        var keys = JsonSerializer.Deserialize<List<string>>(row.SshKeysJson, Json) ?? [];
        if (keys.Count > 0) list.Add(new("SSH_PUBLIC_KEY", string.Join("\n", keys)));
        list.Add(new("STRATUSLAB_API", guestEndpoint.Url));
        list.Add(new("STRATUSLAB_TOKEN", token));
        list.Add(new("STRATUSLAB_INSTANCE_ID", row.Id.ToString(CultureInfo.InvariantCulture)));
        foreach (var (k, v) in JsonSerializer.Deserialize<Dictionary<string, string>>(row.ContextJson, Json) ?? []) list.Add(new(k, v));
        return list;
    }

    async Task<IReadOnlyList<int>> ReservePortsAsync(long id)
    {
        try
        {
            return await store.ReservePortsAsync(id, ForwardedGuestPorts, options.Compute.PortRangeFirst, options.Compute.PortRangeLast, IsPortFree);
        }
        catch (InvalidOperationException e) { throw new PortsExhaustedException(e.Message); }
    }

    static bool IsPortFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException) { return false; }
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

    /// <summary>Removes everything an instance has on the host: VM, context ISO, overlay, directory, ports, guest token.</summary>
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
        foreach (var listener in endListeners)
        {
            try { await listener.InstanceEndedAsync(row.Id, ct); }
            catch (Exception e) when (e is not OperationCanceledException) { logger.LogError(e, "Instance {Id}: releasing its resources failed", row.Id); }
        }
        if (row.VmDir is not null) DeleteDirectory(row.VmDir);
        await store.ReleasePortsAsync(row.Id);
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

/// <summary>The site image policy refused the image.</summary>
public sealed class PolicyRefusedException(string message) : Exception(message);

/// <summary>No forwarded port is free.</summary>
public sealed class PortsExhaustedException(string message) : Exception(message);
