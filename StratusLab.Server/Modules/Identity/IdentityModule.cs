using Microsoft.AspNetCore.Authentication;
using Quartz;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Identity.Jobs;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Users, groups, tokens, quotas; and the bearer scheme and admin policy every endpoint authorizes with.</summary>
internal static class IdentityModule
{
    public static IServiceCollection AddIdentityModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("identity", legacyUserVersions: [1]);
        services.AddModuleOptions<IdentityOptions>(configuration, "Identity");
        services.AddSingleton<IdentityStore>();
        services.AddSingleton<PasswordThrottle>();
        services.AddSingleton<LdapAuthenticator>();
        services.AddSingleton<LdapBindCache>();
        services.AddSingleton<CredentialValidator>();
        services.AddSingleton<ICredentialValidator>(sp => sp.GetRequiredService<CredentialValidator>());
        services.AddSingleton<AccessKeys>();
        services.AddSingleton<IAccessKeys>(sp => sp.GetRequiredService<AccessKeys>());
        services.AddSingleton<QuotaLedger>();
        services.AddSingleton<IQuotaLedger>(sp => sp.GetRequiredService<QuotaLedger>());
        services.AddSingleton<IUserDirectory>(sp => sp.GetRequiredService<QuotaLedger>());
        services.AddSingleton<IdentityBootstrap>();
        services.AddSingleton<KeyPairStore>();
        services.AddSingleton<IKeyPairs, KeyPairService>();
        services.AddSingleton<IUserAccounts, UserAccounts>();

        services.AddAuthentication(BearerAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, BearerAuthenticationHandler>(BearerAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Policies.Admin, p => p.RequireAuthenticatedUser().RequireRole(IdentityClaims.AdminRole));
        return services;
    }

    public static void ConfigureJobs(IQuartzBuilder q) =>
        q.ScheduleJob<TokenCleanupJob>(
            t => t.WithIdentity("token-cleanup", "identity").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromHours(1)).RepeatForever()),
            j => j.WithIdentity(TokenCleanupJob.Key));
}
