namespace StratusLab.Server.Modules.Context.Contracts;

/// <summary>
/// How a guest gets its context: <see cref="OpenNebula"/> is a CD labelled CONTEXT holding context.sh (cloud-init's
/// OpenNebula datasource and this cloud's own appliance read it); <see cref="NoCloud"/> is a CD labelled cidata holding
/// meta-data, user-data, vendor-data and network-config (cloud-init's NoCloud datasource).
/// </summary>
public enum ContextMethod { OpenNebula, NoCloud }

/// <summary>Context method names as requests and images spell them.</summary>
public static class ContextMethods
{
    public const string OpenNebula = "opennebula";
    public const string NoCloud = "nocloud";

    /// <summary>The method for a name (case-insensitive), or null when the name is unknown.</summary>
    public static ContextMethod? Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        OpenNebula => ContextMethod.OpenNebula,
        NoCloud => ContextMethod.NoCloud,
        _ => null,
    };

    public static string Name(ContextMethod method) => method == ContextMethod.NoCloud ? NoCloud : OpenNebula;
}

/// <summary>One NIC as the guest should configure it: from its lease.</summary>
public sealed record ContextNic(int Index, string Mac, string Ip, string Mask, string? Gateway, IReadOnlyList<string> Dns, int? Mtu);

/// <summary>What goes on one instance's context CD.</summary>
/// <param name="Directory">Where the ISO is written (the instance's directory).</param>
/// <param name="Variables">Extra OpenNebula-style context variables (the platform's STRATUSLAB_* and the user's), in the order they appear in context.sh after the standard ones.</param>
/// <param name="UserData">cloud-init user data, when given (passed verbatim).</param>
public sealed record ContextRequest(string Directory, IReadOnlyList<KeyValuePair<string, string>> Variables, string? UserData = null)
{
    public ContextMethod Method { get; init; } = ContextMethod.OpenNebula;
    /// <summary>The unique, stable instance id the guest sees (VMID, meta-data instance-id): cloud-init's per-instance modules run once per id.</summary>
    public string? InstanceUid { get; init; }
    public string? Hostname { get; init; }
    public IReadOnlyList<string> SshKeys { get; init; } = [];
    public IReadOnlyList<ContextNic> Nics { get; init; } = [];
    /// <summary>Where cloud-init's phone_home posts (NoCloud vendor-data); null: no phone_home.</summary>
    public string? PhoneHomeUrl { get; init; }
}

/// <summary>The built context medium.</summary>
public sealed record ContextMedia(string IsoPath, long Bytes);

/// <summary>Builds contextualization media (label CONTEXT with context.sh, or label cidata for NoCloud).</summary>
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
        "SET_HOSTNAME", "VMID", "USER_DATA", "USERDATA", "USERDATA_ENCODING", "NETWORK",
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

    /// <summary>Marks the instance ready (the guest finished booting and applied its context); <paramref name="source"/> says how it was seen (guest-api, phone-home).</summary>
    Task MarkReadyAsync(long instanceId, string source = "guest-api", CancellationToken ct = default);
}

/// <summary>Checks on cloud-init user data, shared by every front door that takes it.</summary>
public static class UserDataRules
{
    /// <summary>The largest user data accepted, in bytes (UTF-8).</summary>
    public const int MaxBytes = 64 * 1024;

    /// <summary>
    /// Throws <see cref="Platform.Contracts.InvalidInputException"/> (400) when the user data is larger than <see cref="MaxBytes"/>, contains NUL, or declares
    /// <c>#cloud-config</c> but is not valid YAML (cloud-init would skip it silently). Scripts (#!), MIME multipart and other formats pass through unchecked.
    /// </summary>
    public static void Check(string? userData, string field = "userData")
    {
        if (userData is null) return;
        var bytes = System.Text.Encoding.UTF8.GetByteCount(userData);
        if (bytes > MaxBytes)
            throw new Platform.Contracts.InvalidInputException(field, $"'{field}' is {bytes} bytes; at most {MaxBytes} (64 KiB) are accepted. Put large data on a volume or fetch it from the guest (#include URL).");
        if (userData.Contains('\0'))
            throw new Platform.Contracts.InvalidInputException(field, $"'{field}' contains NUL bytes; user data must be text (a #cloud-config document, a #! script or MIME multipart).");
        if (userData.StartsWith("#cloud-config", StringComparison.Ordinal))
        {
            try
            {
                var yaml = new YamlDotNet.RepresentationModel.YamlStream();
                yaml.Load(new StringReader(userData));
                if (yaml.Documents.Count > 0 && yaml.Documents[0].RootNode is not (YamlDotNet.RepresentationModel.YamlMappingNode or YamlDotNet.RepresentationModel.YamlScalarNode { Value: null or "" }))
                    throw new Platform.Contracts.InvalidInputException(field, $"'{field}' declares #cloud-config but its body is not a YAML mapping (keys like 'runcmd:', 'packages:'); cloud-init would ignore it.");
            }
            catch (YamlDotNet.Core.YamlException e)
            {
                throw new Platform.Contracts.InvalidInputException(field,
                    $"'{field}' declares #cloud-config but is not valid YAML (line {e.Start.Line}, column {e.Start.Column}: {e.Message}); cloud-init would ignore it. Fix the YAML, or drop the #cloud-config header if it is not cloud-config.");
            }
        }
    }
}
