using System.Globalization;
using StratusLab.Server.Modules.Pdisk.Contracts;

namespace StratusLab.Server.Modules.Occi;

/// <summary>storage (Pdisk volumes), network (Networking's networks) and the two links.</summary>
internal sealed partial class OcciDoor
{
    async Task<OcciResult> CreateStorageAsync(OcciCall call, CancellationToken ct)
    {
        var input = call.Input;
        RequireKind(input, OcciModel.Storage);
        RequireKnownAttributes(input, OcciModel.Storage);
        if (input.Attributes.ContainsKey("occi.core.id") || input.Attributes.ContainsKey("occi.storage.state"))
            throw new OcciException(400, "occi.core.id and occi.storage.state are set by the server; leave them out.");
        if (input.Links.Count + input.Locations.Count > 0)
            throw new OcciException(400, "A storage is created alone; link it to a compute afterwards with POST /link/storagelink/.");
        var tags = await UserMixinsAsync(call.Caller, input.Categories.Where(c => c.Class == "mixin"));
        var size = Num(input, "occi.storage.size")
            ?? throw new OcciException(400, "occi.storage.size is required: give the size in GB, e.g. X-OCCI-Attribute: occi.storage.size=1.");
        if (size != Math.Floor(size) || size < 1)
            throw new OcciException(400, $"occi.storage.size = {size} is not accepted; volumes are a whole number of GB (at least 1).");
        var created = await volumes.CreateAsync(call.Caller, (long)size, Str(input, "occi.core.title"), ct);
        var location = OcciModel.StoragePath + created.Uuid;
        foreach (var tag in tags) await store.TagAsync(tag.Id, [location], replace: false);
        var output = new OcciOutput();
        output.Locations.Add(location);
        return new OcciResult(201, output, location);
    }

    async Task<OcciResult> StorageAsync(OcciCall call, Guid uuid, CancellationToken ct)
    {
        var volume = await volumes.GetAsync(call.Caller, uuid, ct);
        var location = OcciModel.StoragePath + uuid;
        switch (call.Method)
        {
            case "GET":
                return OcciResult.Ok(await RenderStorageAsync(call, volume));
            case "DELETE":
                await volumes.DeleteAsync(call.Caller, uuid, ct);
                await store.ForgetAsync(location);
                return OcciResult.Ok();
            case "POST" when call.Action is not null:
                return await StorageActionAsync(call, volume, ct);
            case "POST" or "PUT":
            {
                var apply = await MixinUpdateAsync(call, location);
                CheckUnchanged(call.Input, await RenderStorageAsync(call, volume));
                await apply();
                return OcciResult.Ok(await RenderStorageAsync(call, volume));
            }
            default:
                throw NotAllowed(call, "GET, POST (an action or an update), PUT and DELETE");
        }
    }

    /// <summary>
    /// Pdisk keeps every READY volume online: online succeeds on it, offline is refused (there is no offline state);
    /// snapshot and backup both make a copy-on-write snapshot (a new storage, in the answer's Location), which Pdisk
    /// takes of ORIGIN volumes only.
    /// </summary>
    async Task<OcciResult> StorageActionAsync(OcciCall call, VolumeInfo volume, CancellationToken ct)
    {
        var action = OcciModel.ActionsOf(OcciModel.Storage).FirstOrDefault(a => a.Term == call.Action)
            ?? throw new OcciException(400, $"Unknown action '{Clip(call.Action!)}' for storage; it takes online, offline, backup and snapshot.");
        CheckActionRendering(call.Input, action);
        if (call.Input.Attributes.Count > 0)
            throw new OcciException(400, $"The action '{action.Term}' takes no attributes.");
        switch (action.Term)
        {
            case "online":
                if (volume.State != "READY")
                    throw new OcciException(409, $"The storage is {volume.State}, not READY; it comes online by itself when it is ready.");
                return OcciResult.Ok(await RenderStorageAsync(call, volume));
            case "offline":
                throw new OcciException(409, "Pdisk keeps every ready volume online; to stop a compute using it, delete its storagelink.");
            default:
                var snapshot = await volumes.SnapshotAsync(call.Caller, volume.Uuid, $"{action.Term}-{volume.Uuid}", ct: ct);
                var location = OcciModel.StoragePath + snapshot.Uuid;
                var output = new OcciOutput();
                output.Locations.Add(location);
                return new OcciResult(201, output, location);
        }
    }

