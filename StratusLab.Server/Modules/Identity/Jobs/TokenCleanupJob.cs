using Quartz;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Identity.Jobs;

/// <summary>Deletes revoked and expired tokens once they are past the retention period.</summary>
[DisallowConcurrentExecution]
internal sealed class TokenCleanupJob(IdentityStore store, IdentityOptions options, TimeProvider clock, ILogger<TokenCleanupJob> logger) : IJob
{
    public static readonly JobKey Key = new("token-cleanup", "identity");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        var before = clock.GetUtcNow().AddDays(-options.ExpiredTokenRetentionDays);
        var removed = await store.PurgeTokensAsync(before);
        if (removed > 0) logger.LogInformation("Removed {Count} token(s) that stopped working before {Before:O}", removed, before);
    }
}
