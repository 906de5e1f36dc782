using Quartz;

namespace StratusLab.Server.Modules.Pdisk.Jobs;

/// <summary>Every minute: removes quarantined volumes whose time is up, retries deletions that failed, and removes creations that failed but could not undo themselves.</summary>
[DisallowConcurrentExecution]
internal sealed class QuarantineJob(VolumeLifecycle volumes, ILogger<QuarantineJob> logger) : IJob
{
    public static readonly JobKey Key = new("quarantine-purge", "pdisk");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        var purged = await volumes.PurgeQuarantineAsync(all: false, ct);
        if (purged.Count > 0) logger.LogInformation("Removed {Count} volume(s) whose quarantine ended: {Volumes}", purged.Count, string.Join(", ", purged));
        await volumes.FinishStrandedCreationsAsync(ct);
    }
}
