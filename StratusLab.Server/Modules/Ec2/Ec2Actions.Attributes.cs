using System.Text;
using System.Xml.Linq;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// Instance attributes as Terraform's aws_instance reads them after every plan and apply: DescribeInstanceAttribute
/// (one attribute per call), ModifyInstanceAttribute (only values equal to what this cloud has; anything else is
/// UnsupportedOperation naming the attribute) and DescribeInstanceCreditSpecifications (every instance is 'standard').
/// </summary>
internal sealed partial class Ec2Actions
{
    /// <summary>The fixed attributes of every instance here, as AWS names them, with the value reported and accepted unchanged.</summary>
    static readonly IReadOnlyDictionary<string, string> FixedAttributes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["disableApiTermination"] = "false",
        ["disableApiStop"] = "false",
        ["instanceInitiatedShutdownBehavior"] = "stop",
        ["sourceDestCheck"] = "true",
        ["ebsOptimized"] = "false",
        ["enaSupport"] = "false",
        ["sriovNetSupport"] = "simple",
    };

    static readonly string[] AttributeNames =
        ["instanceType", "kernel", "ramdisk", "userData", "disableApiTermination", "instanceInitiatedShutdownBehavior", "rootDeviceName",
         "blockDeviceMapping", "productCodes", "sourceDestCheck", "groupSet", "ebsOptimized", "sriovNetSupport", "enaSupport", "enclaveOptions", "disableApiStop"];

    void RegisterAttributeActions()
    {
        Register("DescribeInstanceAttribute", DescribeInstanceAttribute);
        Register("ModifyInstanceAttribute", ModifyInstanceAttribute);
        Register("DescribeInstanceCreditSpecifications", DescribeInstanceCreditSpecifications);
    }

    async Task<(string AwsId, InstanceView View)> OneInstanceAsync(Ec2Request request, CancellationToken ct)
    {
        var id = request.Require("InstanceId");
        var natives = await NativeInstanceIdsAsync([id]);
        try { return (id, await _instances.GetAsync(request.Caller, natives[id], ct)); }
        catch (NotFoundException) { throw new Ec2Exception("InvalidInstanceID.NotFound", $"The instance ID '{id}' does not exist"); }
    }

    async Task<IEnumerable<XElement>> DescribeInstanceAttribute(Ec2Request request, CancellationToken ct)
    {
        var attribute = request.Require("Attribute");
        if (!AttributeNames.Contains(attribute))
            throw Ec2Exception.InvalidParameterValue("Attribute", attribute, $"Accepted: {string.Join(", ", AttributeNames)}.");
        var (awsId, view) = await OneInstanceAsync(request, ct);
        static XElement Value(string name, object? value) => new(Ns + name, value is null ? null : E("value", value));
        XElement body = attribute switch
        {
            "instanceType" => Value(attribute, view.InstanceType ?? "custom"),
            "userData" => Value(attribute, await _instances.UserDataAsync(request.Caller, view.Id, ct) is { } data ? Convert.ToBase64String(Encoding.UTF8.GetBytes(data)) : null),
            "kernel" or "ramdisk" => Value(attribute, null),
            "rootDeviceName" => Value(attribute, "/dev/vda"),
            "blockDeviceMapping" => Set(attribute, []),
            "productCodes" => Set(attribute, []),
            "groupSet" => Set(attribute, []),
            "enclaveOptions" => new XElement(Ns + attribute, E("enabled", false)),
            "ebsOptimized" or "enaSupport" or "disableApiTermination" or "disableApiStop" or "sourceDestCheck" =>
                Value(attribute, bool.Parse(FixedAttributes[attribute])),
            _ => Value(attribute, FixedAttributes[attribute]),
        };
        return [E("instanceId", awsId), body];
    }

    async Task<IEnumerable<XElement>> ModifyInstanceAttribute(Ec2Request request, CancellationToken ct)
    {
        var (awsId, view) = await OneInstanceAsync(request, ct);
        // Either Attribute=name&Value=v, or Name.Value=v (the structured form SDKs send), one attribute per call as in AWS.
        var changes = new List<(string Name, string Value)>();
        if (request.Get("Attribute") is { Length: > 0 } attribute)
            changes.Add((attribute, request.Get("Value") ?? throw Ec2Exception.MissingParameter("Value")));
        foreach (var (key, value) in request.Parameters)
        {
            if (!key.EndsWith(".Value", StringComparison.Ordinal) || key.Contains("Filter", StringComparison.Ordinal)) continue;
            var name = key[..^6];
            changes.Add((char.ToLowerInvariant(name[0]) + name[1..], value));
        }
        if (request.List("GroupId").Count > 0) changes.Add(("groupSet", string.Join(",", request.List("GroupId"))));
        if (request.Get("BlockDeviceMapping.1.DeviceName") is not null) changes.Add(("blockDeviceMapping", "given"));
        if (changes.Count == 0)
            throw Ec2Exception.MissingParameter("Attribute (or one of DisableApiTermination.Value, InstanceType.Value, UserData.Value, ...)");
        if (changes.Count > 1)
            throw new Ec2Exception("InvalidParameterCombination", $"Fields for multiple attribute types specified: {string.Join(", ", changes.Select(c => c.Name))}. Modify one attribute per call.");
        var (changed, wanted) = changes[0];
        var current = changed switch
        {
            "instanceType" => view.InstanceType ?? "custom",
            _ => FixedAttributes.GetValueOrDefault(changed),
        };
        if (current is not null && string.Equals(current, wanted, StringComparison.OrdinalIgnoreCase))
            return [E("return", true)]; // the value it already has: nothing to do, as AWS
        throw new Ec2Exception("UnsupportedOperation", changed switch
        {
            "instanceType" => $"Changing the instance type of '{awsId}' is not supported by this server (it stays '{current}'); launch a new instance of type '{wanted}' instead.",
            "userData" => $"Changing the user data of '{awsId}' is not supported by this server: user data is written into the instance's context at launch; launch a new instance with the new user data.",
            _ when current is not null => $"The attribute '{changed}' of '{awsId}' is always '{current}' on this server; '{wanted}' is not supported.",
            _ => $"Modifying the attribute '{changed}' is not supported by this server.",
        });
    }

    async Task<IEnumerable<XElement>> DescribeInstanceCreditSpecifications(Ec2Request request, CancellationToken ct)
    {
        var ids = request.List("InstanceId");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "instances", ids.Count > 0 ? "InstanceIds" : null);
        var views = await VisibleInstancesAsync(request, ids, ct);
        var awsIds = await _ec2Store.IdsForAsync(Ec2Kind.Instance, views.Select(v => NativeOf(v.Id)).ToList());
        var page = views.Skip(offset).Take(max).ToList();
        return
        [
            Set("instanceCreditSpecificationSet", page.Select(v => Item(E("instanceId", awsIds[NativeOf(v.Id)]), E("cpuCredits", "standard")))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, views.Count),
        ];
    }
}