    async Task<OcciOutput> RenderStorageAsync(OcciCall call, VolumeInfo v)
    {
        var output = new OcciOutput();
        var location = OcciModel.StoragePath + v.Uuid;
        output.Categories.Add(Short(OcciModel.Storage));
        output.Categories.AddRange((await store.MixinsTaggingAsync(call.Caller.UserId, location)).Select(UserMixin));
        if (v.State == "READY")
        {
            output.Links.Add(new OcciLink($"{location}?action=online", OcciModel.Online.Id, null, null, []));
            if (VolumeTypes.IsOrigin(v.Type))
            {
                output.Links.Add(new OcciLink($"{location}?action=snapshot", OcciModel.Snapshot.Id, null, null, []));
                output.Links.Add(new OcciLink($"{location}?action=backup", OcciModel.Backup.Id, null, null, []));
            }
        }
        foreach (var mount in v.Mounts)
            output.Links.Add(new OcciLink(OcciModel.ComputePath + mount.InstanceId.ToString(CultureInfo.InvariantCulture), OcciModel.Compute.Id,
                StorageLinkPath(mount.InstanceId, v.Uuid), OcciModel.StorageLink.Id, [new("occi.storagelink.deviceid", OcciValue.Str(DeviceId(mount.Device)))]));
        output.Attr("occi.core.id", OcciValue.Str(v.Uuid.ToString()));
        output.Attr("occi.core.title", v.Tag is null ? null : OcciValue.Str(v.Tag));
        output.Attr("occi.storage.size", OcciValue.Num(v.SizeGiB));
        output.Attr("occi.storage.state", OcciValue.Str(v.State == "READY" ? "online" : v.State == "CREATING" ? "offline" : "degraded"));
        output.Attr("org.stratuslab.type", OcciValue.Str(VolumeTypes.Name(v.Type)));
        output.Attr("org.stratuslab.state", OcciValue.Str(v.State));
        return output;
    }

    async Task<OcciResult> NetworkAsync(OcciCall call, long id, CancellationToken ct)
    {
        var network = (await networks.ListAsync(call.Caller, ct)).FirstOrDefault(n => n.Id == id)
            ?? throw new OcciException(404, $"/network/{id} does not exist, or you may not see it.");
        var location = OcciModel.NetworkPath + id.ToString(CultureInfo.InvariantCulture);
        OcciOutput Render()
        {
            var output = new OcciOutput();
            output.Categories.Add(Short(OcciModel.Network));
            output.Categories.Add(OcciModel.IpNetwork with { Attributes = null });
            output.Attr("occi.core.id", OcciValue.Str(network.Id.ToString(CultureInfo.InvariantCulture)));
            output.Attr("occi.core.title", OcciValue.Str(network.Name));
            output.Attr("occi.network.label", OcciValue.Str(network.Kind));
            output.Attr("occi.network.state", OcciValue.Str("active"));
            output.Attr("occi.network.address", OcciValue.Str(network.Cidr));
            output.Attr("occi.network.gateway", network.Gateway is null ? null : OcciValue.Str(network.Gateway));
            output.Attr("occi.network.allocation", OcciValue.Str("dynamic"));
            output.Attr("org.stratuslab.network.free", OcciValue.Num(network.Free));
            output.Attr("org.stratuslab.network.default", OcciValue.Bool(network.IsDefault));
            return output;
        }
        switch (call.Method)
        {
            case "GET":
                var rendered = Render();
                rendered.Categories.AddRange((await store.MixinsTaggingAsync(call.Caller.UserId, location)).Select(UserMixin));
                return OcciResult.Ok(rendered);
            case "POST" when call.Action is not null:
                throw new OcciException(400, $"Unknown action '{Clip(call.Action)}' for network: networks are always up here; administrators manage them through /api/v1/networks.");
            case "POST" or "PUT":
            {
                var apply = await MixinUpdateAsync(call, location);
                CheckUnchanged(call.Input, Render());
                await apply();
                return OcciResult.Ok(Render());
            }
            default:
                throw NotAllowed(call, "GET, POST and PUT (user mixins); administrators delete networks through /api/v1/networks");
        }
    }

    // ---- storagelink ----

