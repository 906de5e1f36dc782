namespace StratusLab.Server.Modules.Context.Contracts;

/// <summary>What goes on one instance's context CD.</summary>
/// <param name="Directory">Where the ISO is written (the instance's directory).</param>
/// <param name="Variables">OpenNebula-style context variables, in the order they appear in context.sh.</param>
/// <param name="UserData">cloud-init user data, when given.</param>
public sealed record ContextRequest(string Directory, IReadOnlyList<KeyValuePair<string, string>> Variables, string? UserData = null);

/// <summary>The built context medium.</summary>
public sealed record ContextMedia(string IsoPath, long Bytes);

/// <summary>Builds contextualization media (label CONTEXT, context.sh).</summary>
public interface IContextMedia
{
    Task<ContextMedia> BuildAsync(ContextRequest request, CancellationToken ct = default);

    /// <summary>Removes the medium; missing files are fine.</summary>
    Task RemoveAsync(string isoPath, CancellationToken ct = default);
}

/// <summary>Context variable names and values the platform accepts from users.</summary>
public static class ContextVariables
{
    /// <summary>Variables users may not set: the server fills them, or they are restricted to admins.</summary>
    public static readonly IReadOnlySet<string> Reserved = new HashSet<string>(StringComparer.Ordinal)
    {
        "STRATUSLAB_TOKEN", "STRATUSLAB_API", "HOSTNAME", "SSH_PUBLIC_KEY", "FILES", "FILES_DS", "INIT_SCRIPTS",
    };

    /// <summary>Variables only admins may set (they make the guest fetch or run arbitrary things).</summary>
    public static readonly IReadOnlySet<string> AdminOnly = new HashSet<string>(StringComparer.Ordinal) { "FILES", "FILES_DS", "INIT_SCRIPTS" };

    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && char.IsAsciiLetterUpper(name[0]) && name.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_');
}

/// <summary>What the guest API needs to know about the instance behind a per-VM token.</summary>
public sealed record GuestInstance(long InstanceId, string Hostname, IReadOnlyDictionary<string, string> Context);

/// <summary>The instances behind the guest API's per-VM tokens; Compute implements it, the guest API (this module) uses it.</summary>
public interface IGuestInstances
{
    /// <summary>The instance whose guest token this is, if it is still alive; else null.</summary>
    Task<GuestInstance?> FindByGuestTokenAsync(string token, CancellationToken ct = default);

    /// <summary>Marks the instance ready (the guest finished booting and applied its context).</summary>
    Task MarkReadyAsync(long instanceId, CancellationToken ct = default);

    /// <summary>Stores the latest metrics (KPIs) the guest reported.</summary>
    Task RecordMetricsAsync(long instanceId, IReadOnlyDictionary<string, double> metrics, CancellationToken ct = default);
}
