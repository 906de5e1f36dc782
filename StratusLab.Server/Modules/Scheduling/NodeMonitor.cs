using System.Text.Json;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>
/// Probes SSH nodes, on add and every Scheduling:NodeProbeIntervalSeconds: a node that lacks something, refuses the key
/// or shows another host key is ERROR at once; one that does not answer is ERROR after Scheduling:NodeMissedProbes misses in a row.
/// </summary>
internal sealed class NodeMonitor(SchedulingStore store, SshTransport ssh, SchedulingOptions options, SchedulerSignal signal, IConfiguration configuration,
    ILogger<NodeMonitor> logger)
    : BackgroundService, INodeDirectory
{
    readonly SemaphoreSlim _probing = new(4, 4);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.NodeProbeIntervalSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var nodes = (await store.ListHostsAsync()).Where(h => h.Ssh is not null).ToList();
                await Task.WhenAll(nodes.Select(n => ProbeAsync(n, stoppingToken)));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Probing the SSH nodes failed");
            }
        }
    }

    /// <summary>
    /// Probes one node now and records the outcome; returns the host as it is afterwards. The KVM boot probe (up to 10 s
    /// where /dev/kvm exists but hangs) runs when <paramref name="full"/> or while the accelerator is unknown; periodic probes keep its answer.
    /// </summary>
    public async Task<HostRow> ProbeAsync(HostRow host, CancellationToken ct, bool full = false)
    {
        var target = host.Ssh ?? throw new InvalidOperationException($"{host.Name} is not an SSH node");
        await _probing.WaitAsync(ct);
        try
        {
            var bootProbe = full || host.Accelerator is null;
            // The KVM probe boots the appliance's kernel on the node, as the local probe does (Compute:ApplianceImage locates it, as for the local probe).
            var facts = await NodeProbe.RunAsync(ssh, target, host.NodeRoot ?? options.NodeRoot, bootProbe, ct,
                bootProbe ? Platform.Configuration.Appliance.KernelPath(configuration["Compute:ApplianceImage"]) : null);
            var accelerator = bootProbe ? facts.Accelerator : host.Accelerator!;
            var missing = facts.Missing();
            var state = missing.Count == 0 ? "OK" : "ERROR";
            var reason = missing.Count == 0 ? null : $"missing on the node: {string.Join(", ", missing)}; install them on {target.Address}, then probe again (POST /api/v1/hosts/{host.Name}/probe).";
            var cpus = facts.Cpus > 0 ? (long)Math.Max(1, Math.Floor(facts.Cpus * options.CpuOvercommit)) : (long?)null;
            var memory = facts.MemoryMiB >= 64 ? facts.MemoryMiB : (long?)null;
            var usage = facts.Cpus > 0 ? Math.Round(Math.Min(100, 100 * facts.LoadAverage / facts.Cpus), 1) : 0;
            await store.SetProbedAsync(host.Name, state, reason, cpus, memory, usage, Math.Max(0, facts.MemoryMiB - facts.MemoryAvailableMiB), accelerator,
                JsonSerializer.Serialize(facts));
            if (state != host.State || host.MissedProbes > 0)
                logger.LogInformation("SSH node {Host} ({Target}): {State}{Reason}", host.Name, target, state, reason is null ? "" : " - " + reason);
        }
        catch (SshFailure e)
        {
            // Not answering can be a blip: ERROR only after several misses. A refused key or a changed host key is not one.
            var transient = e.Kind is SshFailureKind.Unreachable or SshFailureKind.Timeout;
            // Read now, not from the row this probe started with: a periodic probe that listed the node just after its add
            // (not probed yet then) may fail after the add's own probe succeeded, and that is a blip, not a first contact.
            var current = await store.FindHostAsync(host.Name) ?? host;
            var firstContact = current.ProbedAt is null || current.StateReason == "not probed yet";
            var missed = await store.SetProbeMissedAsync(host.Name, e.Message, errorNow: !transient || firstContact, options.NodeMissedProbes);
            logger.LogWarning("SSH node {Host}: probe {Missed} failed: {Reason}", host.Name, missed, e.Message);
            if (e.Kind == SshFailureKind.HostKeyChanged) await CloseQuietlyAsync(target);
        }
        catch (ToolFailedException e)
        {
            var reason = $"the probe failed on the node (exit code {e.ExitCode}): {e.StandardError.Trim()}";
            await store.SetProbeMissedAsync(host.Name, reason, errorNow: true, options.NodeMissedProbes);
        }
        finally
        {
            _probing.Release();
        }
        signal.Wake();
        return (await store.FindHostAsync(host.Name))!;
    }

    async Task CloseQuietlyAsync(SshTarget target)
    {
        try { await ssh.CloseAsync(target); }
        catch (Exception e) when (e is ToolFailedException or ToolTimeoutException) { logger.LogDebug("Closing the SSH master of {Target}: {Error}", target, e.Message); }
    }

    public async Task<NodeInfo?> FindNodeAsync(string host, CancellationToken ct = default) =>
        await store.FindHostAsync(host) is { Ssh: { } target } row ? ToInfo(row, target) : null;

    public async Task<IReadOnlyList<NodeInfo>> ListNodesAsync(CancellationToken ct = default) =>
        (await store.ListHostsAsync()).Where(h => h.Ssh is not null).Select(h => ToInfo(h, h.Ssh!)).ToList();

    NodeInfo ToInfo(HostRow row, SshTarget target) =>
        new(row.Name, target, row.NodeRoot ?? options.NodeRoot, row.State, row.StateReason, row.Accelerator ?? "tcg", row.MissedProbes,
            row.ProbedAt)
        {
            IscsiInitiator = row.IscsiInitiator,
            IscsiDriver = ProbedIscsiDriver(row.ProbeJson),
            BootDisks = row.BootDisks ?? NodeBootDisks.Cache,
        };

    /// <summary>Whether the last probe (stored as JSON) found QEMU's iSCSI driver.</summary>
    static bool ProbedIscsiDriver(string? probeJson)
    {
        if (probeJson is null) return false;
        using var doc = JsonDocument.Parse(probeJson);
        return doc.RootElement.TryGetProperty(nameof(NodeFacts.IscsiDriver), out var v) && v.ValueKind == JsonValueKind.True;
    }
}
