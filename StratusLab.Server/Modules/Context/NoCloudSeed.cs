using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Context.Contracts;

namespace StratusLab.Server.Modules.Context;

/// <summary>
/// The files of a cloud-init NoCloud seed (a CD labelled cidata). meta-data, vendor-data and network-config are
/// written as JSON, which is YAML too, so no value can break out of its quoting; user-data is the user's, verbatim.
/// </summary>
internal static class NoCloudSeed
{
    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static IReadOnlyList<(string Name, string Content)> Files(ContextRequest request)
    {
        var files = new List<(string, string)>
        {
            ("meta-data", MetaData(request)),
            // NoCloud needs the file even when empty.
            ("user-data", request.UserData ?? ""),
            ("network-config", NetworkConfig(request.Nics)),
        };
        if (VendorData(request) is { } vendor) files.Add(("vendor-data", vendor));
        // context.sh too (without the user data, which is in user-data): agents such as this cloud's appliance read it from any CD.
        files.Add(("context.sh", ContextScript.Render(ContextScript.OpenNebulaVariables(request with { UserData = null }))));
        return files;
    }

    public static string MetaData(ContextRequest request)
    {
        var meta = new JsonObject { ["instance-id"] = request.InstanceUid ?? "iid-stratuslab" };
        if (request.Hostname is { } hostname) meta["local-hostname"] = hostname;
        if (request.SshKeys.Count > 0) meta["public-keys"] = new JsonArray(request.SshKeys.Select(k => (JsonNode)k).ToArray());
        return meta.ToJsonString(Indented) + "\n";
    }

    /// <summary>Network config version 2: each NIC matched by its MAC, with the leased address (static, no DHCP wait).</summary>
    public static string NetworkConfig(IReadOnlyList<ContextNic> nics)
    {
        var ethernets = new JsonObject();
        foreach (var nic in nics)
        {
            var name = "eth" + nic.Index;
            var eth = new JsonObject
            {
                ["match"] = new JsonObject { ["macaddress"] = nic.Mac.ToLowerInvariant() },
                ["set-name"] = name,
                ["addresses"] = new JsonArray($"{nic.Ip}/{PrefixLength(nic.Mask)}"),
            };
            if (nic.Gateway is not null) eth["gateway4"] = nic.Gateway;
            if (nic.Dns.Count > 0) eth["nameservers"] = new JsonObject { ["addresses"] = new JsonArray(nic.Dns.Select(d => (JsonNode)d).ToArray()) };
            if (nic.Mtu is { } mtu) eth["mtu"] = mtu;
            ethernets[name] = eth;
        }
        return new JsonObject { ["version"] = 2, ["ethernets"] = ethernets }.ToJsonString(Indented) + "\n";
    }

    /// <summary>The vendor part: cloud-init's phone_home posts to the guest API when the boot is done (the user's data may override it).</summary>
    public static string? VendorData(ContextRequest request)
    {
        if (request.PhoneHomeUrl is not { } url) return null;
        var config = new JsonObject
        {
            ["phone_home"] = new JsonObject { ["url"] = url, ["post"] = new JsonArray("instance_id", "hostname"), ["tries"] = 10 },
        };
        return "#cloud-config\n" + config.ToJsonString(Indented) + "\n";
    }

    public static int PrefixLength(string mask)
    {
        if (int.TryParse(mask, out var bits) && bits is >= 0 and <= 32) return bits;
        var bytes = IPAddress.Parse(mask).GetAddressBytes();
        return bytes.Sum(b => System.Numerics.BitOperations.PopCount(b));
    }
}
