using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Identity;

/// <summary>The Identity section: token lifetimes and the quota new users get.</summary>
internal sealed class IdentityOptions : IValidatedOptions
{
    public int DefaultTokenLifetimeDays { get; set; }
    public int ExpiredTokenRetentionDays { get; set; } = 30;
    public QuotaOptions DefaultQuota { get; set; } = new();
    public LdapOptions Ldap { get; set; } = new();

    public IEnumerable<string> Problems()
    {
        var problems = new ConfigurationProblems();
        problems.Range("Identity:DefaultTokenLifetimeDays", DefaultTokenLifetimeDays, 0, 3650);
        problems.Range("Identity:ExpiredTokenRetentionDays", ExpiredTokenRetentionDays, 1, 3650);
        problems.Range("Identity:DefaultQuota:Vms", DefaultQuota.Vms, -1, 1_000_000);
        problems.Range("Identity:DefaultQuota:Cpus", DefaultQuota.Cpus, -1, 1_000_000);
        problems.Range("Identity:DefaultQuota:MemoryMiB", DefaultQuota.MemoryMiB, -1, 1L << 40);
        problems.Range("Identity:DefaultQuota:StorageGiB", DefaultQuota.StorageGiB, -1, 1L << 30);
        Ldap.AddProblems(problems);
        return problems;
    }
}

/// <summary>Identity:DefaultQuota: the limits a new user starts with (-1: unlimited).</summary>
internal sealed class QuotaOptions
{
    public int Vms { get; set; } = 20;
    public int Cpus { get; set; } = 16;
    public long MemoryMiB { get; set; } = 32768;
    public long StorageGiB { get; set; } = 500;
}
