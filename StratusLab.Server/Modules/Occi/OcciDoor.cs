using System.Globalization;
using System.Text;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Occi;

/// <summary>One OCCI request, parsed: method, normalized path, ?action=, the rendering, the caller and the site URL.</summary>
internal sealed record OcciCall(string Method, string Path, string? Action, OcciInput Input, Caller Caller, string BaseUrl);

/// <summary>What to answer: status, the rendering, and the Location of a created entity.</summary>
internal sealed record OcciResult(int Status, OcciOutput Output, string? Location = null)
{
    public static OcciResult Ok(OcciOutput? output = null) => new(200, output ?? new OcciOutput());
}

/// <summary>An os_tpl: a launchable image by term, with what a launch request names it by.</summary>
internal sealed record OsTemplate(string Term, string Image, string Title);

/// <summary>
/// The OCCI door's logic: maps GFD.184's entities onto the modules' application services (Compute's IInstances,
/// Pdisk's IVolumeService, Networking's INetworks, Images' catalog and the Marketplace's policy). It decides nothing
/// the services decide: permissions, quotas, the image policy and validation are theirs.
/// </summary>
internal sealed partial class OcciDoor(
    IInstances instances, IVolumeService volumes, INetworks networks, IImageCatalog catalog, IImagePolicy policy, OcciStore store, ServerOptions options)
{
    public string BaseUrl(HttpContext http) =>
        options.PublicUrl.Length > 0 ? options.PublicUrl.TrimEnd('/') : $"{http.Request.Scheme}://{http.Request.Host}";

    public static string OsTplScheme(string baseUrl) => baseUrl + "/occi/os_tpl#";
    public static string ResourceTplScheme(string baseUrl) => baseUrl + "/occi/resource_tpl#";

    public Task<OcciResult> RunAsync(OcciCall call, CancellationToken ct)
    {
        var path = call.Path;
        if (path is "/-/" or "/.well-known/org/ogf/occi/-/")
            return call.Method switch
            {
                "GET" => QueryAsync(call, ct),
                "POST" => AddMixinAsync(call),
                "DELETE" => DeleteMixinAsync(call),
                _ => throw NotAllowed(call, "GET, POST (add a mixin) and DELETE (remove a mixin)"),
            };
        if (path.StartsWith(OcciModel.TagsPath, StringComparison.Ordinal)) return TagCollectionAsync(call, ct);
        foreach (var (prefix, kind) in new[]
                 {
                     (OcciModel.ComputePath, OcciModel.Compute), (OcciModel.StoragePath, OcciModel.Storage), (OcciModel.NetworkPath, OcciModel.Network),
                     (OcciModel.StorageLinkPath, OcciModel.StorageLink), (OcciModel.NetworkInterfacePath, OcciModel.NetworkInterface),
                 })
        {
            if (!path.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var id = path[prefix.Length..];
            if (call.Action is not null && (id.Length == 0 || call.Method != "POST"))
                throw new OcciException(400, $"?action= is for POST on a single {kind.Term}, e.g. POST {prefix}<id>?action=<term>.");
            return id.Length == 0 ? CollectionAsync(call, kind, ct) : EntityAsync(call, kind, id, ct);
        }
        throw new OcciException(404, $"Nothing exists at {path}.");
    }

    static OcciException NotAllowed(OcciCall call, string allowed) => new(405, $"{call.Method} is not allowed on {call.Path}; it takes {allowed}.");

    Task<OcciResult> CollectionAsync(OcciCall call, OcciCategory kind, CancellationToken ct) => (call.Method, kind.Term) switch
    {
        ("GET", _) => ListAsync(call, kind, ct),
        ("POST", "compute") => CreateComputeAsync(call, ct),
        ("POST", "storage") => CreateStorageAsync(call, ct),
        ("POST", "storagelink") => CreateStorageLinkAsync(call, ct),
        ("POST", "network") => throw new OcciException(405,
            "Networks are made by administrators through the REST API (POST /api/v1/networks); OCCI lists them and links computes to them."),
        ("POST", "networkinterface") => throw new OcciException(405,
            "Network interfaces are made with their compute: give a Link to /network/<id> when you create it (hot-plugged NICs are not offered)."),
        _ => throw NotAllowed(call, kind.Term is "compute" or "storage" or "storagelink" ? "GET and POST" : "GET"),
    };

    async Task<OcciResult> ListAsync(OcciCall call, OcciCategory kind, CancellationToken ct)
    {
        RequireOnlyCategories(call.Input, kind);
        var output = new OcciOutput();
        output.Locations.AddRange(await LocationsAsync(call.Caller, kind, ct));
        return OcciResult.Ok(output);
    }

    async Task<IReadOnlyList<string>> LocationsAsync(Caller caller, OcciCategory kind, CancellationToken ct)
    {
        switch (kind.Term)
        {
            case "compute":
                return (await VisibleInstancesAsync(caller, ct)).Select(v => OcciModel.ComputePath + v.Id.ToString(CultureInfo.InvariantCulture)).ToList();
            case "storage":
                return (await volumes.ListAsync(caller, ct: ct)).Where(v => v.State != "QUARANTINED").Select(v => OcciModel.StoragePath + v.Uuid).ToList();
            case "network":
                return (await networks.ListAsync(caller, ct)).Select(n => OcciModel.NetworkPath + n.Id.ToString(CultureInfo.InvariantCulture)).ToList();
            case "storagelink":
            {
                var live = (await VisibleInstancesAsync(caller, ct)).Select(v => v.Id).ToHashSet();
                return (await volumes.ListAsync(caller, ct: ct)).SelectMany(v => v.Mounts.Where(m => live.Contains(m.InstanceId)).Select(m => StorageLinkPath(m.InstanceId, v.Uuid))).ToList();
            }
            default:
                return (await VisibleInstancesAsync(caller, ct)).SelectMany(v => v.Nics.Select(n => NetworkInterfacePath(v.Id, n.Index))).ToList();
        }
    }

    async Task<IReadOnlyList<InstanceView>> VisibleInstancesAsync(Caller caller, CancellationToken ct)
    {
        var all = new List<InstanceView>();
        for (var offset = 0; ; offset += 1000)
        {
            var page = await instances.ListAsync(caller, new InstanceQuery(Limit: 1000, Offset: offset), ct);
            all.AddRange(page.Where(v => v.State != "DONE"));
            if (page.Count < 1000) return all;
        }
    }

    Task<OcciResult> EntityAsync(OcciCall call, OcciCategory kind, string id, CancellationToken ct) => kind.Term switch
    {
        "compute" => ComputeAsync(call, ParseLong(kind, id), ct),
        "storage" => StorageAsync(call, ParseGuid(id), ct),
        "network" => NetworkAsync(call, ParseLong(kind, id), ct),
        "storagelink" => StorageLinkAsync(call, id, ct),
        _ => NetworkInterfaceAsync(call, id, ct),
    };

    static long ParseLong(OcciCategory kind, string id) =>
        long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n : throw new OcciException(404, $"Nothing exists at /{kind.Term}/{Clip(id)}: {kind.Term} ids are numbers.");

    static Guid ParseGuid(string id) =>
        Guid.TryParseExact(id, "D", out var g) ? g : throw new OcciException(404, $"Nothing exists at /storage/{Clip(id)}: storage ids are UUIDs.");

    public static string StorageLinkPath(long instance, Guid volume) => $"{OcciModel.StorageLinkPath}{instance.ToString(CultureInfo.InvariantCulture)}_{volume}";
    public static string NetworkInterfacePath(long instance, int index) => $"{OcciModel.NetworkInterfacePath}{instance.ToString(CultureInfo.InvariantCulture)}_{index.ToString(CultureInfo.InvariantCulture)}";

    // ---- the query interface ---------------------------------------------------------------------------

    async Task<OcciResult> QueryAsync(OcciCall call, CancellationToken ct)
    {
        if (call.Input.Links.Count + call.Input.Attributes.Count + call.Input.Locations.Count > 0)
            throw new OcciException(400, "The query interface is filtered by Category only; leave out Link, X-OCCI-Attribute and X-OCCI-Location.");
        // The os_tpl list is the costly part (every valid Marketplace entry through the policy): skip it when the filter does not ask for it.
        var osScheme = OsTplScheme(call.BaseUrl);
        var withImages = call.Input.Categories.Count == 0 || call.Input.Categories.Any(c => c.Scheme == osScheme || c.Id == OcciModel.OsTpl.Id);
        var all = await CategoriesAsync(call.Caller, call.BaseUrl, withImages, ct);
        var output = new OcciOutput();
        // A filter gives the categories asked for and those related to them (os_tpl: every image template).
        if (call.Input.Categories.Count == 0)
            output.Categories.AddRange(all);
        else
        {
            foreach (var wanted in call.Input.Categories)
                output.Categories.AddRange(all.Where(c => (c.Id == wanted.Id && c.Class == wanted.Class) || c.Rel == wanted.Id).Except(output.Categories));
        }
        return OcciResult.Ok(output);
    }

    /// <summary>Every category the caller can use: the fixed ones, an os_tpl per launchable image, a resource_tpl per type, their own mixins.</summary>
    async Task<List<OcciCategory>> CategoriesAsync(Caller caller, string baseUrl, bool withImages, CancellationToken ct)
    {
        var all = new List<OcciCategory>(OcciModel.Fixed);
        var osScheme = OsTplScheme(baseUrl);
        if (withImages)
            all.AddRange((await OsTemplatesAsync(ct)).Select(t => new OcciCategory(t.Term, osScheme, "mixin", t.Title, OcciModel.OsTpl.Id)));
        var resScheme = ResourceTplScheme(baseUrl);
        all.AddRange((await instances.ListTypesAsync(ct)).Select(t => new OcciCategory(OcciModel.Term(t.Name), resScheme, "mixin",
            $"{t.Name}: {t.Cpu} cores, {Gb(t.MemoryMiB)} GB memory", OcciModel.ResourceTpl.Id, null,
            ["occi.compute.cores{immutable}", "occi.compute.memory{immutable}"])));
        all.AddRange((await store.MixinsOfAsync(caller.UserId)).Select(UserMixin));
        return all;
    }

    static OcciCategory UserMixin(UserMixinRow m) => new(m.Term, m.Scheme, "mixin", m.Title, null, m.Location);

    /// <summary>The launchable images: registered names and cached images, then every Marketplace image the site policy accepts.</summary>
    async Task<IReadOnlyList<OsTemplate>> OsTemplatesAsync(CancellationToken ct)
    {
        var launchable = await policy.LaunchableAsync(5000, ct);
        var accepted = launchable.Select(e => e.Identifier).ToHashSet(StringComparer.Ordinal);
        var list = new List<OsTemplate>();
        var terms = new HashSet<string>(StringComparer.Ordinal);
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (var image in await catalog.ListAsync(ct))
        {
            if (image.Identifier is not null && !accepted.Contains(image.Identifier)) continue;
            var term = OcciModel.Term(image.Image);
            if (!terms.Add(term)) continue;
            if (image.Identifier is not null) named.Add(image.Identifier);
            list.Add(new OsTemplate(term, image.Image,
                $"{image.Image}{(image.Requirements?.Os is { } os ? " (" + os + ")" : "")}{(image.IsDefault ? ", the site default" : "")}"));
        }
        foreach (var entry in launchable.Where(e => !named.Contains(e.Identifier)))
        {
            if (!terms.Add(entry.Identifier)) continue;
            list.Add(new OsTemplate(entry.Identifier, entry.Identifier,
                string.Join(" ", new[] { entry.Title, entry.Os, entry.OsVersion }.Where(s => !string.IsNullOrWhiteSpace(s))) is { Length: > 0 } t ? t : entry.Identifier));
        }
        return list;
    }

    // ---- user mixins -------------------------------------------------------------------------------

    async Task<OcciResult> AddMixinAsync(OcciCall call)
    {
        if (call.Input.Categories.Count == 0)
            throw new OcciException(400, "Give the mixin to add as a Category, e.g. Category: my_stuff; scheme=\"http://example.com/occi/my_stuff#\"; class=\"mixin\"; location=\"/tags/my_stuff/\".");
        var fixedIds = OcciModel.Fixed.Select(c => c.Id).ToHashSet();
        foreach (var c in call.Input.Categories)
        {
            if (c.Class != "mixin")
                throw new OcciException(400, $"Only mixins can be added to the query interface; '{c.Term}' has class=\"{c.Class}\".");
            if (fixedIds.Contains(c.Id) || c.Scheme.StartsWith(call.BaseUrl + "/occi/", StringComparison.Ordinal) || c.Scheme.StartsWith("http://schemas.ogf.org/", StringComparison.Ordinal))
                throw new OcciException(409, $"The scheme '{c.Scheme}' is reserved; give your mixin a scheme of your own.");
            var location = c.Location ?? OcciModel.TagsPath + c.Term + "/";
            location = OcciRendering.ParseLocation(location, "Category");
            if (!location.StartsWith(OcciModel.TagsPath, StringComparison.Ordinal) || !location.EndsWith('/') || location.Length <= OcciModel.TagsPath.Length + 1
                || location[OcciModel.TagsPath.Length..^1].Any(ch => !(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_')))
                throw new OcciException(400, $"The location '{location}' of '{c.Term}' is not accepted: user mixins live at /tags/<name>/ (letters, digits, '-', '_').");
            if (!await store.AddAsync(call.Caller.UserId, c.Term, c.Scheme, c.Title, location))
                throw new OcciException(409, $"A mixin with the scheme and term '{c.Id}' or the location '{location}' exists already; choose another.");
        }
        return OcciResult.Ok();
    }

    async Task<OcciResult> DeleteMixinAsync(OcciCall call)
    {
        if (call.Input.Categories.Count == 0)
            throw new OcciException(400, "Give the mixin to remove as a Category (its term, scheme and class=\"mixin\").");
        foreach (var c in call.Input.Categories)
        {
            var row = await store.FindAsync(c.Scheme, c.Term);
            if (row is null || row.OwnerId != call.Caller.UserId)
                throw new OcciException(404, $"You have no mixin '{c.Id}'; only mixins you added can be removed.");
            await store.DeleteAsync(row.Id);
        }
        return OcciResult.Ok();
    }

    async Task<OcciResult> TagCollectionAsync(OcciCall call, CancellationToken ct)
    {
        var mixin = await store.FindByLocationAsync(call.Path);
        if (mixin is null || mixin.OwnerId != call.Caller.UserId)
            throw new OcciException(404, $"Nothing exists at {call.Path}; add a mixin with that location first (POST /-/).");
        switch (call.Method)
        {
            case "GET":
            {
                var tagged = await store.TaggedAsync(mixin.Id);
                var output = new OcciOutput();
                foreach (var location in tagged)
                    if (await VisibleAsync(call.Caller, location, ct)) output.Locations.Add(location);
                return OcciResult.Ok(output);
            }
            case "POST" or "PUT":
                foreach (var location in call.Input.Locations)
                    if (!await VisibleAsync(call.Caller, location, ct))
                        throw new OcciException(404, $"{location} does not exist, or you may not see it; tag only your own computes, storages and networks.");
                await store.TagAsync(mixin.Id, call.Input.Locations, replace: call.Method == "PUT");
                return OcciResult.Ok();
            case "DELETE":
                await store.UntagAsync(mixin.Id, call.Input.Locations);
                return OcciResult.Ok();
            default:
                throw NotAllowed(call, "GET, POST, PUT and DELETE");
        }
    }

    /// <summary>Whether a location names a compute, storage or network the caller sees (through the services: another's is not visible).</summary>
    async Task<bool> VisibleAsync(Caller caller, string location, CancellationToken ct)
    {
        try
        {
            if (location.StartsWith(OcciModel.ComputePath, StringComparison.Ordinal)
                && long.TryParse(location[OcciModel.ComputePath.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                return (await instances.GetAsync(caller, id, ct)).State != "DONE";
            if (location.StartsWith(OcciModel.StoragePath, StringComparison.Ordinal) && Guid.TryParseExact(location[OcciModel.StoragePath.Length..], "D", out var uuid))
            {
                await volumes.GetAsync(caller, uuid, ct);
                return true;
            }
            if (location.StartsWith(OcciModel.NetworkPath, StringComparison.Ordinal)
                && long.TryParse(location[OcciModel.NetworkPath.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var net))
                return (await networks.ListAsync(caller, ct)).Any(n => n.Id == net);
        }
        catch (Platform.Contracts.NotFoundException)
        {
        }
        return false;
    }

    /// <summary>The user mixins of a request (for tagging a new or updated entity); other unknown mixins are refused.</summary>
    async Task<List<UserMixinRow>> UserMixinsAsync(Caller caller, IEnumerable<OcciCategory> categories)
    {
        var result = new List<UserMixinRow>();
        foreach (var c in categories)
        {
            var row = await store.FindAsync(c.Scheme, c.Term);
            if (row is null || row.OwnerId != caller.UserId)
                throw new OcciException(400, $"Unknown mixin '{c.Id}': it is not in the query interface (GET /-/ lists the mixins you may use).");
            result.Add(row);
        }
        return result;
    }

    // ---- shared checks ----------------------------------------------------------------------------

    static void RequireOnlyCategories(OcciInput input, OcciCategory kind)
    {
        foreach (var c in input.Categories)
            if (c.Id != kind.Id)
                throw new OcciException(400, $"Unknown category '{c.Id}' for the {kind.Term} collection; filter a collection by its own kind.");
    }

    /// <summary>The kind of a create request must be the collection's own.</summary>
    static void RequireKind(OcciInput input, OcciCategory kind)
    {
        var kinds = input.Categories.Where(c => c.Class == "kind").ToList();
        if (kinds.Count == 0)
            throw new OcciException(400, $"The request has no kind: add Category: {kind.Term}; scheme=\"{kind.Scheme}\"; class=\"kind\".");
        if (kinds.FirstOrDefault(k => k.Id != kind.Id) is { } other)
            throw new OcciException(400, $"Unknown kind '{other.Id}' here: the {kind.Location} collection takes the kind {kind.Id}.");
        if (input.Categories.FirstOrDefault(c => c.Class == "action") is { } action)
            throw new OcciException(400, $"The action '{action.Id}' cannot be given when creating; POST it to the entity with ?action={action.Term}.");
    }

    static string? Str(OcciInput input, string name)
    {
        if (!input.Attributes.TryGetValue(name, out var v)) return null;
        if (!v.IsString) throw new OcciException(400, $"X-OCCI-Attribute {name} must be a quoted string.");
        return v.Text;
    }

    static double? Num(OcciInput input, string name)
    {
        if (!input.Attributes.TryGetValue(name, out var v)) return null;
        if (v.IsString || !double.TryParse(v.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
            throw new OcciException(400, $"X-OCCI-Attribute {name} must be a number (unquoted), not {(v.IsString ? OcciRendering.Quote(v.Text) : v.Text)}.");
        return d;
    }

    static void RequireKnownAttributes(OcciInput input, OcciCategory kind, params string[] extra)
    {
        var known = (kind.Attributes ?? []).Select(a => a.Split('{')[0]).Concat(extra).ToHashSet(StringComparer.Ordinal);
        var context = kind == OcciModel.Compute;
        if (input.Attributes.Keys.FirstOrDefault(k => !known.Contains(k) && !(context && k.StartsWith(OcciModel.ContextPrefix, StringComparison.Ordinal))) is { } unknown)
            throw new OcciException(400, $"X-OCCI-Attribute {unknown} is not an attribute of {kind.Term} (it takes {string.Join(", ", known.Order(StringComparer.Ordinal))}).");
    }

    static string Gb(long mib) => (mib / 1024.0).ToString("0.###", CultureInfo.InvariantCulture);

    static string Clip(string s) => s.Length > 60 ? s[..60] + "..." : s;

    static string TargetOf(OcciInput input, string attribute, OcciLink? link) =>
        Str(input, attribute) is { } given ? OcciRendering.ParseLocation(given, "X-OCCI-Attribute") : link?.Target
            ?? throw new OcciException(400, $"The link has no {attribute}; give X-OCCI-Attribute {attribute}=\"/compute/<id>\" (source) and occi.core.target=\"/storage/<uuid>\".");

    static string Base64UserData(string encoded)
    {
        try { return Encoding.UTF8.GetString(Convert.FromBase64String(encoded)); }
        catch (FormatException) { throw new OcciException(400, $"X-OCCI-Attribute {OcciModel.UserDataAttribute} is not base64; encode the user data in base64."); }
    }
}
