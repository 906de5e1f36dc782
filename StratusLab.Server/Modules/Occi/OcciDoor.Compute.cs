using System.Globalization;
using System.Text;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;

namespace StratusLab.Server.Modules.Occi;

/// <summary>compute: create from os_tpl + resource_tpl (or cores/memory), render, update, actions, delete.</summary>
internal sealed partial class OcciDoor
{
    async Task<OcciResult> CreateComputeAsync(OcciCall call, CancellationToken ct)
    {
        var input = call.Input;
        RequireKind(input, OcciModel.Compute);
        RequireKnownAttributes(input, OcciModel.Compute, OcciModel.PublicKeyNameAttribute);
        if (input.Attributes.ContainsKey("occi.core.id") || input.Attributes.ContainsKey("occi.compute.state"))
            throw new OcciException(400, "occi.core.id and occi.compute.state are set by the server; leave them out.");
        if (input.Locations.Count > 0)
            throw new OcciException(400, "X-OCCI-Location is not taken when creating a compute; link networks and storages with Link headers.");

        string? image = null, type = null;
        var tags = new List<OcciCategory>();
        var osScheme = OsTplScheme(call.BaseUrl);
        var resScheme = ResourceTplScheme(call.BaseUrl);
        IReadOnlyList<OsTemplate>? templates = null;
        foreach (var mixin in input.Categories.Where(c => c.Class == "mixin"))
        {
            if (mixin.Scheme == osScheme)
            {
                templates ??= await OsTemplatesAsync(ct);
                var template = templates.FirstOrDefault(t => t.Term == mixin.Term)
                    ?? throw new OcciException(400, $"Unknown os_tpl mixin '{mixin.Id}': GET /-/ lists the images you may launch.");
                if (image is not null) throw new OcciException(400, "Give one os_tpl mixin: a compute boots one image.");
                image = template.Image;
            }
            else if (mixin.Scheme == resScheme)
            {
                var found = (await instances.ListTypesAsync(ct)).FirstOrDefault(t => OcciModel.Term(t.Name) == mixin.Term)
                    ?? throw new OcciException(400, $"Unknown resource_tpl mixin '{mixin.Id}': GET /-/ lists the instance types.");
                if (type is not null) throw new OcciException(400, "Give one resource_tpl mixin.");
                type = found.Name;
            }
            else if (mixin.Id is not (OcciModel.UserDataScheme + "user_data") and not (OcciModel.PublicKeyScheme + "public_key"))
                tags.Add(mixin);
        }
        var userMixins = await UserMixinsAsync(call.Caller, tags);

        var cores = Num(input, "occi.compute.cores");
        var memory = Num(input, "occi.compute.memory");
        if (cores is { } c && (c != Math.Floor(c) || c < 1 || c > 1024))
            throw new OcciException(400, $"occi.compute.cores = {c} is not accepted; give a whole number of cores (1..1024).");
        if (memory is { } m && (m <= 0 || m > 4096))
            throw new OcciException(400, $"occi.compute.memory = {m} is not accepted; give the memory in GB (e.g. 0.5 or 2).");
        if (Str(input, "occi.compute.architecture") is { } arch && arch != "x64")
            throw new OcciException(400, $"occi.compute.architecture = \"{Clip(arch)}\" is not offered; this site runs x64 computes.");
        if (Num(input, "occi.compute.speed") is not null)
            throw new OcciException(400, "occi.compute.speed cannot be chosen on this site; leave it out.");

        var networkNames = new List<string>();
        var volumeIds = new List<string>();
        IReadOnlyList<Networking.Contracts.NetworkInfo>? visibleNetworks = null;
        foreach (var link in input.Links)
        {
            if (link.Target.StartsWith(OcciModel.NetworkPath, StringComparison.Ordinal)
                && long.TryParse(link.Target[OcciModel.NetworkPath.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var netId))
            {
                visibleNetworks ??= await networks.ListAsync(call.Caller, ct);
                var network = visibleNetworks.FirstOrDefault(n => n.Id == netId) ?? throw new OcciException(404, $"{link.Target} does not exist, or you may not see it.");
                networkNames.Add(network.Name);
            }
            else if (link.Target.StartsWith(OcciModel.StoragePath, StringComparison.Ordinal) && Guid.TryParseExact(link.Target[OcciModel.StoragePath.Length..], "D", out var uuid))
                volumeIds.Add(uuid.ToString());
            else
                throw new OcciException(400, $"Link target {link.Target} is neither /network/<id> nor /storage/<uuid>; a new compute links to networks and storages.");
        }

        var sshKeys = Str(input, OcciModel.PublicKeyAttribute) is { } key ? new[] { key } : null;
        var userData = Str(input, OcciModel.UserDataAttribute) is { } encoded ? Base64UserData(encoded) : null;
        var context = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in input.Attributes.Where(a => a.Key.StartsWith(OcciModel.ContextPrefix, StringComparison.Ordinal)))
        {
            if (!value.IsString) throw new OcciException(400, $"X-OCCI-Attribute {name} must be a quoted string.");
            context[name[OcciModel.ContextPrefix.Length..].Replace('-', '_').ToUpperInvariant()] = value.Text;
        }
        var request = new CreateInstanceRequest(
            Image: image, InstanceType: type, Cpu: cores is null ? null : (int)cores.Value,
            MemoryMiB: memory is null ? null : (long)Math.Round(memory.Value * 1024), Name: Str(input, "occi.core.title"),
            Networks: networkNames.Count > 0 ? networkNames : null, Volumes: volumeIds.Count > 0 ? volumeIds : null,
            Context: context.Count > 0 ? context : null, SshKeys: sshKeys, UserData: userData, Hostname: Str(input, "occi.compute.hostname"),
            KeyName: Str(input, OcciModel.PublicKeyNameAttribute));
        var launched = await instances.LaunchAsync(call.Caller, request, ct);
        var view = launched[0];
        var location = OcciModel.ComputePath + view.Id.ToString(CultureInfo.InvariantCulture);
        foreach (var tag in userMixins) await store.TagAsync(tag.Id, [location], replace: false);
        var output = new OcciOutput();
        output.Locations.Add(location);
        return new OcciResult(201, output, location);
    }

