using Quartz;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Pdisk.Jobs;

/// <summary>
/// Every Pdisk:Iscsi:HealthCheckSeconds: tgtd runs (restarted when it died) and exports every volume that should be
/// exported; and clones made for instances that no mount claimed are quarantined (see <see cref="PdiskReconciler"/>).
/// </summary>
[DisallowConcurrentExecution]
internal sealed class ExportHealthJob(VolumeLifecycle volumes, PdiskReconciler reconciler, ILogger<ExportHealthJob> logger) : IJob
{
    public static readonly JobKey Key = new("export-health", "pdisk");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        try { await volumes.EnsureExportsAsync(held: null, ct); }
        catch (DomainException e) { logger.LogError("Export health check: {Error}", e.Detail); }
        await reconciler.QuarantineOrphanClonesAsync(ct);
    }
}
