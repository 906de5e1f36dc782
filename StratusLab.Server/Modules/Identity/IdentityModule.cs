using Quartz;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Identity.Jobs;
using StratusLab.Server.Platform.Auth;

namespace StratusLab.Server.Modules.Identity;

public static class IdentityModule
{
    public static IServiceCollection AddIdentityModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("identity", legacyUserVersions: [1]);
        services.AddSingleton<IdentityStore>();
        services.AddSingleton<ICredentialValidator, CredentialValidator>();
        services.AddSingleton<QuotaLedger>();
        services.AddSingleton<IQuotaLedger>(sp => sp.GetRequiredService<QuotaLedger>());
        services.AddSingleton<IUserDirectory>(sp => sp.GetRequiredService<QuotaLedger>());
        services.AddSingleton<IdentityBootstrap>();
        return services;
    }

    public static void ConfigureJobs(IQuartzBuilder q) =>
        q.ScheduleJob<TokenCleanupJob>(
            t => t.WithIdentity("token-cleanup", "identity").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromHours(1)).RepeatForever()),
            j => j.WithIdentity(TokenCleanupJob.Key));
}
