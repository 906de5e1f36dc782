namespace StratusLab.Server.Modules.Occi;

/// <summary>The OCCI Core (GFD.183) and Infrastructure (GFD.184) categories this server serves, and its own extensions.</summary>
internal static class OcciModel
{
    public const string Core = "http://schemas.ogf.org/occi/core#";
    public const string Infra = "http://schemas.ogf.org/occi/infrastructure#";
    public const string ComputeActions = "http://schemas.ogf.org/occi/infrastructure/compute/action#";
    public const string StorageActions = "http://schemas.ogf.org/occi/infrastructure/storage/action#";
    public const string NetworkActions = "http://schemas.ogf.org/occi/infrastructure/network/action#";
    /// <summary>The extension mixins EGI's clients used for user data and an SSH key (as OpenStack's OCCI interface named them).</summary>
    public const string UserDataScheme = "http://schemas.openstack.org/compute/instance#";
    public const string PublicKeyScheme = "http://schemas.openstack.org/instance/credentials#";
    public const string UserDataAttribute = "org.openstack.compute.user_data";
    public const string PublicKeyAttribute = "org.openstack.credentials.publickey.data";
    public const string PublicKeyNameAttribute = "org.openstack.credentials.publickey.name";
    /// <summary>Context variables: org.stratuslab.context.greeting="hello" gives the guest GREETING=hello.</summary>
    public const string ContextPrefix = "org.stratuslab.context.";

    public const string ComputePath = "/compute/";
    public const string StoragePath = "/storage/";
    public const string NetworkPath = "/network/";
    public const string StorageLinkPath = "/link/storagelink/";
    public const string NetworkInterfacePath = "/link/networkinterface/";
    public const string TagsPath = "/tags/";

    static readonly string[] EntityAttributes = ["occi.core.id{immutable}", "occi.core.title"];
    static readonly string[] LinkAttributes = ["occi.core.id{immutable}", "occi.core.title", "occi.core.source{required}", "occi.core.target{required}"];

    public static readonly OcciCategory Entity = new("entity", Core, "kind", "Entity", null, null, EntityAttributes);
    public static readonly OcciCategory Resource = new("resource", Core, "kind", "Resource", Core + "entity", null, [.. EntityAttributes, "occi.core.summary"]);
    public static readonly OcciCategory Link = new("link", Core, "kind", "Link", Core + "entity", null, LinkAttributes);

    public static readonly OcciCategory Start = new("start", ComputeActions, "action", "Start the compute (resume it when suspended)");
    public static readonly OcciCategory Stop = new("stop", ComputeActions, "action",
        "Stop the compute, keeping its disk (graceful/acpioff: ACPI power-off; poweroff: at once)", Attributes: ["method"]);
    public static readonly OcciCategory Restart = new("restart", ComputeActions, "action",
        "Restart the compute (cold, the default: a reset; graceful/warm: ACPI power-off, then boot)", Attributes: ["method"]);
    public static readonly OcciCategory Suspend = new("suspend", ComputeActions, "action", "Suspend the compute (paused in memory)", Attributes: ["method"]);

    public static readonly OcciCategory Online = new("online", StorageActions, "action", "Bring the storage online");
    public static readonly OcciCategory Offline = new("offline", StorageActions, "action", "Take the storage offline");
    public static readonly OcciCategory Backup = new("backup", StorageActions, "action", "Back the storage up (a copy-on-write snapshot)");
    public static readonly OcciCategory Snapshot = new("snapshot", StorageActions, "action", "A copy-on-write snapshot of the storage");

    public static readonly OcciCategory Compute = new("compute", Infra, "kind", "Compute Resource", Core + "resource", ComputePath,
        [.. EntityAttributes, "occi.compute.architecture", "occi.compute.cores", "occi.compute.hostname", "occi.compute.memory", "occi.compute.speed",
            "occi.compute.state{immutable}", UserDataAttribute, PublicKeyAttribute],
        [Start.Id, Stop.Id, Restart.Id, Suspend.Id]);

