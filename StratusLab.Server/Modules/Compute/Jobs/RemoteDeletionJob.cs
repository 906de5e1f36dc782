namespace StratusLab.Server.Modules.Compute.Jobs;

/// <summary>
/// Every Compute:MonitorIntervalSeconds, terminates on their peers the remote instances owed since a kill while the
/// peer was silent (a seconds-apart retry, like the VM monitor, not a schedule to keep across restarts: the owed list is
/// in the store and the first pass after a restart resumes it).
/// </summary>
internal sealed class RemoteDeletionJob(Drivers.CloudDriver cloud, ComputeOptions options, ILogger<RemoteDeletionJob> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.MonitorIntervalSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try { await cloud.RetryRemoteDeletionsAsync(stoppingToken); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Retrying the terminations owed to peer clouds failed");
            }
        }
    }
}