    async Task<OcciResult> ComputeAsync(OcciCall call, long id, CancellationToken ct)
    {
        var view = await instances.GetAsync(call.Caller, id, ct);
        var location = OcciModel.ComputePath + id.ToString(CultureInfo.InvariantCulture);
        if (view.State == "DONE") throw new OcciException(404, $"{location} does not exist any more (it was deleted).");
        switch (call.Method)
        {
            case "GET":
                return OcciResult.Ok(await RenderComputeAsync(call.Caller, view, call.BaseUrl, ct));
            case "DELETE":
                await instances.TerminateAsync(call.Caller, id, ct);
                await store.ForgetAsync(location);
                return OcciResult.Ok();
            case "POST" when call.Action is not null:
                return await ComputeActionAsync(call, view, ct);
            case "POST" or "PUT":
            {
                // Everything is checked before anything changes: the title through Compute's rename, user mixins here.
                var apply = await MixinUpdateAsync(call, location);
                CheckUnchanged(call.Input, await RenderComputeAsync(call.Caller, view, call.BaseUrl, ct), "occi.core.title");
                if (Str(call.Input, "occi.core.title") is { } title && title != view.Name)
                    await instances.RenameAsync(call.Caller, id, title, ct);
                await apply();
                return OcciResult.Ok(await RenderComputeAsync(call.Caller, await instances.GetAsync(call.Caller, id, ct), call.BaseUrl, ct));
            }
            default:
                throw NotAllowed(call, "GET, POST (an action or an update), PUT and DELETE");
        }
    }

    async Task<OcciResult> ComputeActionAsync(OcciCall call, InstanceView view, CancellationToken ct)
    {
        var action = OcciModel.ActionsOf(OcciModel.Compute).FirstOrDefault(a => a.Term == call.Action)
            ?? throw new OcciException(400, $"Unknown action '{Clip(call.Action!)}' for compute; it takes start, stop, restart and suspend.");
        CheckActionRendering(call.Input, action);
        var method = Str(call.Input, "method");
        // stop: graceful and acpioff are the ACPI power-off (killed after Compute:ShutdownTimeoutSeconds), poweroff cuts the
        // power at once; restart: cold (and no method) is a hardware reset, graceful and warm power the guest off through ACPI
        // and boot it again (QEMU has no ACPI reboot button, so a warm reboot cannot be asked of the guest any other way).
        (string ours, InstanceActionOptions options) = (action.Term, method) switch
        {
            ("start", null) => (view.State == "SUSPENDED" ? "resume" : "start", new InstanceActionOptions()),
            ("stop", null or "graceful" or "acpioff") => ("stop", new InstanceActionOptions()),
            ("stop", "poweroff") => ("stop", new InstanceActionOptions(Force: true)),
            ("restart", null or "cold") => ("reboot", new InstanceActionOptions()),
            ("restart", "graceful" or "warm") => ("reboot", new InstanceActionOptions(Graceful: true)),
            ("suspend", null or "suspend" or "hibernate") => ("suspend", new InstanceActionOptions()),
            _ => throw new OcciException(400, $"method=\"{Clip(method!)}\" is not a method of {action.Term}" +
                                              (action.Term switch { "stop" => " (graceful, acpioff, poweroff)", "restart" => " (graceful, warm, cold)", "start" => " (it takes none)", _ => " (suspend, hibernate)" }) + "."),
        };
        var after = await instances.ActAsync(call.Caller, view.Id, ours, options, ct);
        return OcciResult.Ok(await RenderComputeAsync(call.Caller, after, call.BaseUrl, ct));
    }