    async Task<OcciResult> CreateStorageLinkAsync(OcciCall call, CancellationToken ct)
    {
        var input = call.Input;
        RequireKind(input, OcciModel.StorageLink);
        RequireKnownAttributes(input, OcciModel.StorageLink);
        if (input.Categories.FirstOrDefault(c => c.Class == "mixin") is { } mixin)
            throw new OcciException(400, $"Unknown mixin '{mixin.Id}' for a storagelink.");
        if (input.Attributes.ContainsKey("occi.storagelink.deviceid") || input.Attributes.ContainsKey("occi.storagelink.mountpoint"))
            throw new OcciException(400, "The guest device is chosen by the hypervisor (the answer's occi.storagelink.deviceid says which); leave deviceid and mountpoint out.");
        var source = TargetOf(input, "occi.core.source", null);
        var target = TargetOf(input, "occi.core.target", input.Links.FirstOrDefault());
        if (!source.StartsWith(OcciModel.ComputePath, StringComparison.Ordinal)
            || !long.TryParse(source[OcciModel.ComputePath.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var instanceId))
            throw new OcciException(400, $"occi.core.source {Clip(source)} is not a compute location (/compute/<id>).");
        if (!target.StartsWith(OcciModel.StoragePath, StringComparison.Ordinal) || !Guid.TryParseExact(target[OcciModel.StoragePath.Length..], "D", out var uuid))
            throw new OcciException(400, $"occi.core.target {Clip(target)} is not a storage location (/storage/<uuid>).");
        await volumes.AttachAsync(call.Caller, uuid, instanceId, ct: ct);
        var location = StorageLinkPath(instanceId, uuid);
        var output = new OcciOutput();
        output.Locations.Add(location);
        return new OcciResult(201, output, location);
    }

    async Task<OcciResult> StorageLinkAsync(OcciCall call, string id, CancellationToken ct)
    {
        var parts = id.Split('_');
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var instanceId)
            || !Guid.TryParseExact(parts[1], "D", out var uuid))
            throw new OcciException(404, $"Nothing exists at {OcciModel.StorageLinkPath}{Clip(id)}: storagelink ids are <compute id>_<storage uuid>.");
        var volume = await volumes.GetAsync(call.Caller, uuid, ct);
        var mount = volume.Mounts.FirstOrDefault(m => m.InstanceId == instanceId);
        var instance = mount is null ? null : await instances.GetAsync(call.Caller, instanceId, ct);
        if (mount is null || instance is null || instance.State == "DONE")
            throw new OcciException(404, $"{OcciModel.StorageLinkPath}{id} does not exist: the storage is not linked to /compute/{instanceId}.");
        switch (call.Method)
        {
            case "GET":
                var output = new OcciOutput();
                output.Categories.Add(Short(OcciModel.StorageLink));
                output.Attr("occi.core.id", OcciValue.Str(id));
                output.Attr("occi.core.source", OcciValue.Str(OcciModel.ComputePath + instanceId.ToString(CultureInfo.InvariantCulture)));
                output.Attr("occi.core.target", OcciValue.Str(OcciModel.StoragePath + uuid));
                output.Attr("occi.storagelink.deviceid", OcciValue.Str(DeviceId(mount.Device)));
                output.Attr("occi.storagelink.state", OcciValue.Str(instance.State == "RUNNING" ? "active" : "inactive"));
                output.Attr("org.stratuslab.readonly", OcciValue.Bool(mount.ReadOnly));
                return OcciResult.Ok(output);
            case "DELETE":
                await volumes.DetachAsync(call.Caller, uuid, instanceId, ct);
                return OcciResult.Ok();
            default:
                throw NotAllowed(call, "GET and DELETE");
        }
    }

    async Task<OcciResult> NetworkInterfaceAsync(OcciCall call, string id, CancellationToken ct)
    {
        var parts = id.Split('_');
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var instanceId)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            throw new OcciException(404, $"Nothing exists at {OcciModel.NetworkInterfacePath}{Clip(id)}: networkinterface ids are <compute id>_<index>.");
        var instance = await instances.GetAsync(call.Caller, instanceId, ct);
        var nic = instance.State == "DONE" ? null : instance.Nics.FirstOrDefault(n => n.Index == index)
            ?? throw new OcciException(404, $"{OcciModel.NetworkInterfacePath}{id} does not exist: /compute/{instanceId} has no interface {index}.");
        if (nic is null) throw new OcciException(404, $"{OcciModel.NetworkInterfacePath}{id} does not exist any more.");
        if (call.Method != "GET")
            throw NotAllowed(call, "GET (interfaces live as long as their compute)");
        var network = (await networks.ListAsync(call.Caller, ct)).FirstOrDefault(n => n.Name == nic.Network);
        var output = new OcciOutput();
        output.Categories.Add(Short(OcciModel.NetworkInterface));
        output.Categories.Add(OcciModel.IpNetworkInterface with { Attributes = null });
        output.Attr("occi.core.id", OcciValue.Str(id));
        output.Attr("occi.core.source", OcciValue.Str(OcciModel.ComputePath + instanceId.ToString(CultureInfo.InvariantCulture)));
        output.Attr("occi.core.target", OcciValue.Str(network is null ? OcciModel.NetworkPath : OcciModel.NetworkPath + network.Id.ToString(CultureInfo.InvariantCulture)));
        output.Attributes.AddRange(NicAttributes(instance, nic));
        output.Attr("occi.networkinterface.gateway", network?.Gateway is null ? null : OcciValue.Str(network.Gateway));
        return OcciResult.Ok(output);
    }
}
