using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Services.Contracts;

/// <summary>How many members a role has: never fewer than <see cref="Min"/> nor more than <see cref="Max"/>; <see cref="Initial"/> at deployment (default: min).</summary>
public sealed record Cardinality(int Min = 1, int Max = 1, int? Initial = null);

/// <summary>
/// An elasticity rule of a role: <see cref="Expression"/> is <c>AGG(KPI[, WINDOW]) OP NUMBER</c> over the role's members' guest
/// KPIs (AGG: avg, min, max, sum; WINDOW: 30s, 5m, default 60s; OP: &gt;, &gt;=, &lt;, &lt;=). When it holds on <see cref="Periods"/>
/// consecutive evaluations, the cardinality changes by <see cref="Adjustment"/> (+N, -N, +N%, -N%), within min and max; then the role
/// waits <see cref="CooldownSeconds"/> (after the change completed) before another rule may fire.
/// </summary>
public sealed record ElasticityRule(string? Expression = null, int Periods = 1, string? Adjustment = null, int CooldownSeconds = 60);

/// <summary>A scheduled rule: at each time the Quartz cron expression (seconds first, e.g. "0 0 8 ? * MON-FRI") names, the role's cardinality becomes <see cref="Cardinality"/> (within min and max) or changes by <see cref="Adjustment"/>.</summary>
public sealed record ScheduledRule(string? Cron = null, int? Cardinality = null, string? Adjustment = null);

/// <summary>
/// A role of a service: <see cref="Image"/> and <see cref="Type"/> (an instance type) as in POST /instances, <see cref="Networks"/>
/// (names), <see cref="Context"/> (KEY=value, added to every member's context besides SERVICE_* and ROLE_&lt;NAME&gt;_IPS),
/// <see cref="DependsOn"/> (roles that must be ready first), <see cref="ReadyGate"/> (running: a role is ready when its members are
/// RUNNING; guest: when they also reported ready through the guest API).
/// </summary>
public sealed record RoleTemplate(
    string? Name = null,
    string? Image = null,
    string? Type = null,
    Cardinality? Cardinality = null,
    IReadOnlyList<string>? Networks = null,
    IReadOnlyDictionary<string, string>? Context = null,
    IReadOnlyList<string>? DependsOn = null,
    IReadOnlyList<ElasticityRule>? Elasticity = null,
    IReadOnlyList<ScheduledRule>? Scheduled = null,
    string? ReadyGate = null);

/// <summary>Body of POST /api/v1/services: a name and its roles.</summary>
public sealed record ServiceTemplate(string? Name = null, IReadOnlyList<RoleTemplate>? Roles = null);

/// <summary>A member of a role: its instance, state and (first NIC's) address; <see cref="Leaving"/> while a scale-in shuts it down.</summary>
public sealed record MemberView(long InstanceId, string State, bool Ready, string? Ip, bool Leaving, DateTimeOffset JoinedAt);

/// <summary>A role as it runs: the cardinality it is kept at, its members, the addresses it publishes (ROLE_&lt;NAME&gt;_IPS).</summary>
public sealed record RoleView(string Name, int Cardinality, int Min, int Max, bool Started, IReadOnlyList<MemberView> Members,
    IReadOnlyList<string> Ips, DateTimeOffset? CooldownUntil);

/// <summary>
/// One scaling decision: <see cref="Kind"/> is elasticity, schedule, manual, replace (a failed member) or deploy; <see cref="Rule"/> the rule
/// that fired; <see cref="Values"/> what it saw (the KPI aggregate, each member's mean, the number of consecutive periods, ...).
/// </summary>
public sealed record DecisionView(long Id, DateTimeOffset At, string Role, string Kind, string? Rule, int From, int To, string Reason,
    IReadOnlyDictionary<string, object?> Values);

/// <summary>A service: state DEPLOYING, RUNNING, SCALING, COOLDOWN, FAILED or DONE, with the reason of the last change.</summary>
public sealed record ServiceView(long Id, string Name, string Owner, string State, string? Reason, IReadOnlyList<RoleView> Roles,
    IReadOnlyList<DecisionView> Decisions, ServiceTemplate Template, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>Body of POST /api/v1/services/{id}/scale.</summary>
public sealed record ScaleRequest(string? Role = null, int? Cardinality = null);

/// <summary>What GET /guest/v1/service tells a member: its service and role, and every role's current member addresses (also as ROLE_&lt;NAME&gt;_IPS).</summary>
public sealed record GuestServiceView(long ServiceId, string Service, string Role, string State, IReadOnlyDictionary<string, IReadOnlyList<string>> Roles,
    IReadOnlyDictionary<string, string> Context);

/// <summary>
/// The service manager (Claudia, OneFlow): multi-VM services whose roles start in dependency order and scale on their members'
/// guest KPIs. Members are launched through Compute's IInstances as the service's owner, so quotas, policy and permissions
/// apply as to any launch. Owner or admin only; someone else's service is NotFound. Bad templates are InvalidInputException
/// naming the field (roles[1].elasticity[0].expression); nothing is created then.
/// </summary>
public interface IServices
{
    Task<ServiceView> CreateAsync(Caller caller, ServiceTemplate template, CancellationToken ct = default);
    Task<IReadOnlyList<ServiceView>> ListAsync(Caller caller, CancellationToken ct = default);
    Task<ServiceView> GetAsync(Caller caller, long id, CancellationToken ct = default);
    /// <summary>Sets a role's cardinality by hand (within min and max; recorded as a manual decision).</summary>
    Task<ServiceView> ScaleAsync(Caller caller, long id, ScaleRequest request, CancellationToken ct = default);
    /// <summary>Terminates every member; the service ends DONE.</summary>
    Task<ServiceView> DeleteAsync(Caller caller, long id, CancellationToken ct = default);
}