    /// <summary>An action request may name its action's Category (and nothing else) and take only the 'method' attribute.</summary>
    static void CheckActionRendering(OcciInput input, OcciCategory action)
    {
        if (input.Categories.FirstOrDefault(c => c.Id != action.Id || c.Class != "action") is { } other)
            throw new OcciException(400, $"The Category '{other.Id}' does not name the action '{action.Term}'; give Category: {action.Term}; scheme=\"{action.Scheme}\"; class=\"action\".");
        if (input.Attributes.Keys.FirstOrDefault(k => k != "method") is { } attr)
            throw new OcciException(400, $"X-OCCI-Attribute {attr} is not an attribute of the action '{action.Term}' (it takes 'method').");
        if (input.Links.Count + input.Locations.Count > 0)
            throw new OcciException(400, "An action takes no Link or X-OCCI-Location.");
    }

    /// <summary>
    /// Checks an update's user mixins (PUT: exactly these; POST: these as well; kinds and templates cannot change) and returns
    /// the change to make once every other check has passed.
    /// </summary>
    async Task<Func<Task>> MixinUpdateAsync(OcciCall call, string location)
    {
        var ownScheme = call.BaseUrl + "/occi/";
        var tags = call.Input.Categories.Where(c => c.Class == "mixin" && !c.Scheme.StartsWith(ownScheme, StringComparison.Ordinal)
                                                    && c.Scheme != OcciModel.UserDataScheme && c.Scheme != OcciModel.PublicKeyScheme).ToList();
        if (call.Input.Categories.FirstOrDefault(c => c.Class == "action") is { } action)
            throw new OcciException(400, $"To run '{action.Term}', POST to {location}?action={action.Term}.");
        var rows = await UserMixinsAsync(call.Caller, tags);
        return async () =>
        {
            if (call.Method == "PUT")
                foreach (var current in await store.MixinsTaggingAsync(call.Caller.UserId, location))
                    if (rows.All(r => r.Id != current.Id)) await store.UntagAsync(current.Id, [location]);
            foreach (var row in rows) await store.TagAsync(row.Id, [location], replace: false);
        };
    }

    /// <summary>
    /// The attributes an update gives must be the entity's current values, but for <paramref name="changeable"/> (done by the
    /// caller through the services): what else this site lets change is done by actions.
    /// </summary>
    static void CheckUnchanged(OcciInput input, OcciOutput current, params string[] changeable)
    {
        foreach (var (name, value) in input.Attributes)
        {
            if (changeable.Contains(name))
            {
                if (!value.IsString) throw new OcciException(400, $"X-OCCI-Attribute {name} must be a quoted string.");
                continue;
            }
            var now = current.Attributes.FirstOrDefault(a => a.Key == name).Value;
            if (now is null || now.Text != value.Text)
                throw new OcciException(400, $"X-OCCI-Attribute {name} cannot be changed on this site once the entity exists (it is {(now is null ? "not set" : OcciRendering.Render(name, now))}); " +
                                             $"an update changes {(changeable.Length == 0 ? "" : string.Join(", ", changeable) + " and ")}user mixins only.");
        }
    }