    public static readonly OcciCategory Storage = new("storage", Infra, "kind", "Storage Resource", Core + "resource", StoragePath,
        [.. EntityAttributes, "occi.storage.size{required}", "occi.storage.state{immutable}"],
        [Online.Id, Offline.Id, Backup.Id, Snapshot.Id]);

    public static readonly OcciCategory Network = new("network", Infra, "kind", "Network Resource", Core + "resource", NetworkPath,
        [.. EntityAttributes, "occi.network.vlan", "occi.network.label", "occi.network.state{immutable}"]);

    public static readonly OcciCategory StorageLink = new("storagelink", Infra, "kind", "Storage Link", Core + "link", StorageLinkPath,
        [.. LinkAttributes, "occi.storagelink.deviceid", "occi.storagelink.mountpoint", "occi.storagelink.state{immutable}"]);

    public static readonly OcciCategory NetworkInterface = new("networkinterface", Infra, "kind", "Network Interface", Core + "link", NetworkInterfacePath,
        [.. LinkAttributes, "occi.networkinterface.interface{immutable}", "occi.networkinterface.mac{immutable}", "occi.networkinterface.state{immutable}"]);

    public static readonly OcciCategory IpNetwork = new("ipnetwork", "http://schemas.ogf.org/occi/infrastructure/network#", "mixin", "IP Network Mixin", null, null,
        ["occi.network.address", "occi.network.gateway", "occi.network.allocation"]);

    public static readonly OcciCategory IpNetworkInterface = new("ipnetworkinterface", "http://schemas.ogf.org/occi/infrastructure/networkinterface#", "mixin",
        "IP Network Interface Mixin", null, null, ["occi.networkinterface.address", "occi.networkinterface.gateway", "occi.networkinterface.allocation"]);

    public static readonly OcciCategory OsTpl = new("os_tpl", Infra, "mixin", "OS Template", null, null);
    public static readonly OcciCategory ResourceTpl = new("resource_tpl", Infra, "mixin", "Resource Template", null, null);

    public static readonly OcciCategory UserData = new("user_data", UserDataScheme, "mixin", "User data given to the guest (base64)", null, null, [UserDataAttribute]);
    public static readonly OcciCategory PublicKey = new("public_key", PublicKeyScheme, "mixin", "An SSH public key for the guest", null, null,
        [PublicKeyAttribute, PublicKeyNameAttribute]);

    /// <summary>Every fixed category, in the order the query interface lists them.</summary>
    public static readonly IReadOnlyList<OcciCategory> Fixed =
    [
        Entity, Resource, Link, Compute, Storage, Network, StorageLink, NetworkInterface, IpNetwork, IpNetworkInterface, OsTpl, ResourceTpl,
        UserData, PublicKey, Start, Stop, Restart, Suspend, Online, Offline, Backup, Snapshot,
    ];

    /// <summary>The actions of a kind, by term.</summary>
    public static IReadOnlyList<OcciCategory> ActionsOf(OcciCategory kind) => kind == Compute ? [Start, Stop, Restart, Suspend]
        : kind == Storage ? [Online, Offline, Backup, Snapshot] : [];

    /// <summary>
    /// OCCI's compute state from ours: RUNNING is active, SUSPENDED is suspended, everything else (on its way up, stopped,
    /// on its way down, failed) is inactive; org.stratuslab.state carries our state itself.
    /// </summary>
    public static string ComputeState(string state) => state switch
    {
        "RUNNING" => "active",
        "SUSPENDED" => "suspended",
        _ => "inactive",
    };

    /// <summary>An image or type name as a term (other characters become '_').</summary>
    public static string Term(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray();
        var term = new string(chars);
        return term.Length > 0 && char.IsAsciiLetterOrDigit(term[0]) ? term : "x" + term;
    }
}
