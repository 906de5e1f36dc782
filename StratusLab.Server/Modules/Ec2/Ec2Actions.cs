using System.Xml.Linq;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// The action table: each supported EC2 action maps to one handler (split into partial files by resource), which
/// calls a module's contract and returns the response body's elements. Anything else is UnsupportedOperation.
/// </summary>
internal sealed partial class Ec2Actions
{
    static readonly XNamespace Ns = Ec2Endpoints.Namespace;
    readonly Dictionary<string, Func<Ec2Request, CancellationToken, Task<IEnumerable<XElement>>>> _handlers = new(StringComparer.Ordinal);
    readonly Ec2Options _options;
    readonly ISecurityGroups _securityGroups;
    readonly INetworks _networks;
    readonly Ec2Store _ec2Store;
    readonly Compute.Contracts.IInstances _instances;
    readonly Images.Contracts.IImageCatalog _imageCatalog;
    readonly Identity.Contracts.IKeyPairs _keyPairs;
    readonly Pdisk.Contracts.IVolumeService _volumes;

    public Ec2Actions(Ec2Options options, ISecurityGroups securityGroups, INetworks networks, Ec2Store ec2Store,
        Compute.Contracts.IInstances instances, Images.Contracts.IImageCatalog imageCatalog, Identity.Contracts.IKeyPairs keyPairs,
        Pdisk.Contracts.IVolumeService volumes)
    {
        _keyPairs = keyPairs;
        _volumes = volumes;
        _instances = instances;
        _imageCatalog = imageCatalog;
        _options = options;
        _securityGroups = securityGroups;
        _networks = networks;
        _ec2Store = ec2Store;
        Register("DescribeRegions", DescribeRegions);
        Register("DescribeAvailabilityZones", DescribeAvailabilityZones);
        Register("CreateSecurityGroup", CreateSecurityGroup);
        Register("DescribeSecurityGroups", DescribeSecurityGroups);
        Register("DescribeSecurityGroupRules", DescribeSecurityGroupRules);
        Register("AuthorizeSecurityGroupIngress", AuthorizeSecurityGroupIngress);
        Register("AuthorizeSecurityGroupEgress", AuthorizeSecurityGroupEgress);
        Register("RevokeSecurityGroupIngress", RevokeSecurityGroupIngress);
        Register("RevokeSecurityGroupEgress", RevokeSecurityGroupEgress);
        Register("DeleteSecurityGroup", DeleteSecurityGroup);
        Register("DescribeVpcs", DescribeVpcs);
        Register("DescribeSubnets", DescribeSubnets);
        Register("DescribeAccountAttributes", DescribeAccountAttributes);
        RegisterInstanceActions();
        RegisterKeyPairActions();
        RegisterVolumeActions();
        RegisterAttributeActions();
    }

    public IReadOnlyCollection<string> Supported => _handlers.Keys;

    void Register(string action, Func<Ec2Request, CancellationToken, Task<IEnumerable<XElement>>> handler) => _handlers[action] = handler;

    public Task<IEnumerable<XElement>> RunAsync(Ec2Request request, CancellationToken ct) =>
        _handlers.TryGetValue(request.Action, out var handler)
            ? handler(request, ct)
            : throw new Ec2Exception("UnsupportedOperation",
                $"The action '{request.Action}' is not supported by this server. Supported actions: {string.Join(", ", _handlers.Keys.Order(StringComparer.Ordinal))}.");

    /// <summary>AWS's code and status for a module's rejection, by the action it happened in.</summary>
    public static (int Status, string Code) CodeFor(string action, DomainException e) => e.Kind switch
    {
        Rejection.NotFound => (400, NotFoundCode(action)),
        Rejection.Forbidden => (403, "UnauthorizedOperation"),
        Rejection.Conflict when e.Message.StartsWith("Quota", StringComparison.Ordinal) => (400, action == "RunInstances" ? "InstanceLimitExceeded" : "VolumeLimitExceeded"),
        Rejection.Conflict => (400, "IncorrectState"),
        Rejection.TooLarge => (400, "InvalidParameterValue"),
        Rejection.Unavailable => (503, "Unavailable"),
        Rejection.Unprocessable when action == "RunInstances" => (400, "InsufficientInstanceCapacity"),
        _ => (400, "InvalidParameterValue"),
    };

    static string NotFoundCode(string action) => action switch
    {
        _ when action.Contains("Volume", StringComparison.Ordinal) => "InvalidVolume.NotFound",
        _ when action.Contains("Snapshot", StringComparison.Ordinal) => "InvalidSnapshot.NotFound",
        _ when action.Contains("SecurityGroup", StringComparison.Ordinal) => "InvalidGroup.NotFound",
        _ when action.Contains("KeyPair", StringComparison.Ordinal) => "InvalidKeyPair.NotFound",
        _ when action.Contains("Image", StringComparison.Ordinal) => "InvalidAMIID.NotFound",
        _ => "InvalidInstanceID.NotFound",
    };

    static XElement Set(string name, IEnumerable<XElement> items) => new(Ns + name, items);

    static XElement Item(params object?[] content) => new(Ns + "item", content);

    static XElement E(string name, object? value) => new(Ns + name, value switch
    {
        null => null,
        bool b => b ? "true" : "false",
        DateTimeOffset t => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture),
        _ => value,
    });

    Task<IEnumerable<XElement>> DescribeRegions(Ec2Request request, CancellationToken ct)
    {
        var wanted = request.List("RegionName");
        if (wanted.FirstOrDefault(r => r != _options.Region) is { } unknown)
            throw new Ec2Exception("InvalidParameterValue", $"Invalid region: '{unknown}'. This server's only region is '{_options.Region}'.");
        IEnumerable<XElement> body =
        [
            Set("regionInfo", [Item(E("regionName", _options.Region), E("regionEndpoint", "/ec2/"), E("optInStatus", "opt-in-not-required"))]),
        ];
        return Task.FromResult(body);
    }

    Task<IEnumerable<XElement>> DescribeAvailabilityZones(Ec2Request request, CancellationToken ct)
    {
        var wanted = request.List("ZoneName");
        var zones = wanted.Count == 0 || wanted.Contains(_options.Zone) ? [_options.Zone] : Array.Empty<string>();
        if (wanted.FirstOrDefault(z => z != _options.Zone) is { } unknown)
            throw new Ec2Exception("InvalidParameterValue", $"The zone '{unknown}' does not exist; this server has one zone, '{_options.Zone}'.");
        IEnumerable<XElement> body =
        [
            Set("availabilityZoneInfo", zones.Select(z => Item(
                E("zoneName", z), E("zoneState", "available"), E("regionName", _options.Region), E("zoneId", _options.Region + "-az1"),
                E("zoneType", "availability-zone"), E("optInStatus", "opt-in-not-required"), Set("messageSet", [])))),
        ];
        return Task.FromResult(body);
    }
}