    async Task<OcciOutput> RenderComputeAsync(Caller caller, InstanceView v, string baseUrl, CancellationToken ct)
    {
        var output = new OcciOutput();
        var location = OcciModel.ComputePath + v.Id.ToString(CultureInfo.InvariantCulture);
        output.Categories.Add(Short(OcciModel.Compute));
        output.Categories.Add(new OcciCategory(OcciModel.Term(v.Image), OsTplScheme(baseUrl), "mixin", v.Image, OcciModel.OsTpl.Id));
        if (v.InstanceType is { } type)
            output.Categories.Add(new OcciCategory(OcciModel.Term(type), ResourceTplScheme(baseUrl), "mixin", type, OcciModel.ResourceTpl.Id));
        output.Categories.AddRange((await store.MixinsTaggingAsync(caller.UserId, location)).Select(UserMixin));
        // What the guest was contextualised with, as the create request gave it (the per-instance guest token is never shown).
        var userData = await instances.UserDataAsync(caller, v.Id, ct);
        if (userData is not null) output.Categories.Add(OcciModel.UserData with { Attributes = null });
        if (v.SshKeys.Count > 0) output.Categories.Add(OcciModel.PublicKey with { Attributes = null });

        var allowed = v.AllowedActions;
        foreach (var action in OcciModel.ActionsOf(OcciModel.Compute))
        {
            var ours = action.Term switch { "start" => new[] { "start", "resume" }, "stop" => ["stop"], "restart" => ["reboot"], _ => ["suspend"] };
            if (ours.Any(allowed.Contains))
                output.Links.Add(new OcciLink($"{location}?action={action.Term}", action.Id, null, null, []));
        }
        if (v.Nics.Count > 0)
        {
            var byName = (await networks.ListAsync(caller, ct)).ToDictionary(n => n.Name, StringComparer.Ordinal);
            foreach (var nic in v.Nics)
                output.Links.Add(new OcciLink(
                    byName.TryGetValue(nic.Network, out var net) ? OcciModel.NetworkPath + net.Id.ToString(CultureInfo.InvariantCulture) : OcciModel.NetworkPath,
                    OcciModel.Network.Id, NetworkInterfacePath(v.Id, nic.Index), OcciModel.NetworkInterface.Id + " " + OcciModel.IpNetworkInterface.Id,
                    NicAttributes(v, nic)));
        }
        foreach (var (volume, mount) in await MountsOfAsync(caller, v.Id, ct))
            output.Links.Add(new OcciLink(OcciModel.StoragePath + volume.Uuid, OcciModel.Storage.Id, StorageLinkPath(v.Id, volume.Uuid), OcciModel.StorageLink.Id,
                [new("occi.storagelink.deviceid", OcciValue.Str(DeviceId(mount.Device))), new("occi.storagelink.state", OcciValue.Str("active"))]));

        output.Attr("occi.core.id", OcciValue.Str(v.Id.ToString(CultureInfo.InvariantCulture)));
        output.Attr("occi.core.title", OcciValue.Str(v.Name));
        output.Attr("occi.compute.architecture", OcciValue.Str("x64"));
        output.Attr("occi.compute.cores", OcciValue.Num(v.Cpu));
        output.Attr("occi.compute.memory", OcciValue.Num(v.MemoryMiB / 1024.0));
        output.Attr("occi.compute.hostname", v.Hostname is null ? null : OcciValue.Str(v.Hostname));
        output.Attr("occi.compute.state", OcciValue.Str(OcciModel.ComputeState(v.State)));
        output.Attr("org.stratuslab.state", OcciValue.Str(v.State));
        output.Attr("org.stratuslab.ready", OcciValue.Bool(v.Ready));
        output.Attr("org.stratuslab.failure", v.FailureReason is null ? null : OcciValue.Str($"{v.FailedStep}: {v.FailureReason}"));
        output.Attr(OcciModel.UserDataAttribute, userData is null ? null : OcciValue.Str(Convert.ToBase64String(Encoding.UTF8.GetBytes(userData))));
        // One key fits the attribute (a rendered value has no line breaks): the first, the request's own when it gave one.
        output.Attr(OcciModel.PublicKeyAttribute, v.SshKeys.Count == 0 ? null : OcciValue.Str(v.SshKeys[0]));
        output.Attr(OcciModel.PublicKeyNameAttribute, v.KeyName is null ? null : OcciValue.Str(v.KeyName));
        foreach (var (key, value) in v.Context.OrderBy(c => c.Key, StringComparer.Ordinal))
            output.Attr(OcciModel.ContextPrefix + key.ToLowerInvariant(), OcciValue.Str(value));
        return output;
    }

    static List<KeyValuePair<string, OcciValue>> NicAttributes(InstanceView v, InstanceNic nic) =>
    [
        new("occi.networkinterface.interface", OcciValue.Str("eth" + nic.Index.ToString(CultureInfo.InvariantCulture))),
        new("occi.networkinterface.mac", OcciValue.Str(nic.Mac)),
        new("occi.networkinterface.address", OcciValue.Str(nic.Ip)),
        new("occi.networkinterface.allocation", OcciValue.Str("dynamic")),
        new("occi.networkinterface.state", OcciValue.Str(v.State == "RUNNING" ? "active" : "inactive")),
    ];

    /// <summary>The guest device of a mount: boot disks by name, hot-plugged ones by the serial the hypervisor gives them.</summary>
    public static string DeviceId(string device) =>
        device.Length >= 3 && device.StartsWith("vd", StringComparison.Ordinal) && device[2..].All(char.IsAsciiLetterLower) ? "/dev/" + device : "/dev/disk/by-id/virtio-" + device;

    async Task<IReadOnlyList<(VolumeInfo Volume, VolumeMountInfo Mount)>> MountsOfAsync(Caller caller, long instanceId, CancellationToken ct) =>
        (await volumes.ListAsync(caller, ct: ct)).SelectMany(v => v.Mounts.Where(m => m.InstanceId == instanceId).Select(m => (v, m))).ToList();

    static OcciCategory Short(OcciCategory kind) => kind with { Attributes = null, Actions = null };
}
