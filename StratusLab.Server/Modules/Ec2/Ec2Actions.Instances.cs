using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// Instances, instance types, images and tags over Compute's <see cref="IInstances"/> and Images' <see cref="IImageCatalog"/>.
/// Our states map to AWS's codes: PENDING, PROLOG, BOOT → 0 pending; RUNNING → 16 running; SHUTDOWN, EPILOG → 32
/// shutting-down; DONE and FAILED → 48 terminated (FAILED with its reason in stateReason); STOPPED, SUSPENDED → 80 stopped.
/// </summary>
internal sealed partial class Ec2Actions
{
    /// <summary>Terminated instances stay listed this long after they ended, as in AWS.</summary>
    static readonly TimeSpan TerminatedVisibleFor = TimeSpan.FromHours(1);
    const int MaxConsoleBytes = 64 * 1024;

    void RegisterInstanceActions()
    {
        Register("RunInstances", RunInstances);
        Register("DescribeInstances", DescribeInstances);
        Register("DescribeInstanceStatus", DescribeInstanceStatus);
        Register("TerminateInstances", (r, ct) => ChangeStatesAsync(r, "terminate", ct));
        Register("StopInstances", (r, ct) => ChangeStatesAsync(r, "stop", ct));
        Register("StartInstances", (r, ct) => ChangeStatesAsync(r, "start", ct));
        Register("RebootInstances", RebootInstances);
        Register("GetConsoleOutput", GetConsoleOutput);
        Register("DescribeInstanceTypes", DescribeInstanceTypes);
        Register("DescribeImages", DescribeImages);
        Register("CreateTags", CreateTags);
        Register("DeleteTags", DeleteTags);
        Register("DescribeTags", DescribeTags);
    }

    /// <summary>
    /// EC2's instance state from ours. UNKNOWN (its host does not answer) stays "running", as EC2 shows an instance on a
    /// failing host, with its system status check "impaired" (DescribeInstanceStatus).
    /// </summary>
    public static (int Code, string Name) StateOf(string state) => state switch
    {
        "PENDING" or "PROLOG" or "BOOT" => (0, "pending"),
        "RUNNING" or "UNKNOWN" => (16, "running"),
        "SHUTDOWN" or "EPILOG" => (32, "shutting-down"),
        "DONE" or "FAILED" => (48, "terminated"),
        _ => (80, "stopped"),
    };

    // ---- RunInstances --------------------------------------------------------------------------------------

