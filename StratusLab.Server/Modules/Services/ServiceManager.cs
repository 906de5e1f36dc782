using System.Collections.Concurrent;
using System.Text.Json;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Monitoring.Contracts;
using StratusLab.Server.Modules.Services.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Services;

/// <summary>
/// The service manager: <see cref="IServices"/> for the front doors, and <see cref="ReconcileAllAsync"/> for the evaluator loop, which
/// brings every service's roles to their cardinality (in dependency order), replaces failed members, and applies elasticity and
/// scheduled rules. One lock serializes every change, so a manual scale and an evaluation never interleave.
/// </summary>
internal sealed partial class ServiceManager(ServiceStore store, TemplateValidator validator, IInstances instances, IUserDirectory users,
    IKpiReader kpis, ILogger<ServiceManager> logger) : IServices
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    readonly SemaphoreSlim _lock = new(1, 1);
    readonly ConcurrentDictionary<long, long> _memberServices = new();
    readonly SemaphoreSlim _wake = new(0, 1);

    /// <summary>Instances that are members of a service (for the evaluator's watch of lifecycle changes).</summary>
    public bool IsMember(long instanceId) => _memberServices.ContainsKey(instanceId);

    /// <summary>Asks the evaluator loop for a pass now (a member changed, a service was created or scaled).</summary>
    public void Wake()
    {
        try { if (_wake.CurrentCount == 0) _wake.Release(); } catch (SemaphoreFullException) { }
    }

    /// <summary>Waits for <see cref="Wake"/> or the timeout; true when woken.</summary>
    public Task<bool> WaitForWakeAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, ct);

    // ---- IServices -----------------------------------------------------------------------------------

    public async Task<ServiceView> CreateAsync(Caller caller, ServiceTemplate template, CancellationToken ct = default)
    {
        await validator.CheckAsync(caller, template, ct);
        var roles = template.Roles!.Select(r => (r.Name!, r.Cardinality is { } c ? c.Initial ?? c.Min : 1)).ToList();
        var id = await store.CreateAsync(template.Name!.Trim(), caller.UserId, JsonSerializer.Serialize(template, Json), roles);
        logger.LogInformation("Service {Id} '{Name}' created by {User} with roles {Roles}", id, template.Name, caller.Name, string.Join(", ", roles.Select(r => r.Item1)));
        Wake();
        return await GetAsync(caller, id, ct);
    }

    public async Task<IReadOnlyList<ServiceView>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        var list = new List<ServiceView>();
        foreach (var row in await store.ListAsync(caller.IsAdmin ? null : caller.UserId))
            list.Add(await ViewAsync(row, ct));
        return list;
    }

    public async Task<ServiceView> GetAsync(Caller caller, long id, CancellationToken ct = default) =>
        await ViewAsync(await VisibleAsync(caller, id), ct);

    public async Task<ServiceView> ScaleAsync(Caller caller, long id, ScaleRequest request, CancellationToken ct = default)
    {
        var row = await VisibleAsync(caller, id);
        var template = TemplateOf(row);
        var role = template.Roles!.FirstOrDefault(r => string.Equals(r.Name, request.Role, StringComparison.OrdinalIgnoreCase))
            ?? throw new InvalidInputException("role", $"'{request.Role}' is not a role of service {id}; roles: {string.Join(", ", template.Roles!.Select(r => r.Name))}.");
        var c = role.Cardinality ?? new Cardinality();
        if (request.Cardinality is not { } n || n < c.Min || n > c.Max)
            throw new InvalidInputException("cardinality", $"cardinality {request.Cardinality?.ToString() ?? "(missing)"} is outside role '{role.Name}''s min..max ({c.Min}..{c.Max}); give a number in that range.");
        await _lock.WaitAsync(ct);
        try
        {
            row = await store.GetAsync(id) ?? throw new NotFoundException($"Service {id}");
            if (row.State == "DONE") throw new ConflictException($"Service {id} is DONE (deleted); it cannot be scaled. Create it again.");
            var roleRow = (await store.RolesAsync(id)).Single(r => r.Name == role.Name);
            if (roleRow.Cardinality != n)
            {
                await store.AddDecisionAsync(id, roleRow.Name, "manual", null, roleRow.Cardinality, n, $"set by {caller.Name}", "{}");
                roleRow.Cardinality = n;
                roleRow.CooldownSecs = null;
                roleRow.CooldownUntil = null;
                roleRow.Streaks = "[]";
                await store.SaveRoleAsync(roleRow);
            }
        }
        finally { _lock.Release(); }
        Wake();
        return await GetAsync(caller, id, ct);
    }

    public async Task<ServiceView> DeleteAsync(Caller caller, long id, CancellationToken ct = default)
    {
        var row = await VisibleAsync(caller, id);
        await _lock.WaitAsync(ct);
        try
        {
            var owner = await OwnerAsync(row.OwnerId);
            var members = await store.MembersAsync(id);
            foreach (var m in members)
            {
                await TerminateQuietlyAsync(owner, m.InstanceId);
                await store.MarkEndedAsync(m.InstanceId);
                _memberServices.TryRemove(m.InstanceId, out _);
            }
            await store.SetStateAsync(id, "DONE", $"deleted by {caller.Name}; {members.Count} member(s) terminated");
        }
        finally { _lock.Release(); }
        return await GetAsync(caller, id, ct);
    }

    // ---- guest API -------------------------------------------------------------------------------------

    /// <summary>What a member instance sees of its service, or null when it is no member of a live service.</summary>
    public async Task<GuestServiceView?> GuestViewAsync(long instanceId, CancellationToken ct)
    {
        if (await store.MemberAsync(instanceId) is not { Ended: false } member) return null;
        if (await store.GetAsync(member.ServiceId) is not { } row || row.State == "DONE") return null;
        var owner = await OwnerAsync(row.OwnerId);
        var members = await store.MembersAsync(row.Id);
        var views = await MemberViewsAsync(owner, members, ct);
        var ips = IpsByRole(TemplateOf(row), members, views);
        var context = new Dictionary<string, string>(ServiceContext(row, member.Role, ips));
        return new GuestServiceView(row.Id, row.Name, member.Role, row.State, ips, context);
    }

    // ---- views -------------------------------------------------------------------------------------------

    async Task<ServiceRow> VisibleAsync(Caller caller, long id)
    {
        var row = await store.GetAsync(id);
        if (row is null || (!caller.IsAdmin && row.OwnerId != caller.UserId)) throw new NotFoundException($"Service {id}");
        return row;
    }

    static ServiceTemplate TemplateOf(ServiceRow row) => JsonSerializer.Deserialize<ServiceTemplate>(row.Template, Json)!;

    async Task<Caller> OwnerAsync(long userId)
    {
        var user = await users.FindAsync(userId) ?? throw new NotFoundException($"User {userId} (the service's owner)");
        return new Caller(user.Id, user.Name, user.Role == IdentityClaims.AdminRole, user.PrimaryGroupId, []);
    }

    async Task<Dictionary<long, InstanceView>> MemberViewsAsync(Caller owner, IReadOnlyList<MemberRow> members, CancellationToken ct)
    {
        if (members.Count == 0) return [];
        var list = await instances.ListAsync(owner, new InstanceQuery(Ids: members.Select(m => m.InstanceId).ToList(), Limit: 1000), ct);
        return list.ToDictionary(v => v.Id);
    }

    static string? IpOf(InstanceView? v) => v?.Nics.Count > 0 ? v.Nics[0].Ip : null;

    /// <summary>Each role's addresses: its members that are not leaving and have a lease, oldest first.</summary>
    static Dictionary<string, IReadOnlyList<string>> IpsByRole(ServiceTemplate template, IReadOnlyList<MemberRow> members, IReadOnlyDictionary<long, InstanceView> views) =>
        template.Roles!.ToDictionary(r => r.Name!, r => (IReadOnlyList<string>)members
            .Where(m => m.Role == r.Name && !m.Leaving && views.TryGetValue(m.InstanceId, out var v) && v.State is not ("DONE" or "FAILED" or "EPILOG"))
            .Select(m => IpOf(views[m.InstanceId])).OfType<string>().ToList());

    /// <summary>SERVICE_ID, SERVICE_NAME, SERVICE_ROLE and every role's ROLE_&lt;NAME&gt;_IPS.</summary>
    static IEnumerable<KeyValuePair<string, string>> ServiceContext(ServiceRow row, string role, IReadOnlyDictionary<string, IReadOnlyList<string>> ips)
    {
        yield return new("SERVICE_ID", row.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return new("SERVICE_NAME", row.Name);
        yield return new("SERVICE_ROLE", role);
        foreach (var (name, list) in ips) yield return new(ServiceRules.IpsKey(name), string.Join(',', list));
    }

    async Task<ServiceView> ViewAsync(ServiceRow row, CancellationToken ct)
    {
        var owner = await OwnerAsync(row.OwnerId);
        var template = TemplateOf(row);
        var members = await store.MembersAsync(row.Id);
        var views = await MemberViewsAsync(owner, members, ct);
        var ips = IpsByRole(template, members, views);
        var roles = new List<RoleView>();
        var roleRows = (await store.RolesAsync(row.Id)).ToDictionary(r => r.Name);
        foreach (var rt in template.Roles!)
        {
            var rr = roleRows[rt.Name!];
            var c = rt.Cardinality ?? new Cardinality();
            var ms = members.Where(m => m.Role == rt.Name).Select(m =>
            {
                views.TryGetValue(m.InstanceId, out var v);
                return new MemberView(m.InstanceId, v?.State ?? "DONE", v?.Ready ?? false, IpOf(v), m.Leaving, DateTimeOffset.FromUnixTimeSeconds(m.JoinedAt));
            }).ToList();
            roles.Add(new RoleView(rt.Name!, rr.Cardinality, c.Min, c.Max, rr.Started, ms, ips[rt.Name!],
                rr.CooldownUntil is { } u ? DateTimeOffset.FromUnixTimeSeconds(u) : null));
        }
        var decisions = (await store.DecisionsAsync(row.Id)).Select(d => new DecisionView(d.Id, DateTimeOffset.FromUnixTimeSeconds(d.At), d.Role, d.Kind, d.Rule,
            d.FromCount, d.ToCount, d.Reason, JsonSerializer.Deserialize<Dictionary<string, object?>>(d.Vals, Json) ?? [])).ToList();
        return new ServiceView(row.Id, row.Name, owner.Name, row.State, row.Reason, roles, decisions, template,
            DateTimeOffset.FromUnixTimeSeconds(row.CreatedAt), DateTimeOffset.FromUnixTimeSeconds(row.UpdatedAt));
    }

    async Task TerminateQuietlyAsync(Caller owner, long instanceId)
    {
        try { await instances.TerminateAsync(owner, instanceId); }
        catch (DomainException e) when (e is NotFoundException or ConflictException) { }
    }
}