    async Task<IEnumerable<XElement>> RunInstances(Ec2Request request, CancellationToken ct)
    {
        var imageId = request.Require("ImageId");
        var image = await NativeIdAsync(imageId, Ec2Kind.Image, "InvalidAMIID", "image");
        var min = request.Int("MinCount", 1, 1000) ?? throw Ec2Exception.MissingParameter("MinCount");
        var max = request.Int("MaxCount", 1, 1000) ?? throw Ec2Exception.MissingParameter("MaxCount");
        if (min > max)
            throw new Ec2Exception("InvalidParameterValue", $"MinCount ({min}) is larger than MaxCount ({max}).");
        if (request.Get("Placement.AvailabilityZone") is { Length: > 0 } zone && zone != _options.Zone)
            throw new Ec2Exception("InvalidParameterValue", $"Invalid availability zone: [{zone}]. This server's only zone is '{_options.Zone}'.");
        string? userData = null;
        if (request.Get("UserData") is { Length: > 0 } encoded)
        {
            try { userData = Encoding.UTF8.GetString(Convert.FromBase64String(encoded)); }
            catch (FormatException) { throw Ec2Exception.InvalidParameterValue("UserData", encoded.Length > 20 ? encoded[..20] + "..." : encoded, "Invalid BASE64 encoding of user data."); }
        }
        var groupIds = request.List("SecurityGroupId").Concat(request.List("SecurityGroupIds")).ToList();
        if (groupIds.Count > 0)
        {
            var visible = await _securityGroups.ListAsync(request.Caller, ct);
            var ids = await _ec2Store.IdsForAsync(Ec2Kind.SecurityGroup, visible.Select(g => g.Id.ToString(CultureInfo.InvariantCulture)).ToList());
            if (groupIds.FirstOrDefault(id => !ids.Values.Contains(id)) is { } missing)
                throw new Ec2Exception("InvalidGroup.NotFound", $"The security group '{missing}' does not exist.");
        }
        var tags = Ec2NetworkingShapes.TagSpecifications(request, "instance");
        var name = tags.FirstOrDefault(t => t.Key == "Name").Value;
        if (name is not null && !System.Text.RegularExpressions.Regex.IsMatch(name, "^[A-Za-z][A-Za-z0-9_.-]{0,62}$")) name = null;

        var token = request.Get("ClientToken");
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n',
            request.Parameters.Where(p => p.Key is not ("ClientToken" or "Action" or "Version")).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value)))));
        if (token is { Length: > 64 }) throw Ec2Exception.InvalidParameterValue("ClientToken", token[..20] + "...", "A client token is at most 64 ASCII characters.");
        if (token is { Length: > 0 } && await EarlierLaunchAsync(request, token, fingerprint, ct) is { } earlier) return earlier;

        var reservation = "r-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(9))[..17];
        var record = token is { Length: > 0 } ? new ClientTokenRecord(request.Caller.UserId, token, reservation, fingerprint) : null;
        // The i- ids, the tags and the client token are written in the launch's own transaction: with the instances or not at all.
        IReadOnlyDictionary<string, string> awsIds = new Dictionary<string, string>();
        LaunchRecord recordLaunch = async (tx, ids) => awsIds = await Ec2Store.RecordLaunchAsync(tx, ids, tags, record);
        var launch = new CreateInstanceRequest(Image: image, InstanceType: request.Get("InstanceType"), Name: name, UserData: userData,
            Count: max, KeyName: request.Get("KeyName"));
        IReadOnlyList<InstanceView> launched;
        try
        {
            try
            {
                launched = await _instances.LaunchAsync(request.Caller, launch, recordLaunch, ct);
            }
            catch (DomainException e) when (min < max && e.Kind is Rejection.Conflict or Rejection.Unprocessable)
            {
                // As AWS: when MaxCount does not fit (quota, capacity), launch MinCount if that does.
                launched = await _instances.LaunchAsync(request.Caller, launch with { Count = min }, recordLaunch, ct);
            }
        }
        catch (InvalidInputException e) when (e.Field is "instanceType")
        {
            throw new Ec2Exception("InvalidParameterValue", $"Invalid value '{request.Get("InstanceType")}' for InstanceType. {e.Message}");
        }
        catch (InvalidInputException e) when (e.Field is "keyName")
        {
            throw new Ec2Exception("InvalidKeyPair.NotFound", $"The key pair '{request.Get("KeyName")}' does not exist. {e.Message}");
        }
        catch (InvalidInputException e) when (e.Field is "userData")
        {
            throw new Ec2Exception("InvalidParameterValue", $"Invalid value for UserData: {e.Message}");
        }
        catch (Microsoft.Data.Sqlite.SqliteException e) when (e.SqliteErrorCode == 19 && token is { Length: > 0 })
        {
            // The same token raced in from another request, which launched first: this launch rolled back whole.
            if (await EarlierLaunchAsync(request, token, fingerprint, ct) is not { } concurrent) throw;
            return concurrent;
        }
        // Rendered from what the launch returned: the ids and tags were just written, the AMI id is the one asked for.
        var tagMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in tags) tagMap[key] = value;
        var images = launched.All(v => v.Image == image) ? new Dictionary<string, string> { [image] = imageId }
            : await _ec2Store.IdsForAsync(Ec2Kind.Image, launched.Select(v => v.Image).Distinct().ToList());
        return Reservation(reservation, request, launched, awsIds, images, _ => tagMap.Count == 0 ? null : tagMap);
    }

    /// <summary>The reservation an earlier RunInstances with this client token made (null: none); other parameters are IdempotentParameterMismatch.</summary>
    async Task<IEnumerable<XElement>?> EarlierLaunchAsync(Ec2Request request, string token, string fingerprint, CancellationToken ct)
    {
        if (await _ec2Store.FindClientTokenAsync(request.Caller.UserId, token) is not { } earlier) return null;
        if (earlier.RequestHash != fingerprint)
            throw new Ec2Exception("IdempotentParameterMismatch", $"The client token '{token}' was used before with different parameters; use a new token for a new request.");
        var natives = (await _ec2Store.ResolveAsync(earlier.InstanceIds)).Select(i => long.Parse(i.NativeId, CultureInfo.InvariantCulture)).ToList();
        var again = await _instances.ListAsync(request.Caller, new InstanceQuery(Ids: natives, Limit: 1000), ct);
        var awsIds = await _ec2Store.IdsForAsync(Ec2Kind.Instance, again.Select(v => NativeOf(v.Id)).ToList());
        var images = await _ec2Store.IdsForAsync(Ec2Kind.Image, again.Select(v => v.Image).Distinct().ToList());
        var tags = await _ec2Store.TagsOfAsync(awsIds.Values.ToList());
        return Reservation(earlier.ReservationId, request, again, awsIds, images, tags.GetValueOrDefault);
    }

    /// <summary>RunInstances' answer: one reservation, its instances written straight to the response (no element tree per instance).</summary>
    IEnumerable<XElement> Reservation(string reservation, Ec2Request request, IReadOnlyList<InstanceView> views, IReadOnlyDictionary<string, string> awsIds,
        IReadOnlyDictionary<string, string> images, Func<string, IReadOnlyDictionary<string, string>?> tagsOf) =>
        [
            E("reservationId", reservation), E("ownerId", Ec2NetworkingShapes.AccountOf(request.Caller.UserId)), Set("groupSet", []),
            new StreamedSet(Ns + "instancesSet", views.Select((v, index) => (Action<XmlWriter>)(w =>
            {
                var awsId = awsIds[NativeOf(v.Id)];
                WriteInstance(w, v, index, awsId, images[v.Image], tagsOf(awsId));
            }))),
        ];

    // ---- DescribeInstances / DescribeInstanceStatus --------------------------------------------------------

    async Task<IEnumerable<XElement>> DescribeInstances(Ec2Request request, CancellationToken ct)
    {
        var ids = request.List("InstanceId");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "instances", ids.Count > 0 ? "InstanceIds" : null);
        var filters = request.Filters();
        var views = await VisibleInstancesAsync(request, ids, ct);
        var awsIds = await _ec2Store.IdsForAsync(Ec2Kind.Instance, views.Select(v => NativeOf(v.Id)).ToList());
        var tags = await _ec2Store.TagsOfAsync(awsIds.Values.ToList());
        var images = await _ec2Store.IdsForAsync(Ec2Kind.Image, views.Select(v => v.Image).Distinct().ToList());
        // client-token: the caller's own launch tokens (as AWS), read only when the filter is used.
        var tokenOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var token in filters.Where(f => f.Name == "client-token").SelectMany(f => f.Values).Distinct())
            if (await _ec2Store.FindClientTokenAsync(request.Caller.UserId, token) is { } launch)
                foreach (var awsId in launch.InstanceIds) tokenOf[awsId] = token;
        var selected = views.Where(v => filters.All(f => Ec2NetworkingShapes.Matches(f, tags.GetValueOrDefault(awsIds[NativeOf(v.Id)]), name => name switch
        {
            "instance-id" => [awsIds[NativeOf(v.Id)]],
            "client-token" => tokenOf.TryGetValue(awsIds[NativeOf(v.Id)], out var token) ? [token] : [],
            "instance-state-name" => [StateOf(v.State).Name],
            "instance-state-code" => [StateOf(v.State).Code.ToString(CultureInfo.InvariantCulture)],
            "image-id" => [images[v.Image]],
            "instance-type" => [v.InstanceType ?? "custom"],
            "availability-zone" => [_options.Zone],
            "private-ip-address" => v.Nics.Select(n => n.Ip).ToList(),
            "key-name" => v.KeyName is null ? [] : [v.KeyName],
            _ => null,
        }))).ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        var owner = Ec2NetworkingShapes.AccountOf(request.Caller.IsAdmin ? 0 : request.Caller.UserId);
        return
        [
            // Streamed: each reservation is built and written in turn, for listings of thousands.
            new StreamedSet(Ns + "reservationSet", page.Select(v => (Action<XmlWriter>)(w =>
            {
                var awsId = awsIds[NativeOf(v.Id)];
                w.WriteStartElement("item", Ec2Endpoints.Namespace);
                W(w, "reservationId", "r-" + awsId[2..]);
                W(w, "ownerId", owner);
                W(w, "groupSet", null);
                w.WriteStartElement("instancesSet", Ec2Endpoints.Namespace);
                WriteInstance(w, v, 0, awsId, images[v.Image], tags.GetValueOrDefault(awsId));
                w.WriteEndElement();
                w.WriteEndElement();
            }))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    async Task<IEnumerable<XElement>> DescribeInstanceStatus(Ec2Request request, CancellationToken ct)
    {
        var ids = request.List("InstanceId");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "instances", ids.Count > 0 ? "InstanceIds" : null);
        var all = request.Bool("IncludeAllInstances") ?? false;
        var views = (await VisibleInstancesAsync(request, ids, ct)).Where(v => all || v.State is "RUNNING" or "UNKNOWN").ToList();
        var filters = request.Filters();
        var awsIds = await _ec2Store.IdsForAsync(Ec2Kind.Instance, views.Select(v => NativeOf(v.Id)).ToList());
        string Health(InstanceView v) => v.State == "UNKNOWN" ? "impaired" : v.State != "RUNNING" ? "not-applicable" : v.Ready ? "ok" : v.NotReady ? "impaired" : "initializing";
        string SystemHealth(InstanceView v) => v.State switch { "RUNNING" => "ok", "UNKNOWN" => "impaired", _ => "not-applicable" };
        var selected = views.Where(v => filters.All(f => Ec2NetworkingShapes.Matches(f, null, name => name switch
        {
            "instance-state-name" => [StateOf(v.State).Name],
            "instance-state-code" => [StateOf(v.State).Code.ToString(CultureInfo.InvariantCulture)],
            "instance-status.status" => [Health(v)],
            "system-status.status" => [SystemHealth(v)],
            "availability-zone" => [_options.Zone],
            _ => null,
        }))).ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        return
        [
            Set("instanceStatusSet", page.Select(v => Item(
                E("instanceId", awsIds[NativeOf(v.Id)]), E("availabilityZone", _options.Zone),
                new XElement(Ns + "instanceState", E("code", StateOf(v.State).Code), E("name", StateOf(v.State).Name)),
                new XElement(Ns + "systemStatus", E("status", SystemHealth(v)),
                    Set("details", [Item(E("name", "reachability"), E("status", SystemHealth(v) switch { "ok" => "passed", "impaired" => "failed", _ => "not-applicable" }))])),
                new XElement(Ns + "instanceStatus", E("status", Health(v)),
                    Set("details", [Item(E("name", "reachability"), E("status", Health(v) switch { "ok" => "passed", "impaired" => "failed", "initializing" => "initializing", _ => "not-applicable" }))]))))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    /// <summary>The caller's instances (by AWS id when given: any unknown one is InvalidInstanceID.NotFound), terminated ones for an hour.</summary>
    async Task<IReadOnlyList<InstanceView>> VisibleInstancesAsync(Ec2Request request, IReadOnlyList<string> ids, CancellationToken ct)
    {
        if (ids.Count > 0)
        {
            var natives = await NativeInstanceIdsAsync(ids);
            var found = await _instances.ListAsync(request.Caller, new InstanceQuery(Ids: natives.Values.ToList(), Limit: 1000), ct);
            if (ids.FirstOrDefault(id => found.All(v => v.Id != natives[id])) is { } missing)
                throw new Ec2Exception("InvalidInstanceID.NotFound", $"The instance ID '{missing}' does not exist");
            return found;
        }
        var all = new List<InstanceView>();
        for (var offset = 0; ; offset += 1000)
        {
            var page = await _instances.ListAsync(request.Caller, new InstanceQuery(Limit: 1000, Offset: offset), ct);
            all.AddRange(page);
            if (page.Count < 1000) break;
        }
        var now = DateTimeOffset.UtcNow;
        return all.Where(v => v.State is not ("DONE" or "FAILED") || (v.EndedAt ?? v.UpdatedAt) > now - TerminatedVisibleFor).ToList();
    }

    /// <summary>AWS instance ids → our ids; malformed or unknown ids fail the request as AWS does.</summary>
    async Task<IReadOnlyDictionary<string, long>> NativeInstanceIdsAsync(IReadOnlyList<string> ids)
    {
        if (ids.FirstOrDefault(id => Ec2Store.KindOf(id) != Ec2Kind.Instance) is { } malformed)
            throw new Ec2Exception("InvalidInstanceID.Malformed", $"Invalid id: \"{malformed}\" (expecting \"i-...\" with 17 hex digits)");
        var resolved = (await _ec2Store.ResolveAsync(ids)).ToDictionary(i => i.AwsId, i => long.Parse(i.NativeId, CultureInfo.InvariantCulture));
        if (ids.FirstOrDefault(id => !resolved.ContainsKey(id)) is { } unknown)
            throw new Ec2Exception("InvalidInstanceID.NotFound", $"The instance ID '{unknown}' does not exist");
        return resolved;
    }

    /// <summary>One instance as AWS's Instance item, written straight to <paramref name="w"/> (DescribeInstances streams thousands).</summary>
    void WriteInstance(XmlWriter w, InstanceView v, int index, string awsId, string imageId, IReadOnlyDictionary<string, string>? tags)
    {
        var (code, name) = StateOf(v.State);
        var nic = v.Nics.Count > 0 ? v.Nics[0] : null;
        PortForwardView? ssh = null;
        foreach (var p in v.PortForwards) if (p.GuestPort == 22) { ssh = p; break; }
        w.WriteStartElement("item", Ec2Endpoints.Namespace);
        W(w, "instanceId", awsId);
        W(w, "imageId", imageId);
        w.WriteStartElement("instanceState", Ec2Endpoints.Namespace);
        W(w, "code", code.ToString(CultureInfo.InvariantCulture));
        W(w, "name", name);
        w.WriteEndElement();
        W(w, "privateDnsName", v.Hostname ?? v.Name);
        W(w, "dnsName", ssh is null ? "" : ssh.HostAddress);
        W(w, "reason", v.State == "FAILED" ? $"failed in {v.FailedStep}: {v.FailureReason}" : "");
        if (v.KeyName is not null) W(w, "keyName", v.KeyName);
        W(w, "amiLaunchIndex", index.ToString(CultureInfo.InvariantCulture));
        W(w, "instanceType", v.InstanceType ?? "custom");
        W(w, "launchTime", v.CreatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
        w.WriteStartElement("placement", Ec2Endpoints.Namespace);
        W(w, "availabilityZone", _options.Zone);
        W(w, "tenancy", "default");
        w.WriteEndElement();
        w.WriteStartElement("monitoring", Ec2Endpoints.Namespace);
        W(w, "state", "disabled");
        w.WriteEndElement();
        if (nic is not null) W(w, "privateIpAddress", nic.Ip);
        if (ssh is not null) W(w, "ipAddress", ssh.HostAddress);
        W(w, "architecture", "x86_64");
        W(w, "rootDeviceType", "ebs");
        W(w, "rootDeviceName", "/dev/vda");
        W(w, "blockDeviceMapping", null);
        W(w, "virtualizationType", "hvm");
        W(w, "hypervisor", "xen");
        W(w, "groupSet", null);
        if (v.State == "FAILED")
        {
            w.WriteStartElement("stateReason", Ec2Endpoints.Namespace);
            W(w, "code", "Server.InternalError");
            W(w, "message", $"Server.InternalError: {v.FailedStep}: {v.FailureReason}");
            w.WriteEndElement();
        }
        w.WriteStartElement("cpuOptions", Ec2Endpoints.Namespace);
        W(w, "coreCount", v.Cpu.ToString(CultureInfo.InvariantCulture));
        W(w, "threadsPerCore", "1");
        w.WriteEndElement();
        w.WriteStartElement("tagSet", Ec2Endpoints.Namespace);
        if (tags is not null)
            foreach (var (key, value) in tags)
            {
                w.WriteStartElement("item", Ec2Endpoints.Namespace);
                W(w, "key", key);
                W(w, "value", value);
                w.WriteEndElement();
            }
        w.WriteEndElement();
        w.WriteEndElement();
    }

    /// <summary>An element in the EC2 namespace with a text (null: empty element).</summary>
    static void W(XmlWriter w, string name, string? value)
    {
        w.WriteStartElement(name, Ec2Endpoints.Namespace);
        if (value is not null) w.WriteString(value);
        w.WriteEndElement();
    }

    static string NativeOf(long id) => id.ToString(CultureInfo.InvariantCulture);

    // ---- state changes ---------------------------------------------------------------------------------------

    async Task<IEnumerable<XElement>> ChangeStatesAsync(Ec2Request request, string change, CancellationToken ct)
    {
        var ids = request.List("InstanceId");
        if (ids.Count == 0) throw Ec2Exception.MissingParameter("InstanceId.1");
        var natives = await NativeInstanceIdsAsync(ids);
        // StopInstances Force=true: powered off at once, without waiting for the guest (the EBS disk, here the instance's disk, is kept).
        var options = new InstanceActionOptions(Force: change == "stop" && request.Bool("Force") == true);
        // Every instance is checked before any is changed: an unknown one fails the request and changes nothing.
        var before = new Dictionary<string, InstanceView>();
        foreach (var id in ids.Distinct())
        {
            try { before[id] = await _instances.GetAsync(request.Caller, natives[id], ct); }
            catch (NotFoundException) { throw new Ec2Exception("InvalidInstanceID.NotFound", $"The instance ID '{id}' does not exist"); }
        }
        var items = new List<XElement>();
        foreach (var (id, previous) in before)
        {
            var after = previous;
            var nothingToDo = change switch
            {
                "terminate" => previous.State == "DONE",
                "stop" => previous.State is "STOPPED" or "DONE" or "FAILED",
                _ => previous.State is "RUNNING" or "PENDING" or "PROLOG" or "BOOT",
            };
            if (!nothingToDo)
            {
                try
                {
                    after = change == "terminate"
                        ? await _instances.TerminateAsync(request.Caller, natives[id], ct)
                        : await _instances.ActAsync(request.Caller, natives[id], change == "start" && previous.State == "SUSPENDED" ? "resume" : change, options, ct);
                }
                catch (ConflictException e)
                {
                    throw new Ec2Exception("IncorrectInstanceState", $"The instance '{id}' is not in a state from which it can be {(change == "stop" ? "stopped" : change + "ed")}: {e.Message}");
                }
            }
            items.Add(Item(E("instanceId", id),
                new XElement(Ns + "currentState", E("code", Transitional(change, after).Code), E("name", Transitional(change, after).Name)),
                new XElement(Ns + "previousState", E("code", StateOf(previous.State).Code), E("name", StateOf(previous.State).Name))));
        }
        return [Set("instancesSet", items)];
    }

    /// <summary>The state right after a change was asked for: a stop in progress is 'stopping' (64), as AWS shows it.</summary>
    static (int Code, string Name) Transitional(string change, InstanceView after) =>
        change == "stop" && after.State == "RUNNING" ? (64, "stopping")
        : change == "start" && after.State is "STOPPED" or "SUSPENDED" ? (0, "pending")
        : change == "terminate" && after.State is not ("DONE" or "FAILED") ? (32, "shutting-down")
        : StateOf(after.State);

    async Task<IEnumerable<XElement>> RebootInstances(Ec2Request request, CancellationToken ct)
    {
        var ids = request.List("InstanceId");
        if (ids.Count == 0) throw Ec2Exception.MissingParameter("InstanceId.1");
        var natives = await NativeInstanceIdsAsync(ids);
        foreach (var id in ids.Distinct())
        {
            try { await _instances.GetAsync(request.Caller, natives[id], ct); }
            catch (NotFoundException) { throw new Ec2Exception("InvalidInstanceID.NotFound", $"The instance ID '{id}' does not exist"); }
        }
        foreach (var id in ids.Distinct())
        {
            try { await _instances.ActAsync(request.Caller, natives[id], "reboot", ct); }
            catch (ConflictException e) { throw new Ec2Exception("IncorrectInstanceState", $"The instance '{id}' cannot be rebooted now: {e.Message}"); }
        }
        return [E("return", true)];
    }

    async Task<IEnumerable<XElement>> GetConsoleOutput(Ec2Request request, CancellationToken ct)
    {
        var id = request.Require("InstanceId");
        var natives = await NativeInstanceIdsAsync([id]);
        string text;
        try { text = await _instances.ConsoleAsync(request.Caller, natives[id], null, ct); }
        catch (NotFoundException) { throw new Ec2Exception("InvalidInstanceID.NotFound", $"The instance ID '{id}' does not exist"); }
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > MaxConsoleBytes) bytes = bytes[^MaxConsoleBytes..];
        return [E("instanceId", id), E("timestamp", DateTimeOffset.UtcNow), E("output", Convert.ToBase64String(bytes))];
    }

    // ---- instance types and images -------------------------------------------------------------------------

    async Task<IEnumerable<XElement>> DescribeInstanceTypes(Ec2Request request, CancellationToken ct)
    {
        var wanted = request.List("InstanceType");
        var types = await _instances.ListTypesAsync(ct);
        if (wanted.FirstOrDefault(w => types.All(t => !string.Equals(t.Name, w, StringComparison.OrdinalIgnoreCase))) is { } unknown)
            throw new Ec2Exception("InvalidInstanceType", $"The following supplied instance types do not exist: [{unknown}]. Known: {string.Join(", ", types.Select(t => t.Name))}.");
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "instance types", null);
        var filters = request.Filters();
        var selected = types.Where(t => wanted.Count == 0 || wanted.Contains(t.Name, StringComparer.OrdinalIgnoreCase))
            .Where(t => filters.All(f => Ec2NetworkingShapes.Matches(f, null, name => name switch
            {
                "instance-type" => [t.Name],
                "vcpu-info.default-vcpus" => [t.Cpu.ToString(CultureInfo.InvariantCulture)],
                "memory-info.size-in-mib" => [t.MemoryMiB.ToString(CultureInfo.InvariantCulture)],
                "processor-info.supported-architecture" => ["x86_64"],
                _ => null,
            }))).ToList();
        var page = selected.Skip(offset).Take(max).ToList();
        return
        [
            Set("instanceTypeSet", page.Select(t => Item(
                E("instanceType", t.Name), E("currentGeneration", true), E("freeTierEligible", false),
                Set("supportedUsageClasses", [Item("on-demand")]), Set("supportedRootDeviceTypes", [Item("ebs")]),
                Set("supportedVirtualizationTypes", [Item("hvm")]), E("bareMetal", false), E("hypervisor", "xen"),
                new XElement(Ns + "processorInfo", Set("supportedArchitectures", [Item("x86_64")])),
                new XElement(Ns + "vCpuInfo", E("defaultVCpus", t.Cpu), E("defaultCores", t.Cpu), E("defaultThreadsPerCore", 1)),
                new XElement(Ns + "memoryInfo", E("sizeInMiB", t.MemoryMiB)),
                E("instanceStorageSupported", false), E("burstablePerformanceSupported", false)))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, selected.Count),
        ];
    }

    async Task<IEnumerable<XElement>> DescribeImages(Ec2Request request, CancellationToken ct)
    {
        var images = await _imageCatalog.ListAsync(ct);
        var ids = await _ec2Store.IdsForAsync(Ec2Kind.Image, images.Select(i => i.Image).ToList());
        var wanted = request.List("ImageId");
        if (wanted.FirstOrDefault(w => Ec2Store.KindOf(w) != Ec2Kind.Image) is { } malformed)
            throw new Ec2Exception("InvalidAMIID.Malformed", $"Invalid id: \"{malformed}\" (expecting \"ami-...\")");
        if (wanted.FirstOrDefault(w => !ids.Values.Contains(w)) is { } unknown)
            throw new Ec2Exception("InvalidAMIID.NotFound", $"The image id '[{unknown}]' does not exist");
        // Site images belong to the site (account 000000000000): Owners 'self' lists only a user's own images (none yet).
        var owners = request.List("Owner");
        var site = Ec2NetworkingShapes.AccountOf(0);
        var ownerOk = owners.Count == 0 || owners.Any(o => o is "amazon" or "aws-marketplace" || o == site);
        var filters = request.Filters();
        var tags = await _ec2Store.TagsOfAsync(ids.Values.ToList());
        var selected = images.Where(_ => ownerOk).Where(i => wanted.Count == 0 || wanted.Contains(ids[i.Image]))
            .Where(i => filters.All(f => Ec2NetworkingShapes.Matches(f, tags.GetValueOrDefault(ids[i.Image]), name => name switch
            {
                "name" => [i.Image],
                "image-id" => [ids[i.Image]],
                // imageLocation: the Marketplace identifier, so a peer finds the image of an entry by it.
                "manifest-location" => [i.Identifier ?? i.Image],
                "architecture" => ["x86_64"],
                "state" => [ImageState(i)],
                "owner-id" => [site],
                "is-public" => ["true"],
                "image-type" => ["machine"],
                "platform-details" => ["Linux/UNIX"],
                _ => null,
            }))).ToList();
        return
        [
            Set("imagesSet", selected.Select(i => Item(
                E("imageId", ids[i.Image]), E("imageLocation", i.Identifier ?? i.Image), E("imageState", ImageState(i)),
                E("imageOwnerId", site), E("creationDate", i.CreatedAt), E("isPublic", true), E("architecture", "x86_64"),
                E("imageType", "machine"), E("name", i.Image),
                E("description", $"{(i.Requirements?.Os is { } os ? os + " " : "")}image '{i.Image}'{(i.IsDefault ? " (the site default)" : "")}" +
                                 (i.Requirements?.MinMemoryMiB is { } mem ? $"; needs at least {mem} MiB" : "")),
                E("rootDeviceType", "ebs"), E("rootDeviceName", "/dev/vda"), Set("blockDeviceMapping", []),
                E("virtualizationType", "hvm"), E("hypervisor", "xen"), E("platformDetails", "Linux/UNIX"), E("enaSupport", false),
                Ec2NetworkingShapes.TagSet(Ns, tags.GetValueOrDefault(ids[i.Image])?.ToList() ?? [])))),
        ];
    }

    static string ImageState(CatalogImage i) => i.State.ToLowerInvariant() switch
    {
        "ready" or "not_cached" => "available",
        "downloading" => "pending",
        _ => "failed",
    };

    /// <summary>Our id behind an AWS id of <paramref name="kind"/>; malformed and unknown ids get PREFIX.Malformed / PREFIX.NotFound.</summary>
    async Task<string> NativeIdAsync(string awsId, Ec2Kind kind, string codePrefix, string what)
    {
        if (Ec2Store.KindOf(awsId) != kind)
            throw new Ec2Exception(codePrefix + ".Malformed", $"Invalid id: \"{awsId}\" (expecting \"{Ec2Store.Prefix(kind)}...\" with 17 hex digits)");
        var resolved = (await _ec2Store.ResolveAsync([awsId])).FirstOrDefault();
        // An ami- id is allocated when an image is first listed; one not seen yet may belong to an image not listed yet.
        if (resolved is null && kind == Ec2Kind.Image)
        {
            await _ec2Store.IdsForAsync(Ec2Kind.Image, (await _imageCatalog.ListAsync()).Select(i => i.Image).ToList());
            resolved = (await _ec2Store.ResolveAsync([awsId])).FirstOrDefault();
        }
        return resolved?.NativeId ?? throw new Ec2Exception(codePrefix + ".NotFound", $"The {what} id '[{awsId}]' does not exist");
    }

    // ---- tags ----------------------------------------------------------------------------------------------

    async Task<IEnumerable<XElement>> CreateTags(Ec2Request request, CancellationToken ct)
    {
        var resources = await TaggableAsync(request, ct);
        var tags = request.Structs("Tag").Select(t =>
        {
            var key = t.GetValueOrDefault("Key") ?? throw Ec2Exception.MissingParameter("Tag.N.Key");
            if (key.Length is 0 or > 128 || key.StartsWith("aws:", StringComparison.Ordinal))
                throw Ec2Exception.InvalidParameterValue("Tag.Key", key, "A tag key is 1..128 characters and does not start with 'aws:'.");
            var value = t.GetValueOrDefault("Value") ?? "";
            if (value.Length > 256) throw Ec2Exception.InvalidParameterValue("Tag.Value", value[..20] + "...", "A tag value is at most 256 characters.");
            return new KeyValuePair<string, string>(key, value);
        }).ToList();
        if (tags.Count == 0) throw Ec2Exception.MissingParameter("Tag.1.Key");
        var existing = await _ec2Store.TagsOfAsync(resources);
        if (resources.FirstOrDefault(r => (existing.GetValueOrDefault(r)?.Keys ?? []).Union(tags.Select(t => t.Key)).Count() > 50) is { } full)
            throw new Ec2Exception("TagLimitExceeded", $"The resource '{full}' would have more than 50 tags.");
        await _ec2Store.SetTagsAsync(resources, tags);
        return [E("return", true)];
    }

    async Task<IEnumerable<XElement>> DeleteTags(Ec2Request request, CancellationToken ct)
    {
        var resources = await TaggableAsync(request, ct);
        var tags = request.Structs("Tag").Select(t => new KeyValuePair<string, string?>(
            t.GetValueOrDefault("Key") ?? throw Ec2Exception.MissingParameter("Tag.N.Key"), t.GetValueOrDefault("Value"))).ToList();
        await _ec2Store.DeleteTagsAsync(resources, tags);
        return [E("return", true)];
    }

    async Task<IEnumerable<XElement>> DescribeTags(Ec2Request request, CancellationToken ct)
    {
        var (max, offset) = Ec2NetworkingShapes.Paging(request, "tags", null);
        var visible = await VisibleTaggableAsync(request, ct);
        var tags = await _ec2Store.TagsOfAsync(visible.Keys.ToList());
        var filters = request.Filters();
        var rows = tags.SelectMany(r => r.Value.Select(t => (Resource: r.Key, Type: visible[r.Key], t.Key, t.Value)))
            .Where(t => filters.All(f => Ec2NetworkingShapes.Matches(f, null, name => name switch
            {
                "resource-id" => [t.Resource],
                "resource-type" => [t.Type],
                "key" => [t.Key],
                "value" => [t.Value],
                _ => null,
            })))
            .OrderBy(t => t.Resource, StringComparer.Ordinal).ThenBy(t => t.Key, StringComparer.Ordinal).ToList();
        var page = rows.Skip(offset).Take(max).ToList();
        return
        [
            Set("tagSet", page.Select(t => Item(E("resourceId", t.Resource), E("resourceType", t.Type), E("key", t.Key), E("value", t.Value)))),
            .. Ec2NetworkingShapes.NextToken(Ns, offset + page.Count, rows.Count),
        ];
    }

    /// <summary>The ResourceId.N of a tag request, each one the caller may tag (else the kind's NotFound code).</summary>
    async Task<IReadOnlyList<string>> TaggableAsync(Ec2Request request, CancellationToken ct)
    {
        var ids = request.List("ResourceId");
        if (ids.Count == 0) throw Ec2Exception.MissingParameter("ResourceId.1");
        var visible = await VisibleTaggableAsync(request, ct);
        foreach (var id in ids)
        {
            if (Ec2Store.KindOf(id) is not { } kind)
                throw new Ec2Exception("InvalidID", $"The ID '{id}' is not valid (expecting i-, ami-, sg-, vol-, snap-, vpc- or subnet- and 17 hex digits).");
            if (!visible.ContainsKey(id))
                throw new Ec2Exception(kind switch
                {
                    Ec2Kind.Instance => "InvalidInstanceID.NotFound",
                    Ec2Kind.Image => "InvalidAMIID.NotFound",
                    Ec2Kind.SecurityGroup => "InvalidGroup.NotFound",
                    Ec2Kind.Volume => "InvalidVolume.NotFound",
                    Ec2Kind.Snapshot => "InvalidSnapshot.NotFound",
                    Ec2Kind.Vpc => "InvalidVpcID.NotFound",
                    _ => "InvalidSubnetID.NotFound",
                }, $"The ID '{id}' does not exist");
            if (kind == Ec2Kind.Image && !request.Caller.IsAdmin)
                throw new Ec2Exception("UnauthorizedOperation", $"Image '{id}' is a site image; only administrators may tag it.", 403);
        }
        return ids.Distinct().ToList();
    }

    /// <summary>Every resource with an EC2 id the caller may see, by id → AWS resource type.</summary>
    async Task<Dictionary<string, string>> VisibleTaggableAsync(Ec2Request request, CancellationToken ct)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var instances = await VisibleInstancesAsync(request, [], ct);
        foreach (var id in (await _ec2Store.IdsForAsync(Ec2Kind.Instance, instances.Select(v => NativeOf(v.Id)).ToList())).Values) result[id] = "instance";
        foreach (var id in (await _ec2Store.IdsForAsync(Ec2Kind.Image, (await _imageCatalog.ListAsync(ct)).Select(i => i.Image).ToList())).Values) result[id] = "image";
        var groups = await _securityGroups.ListAsync(request.Caller, ct);
        foreach (var id in (await _ec2Store.IdsForAsync(Ec2Kind.SecurityGroup, groups.Select(g => g.Id.ToString(CultureInfo.InvariantCulture)).ToList())).Values) result[id] = "security-group";
        var volumes = await AllVolumesAsync(request, ct);
        var snapshots = await _ec2Store.KnownIdsAsync(Ec2Kind.Snapshot, volumes.Select(v => Native(v.Uuid)).ToList());
        foreach (var id in snapshots.Values) result[id] = "snapshot";
        foreach (var id in (await _ec2Store.IdsForAsync(Ec2Kind.Volume, volumes.Where(v => !snapshots.ContainsKey(Native(v.Uuid))).Select(v => Native(v.Uuid)).ToList())).Values)
            result[id] = "volume";
        return result;
    }
}
