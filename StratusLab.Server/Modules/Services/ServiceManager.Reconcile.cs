using System.Globalization;
using System.Text.Json;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Services.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Services;

internal sealed partial class ServiceManager
{
    static readonly System.Diagnostics.Metrics.Counter<long> Decisions =
        Platform.Telemetry.Telemetry.Meter.CreateCounter<long>("stratuslab.services.decisions", "{decision}", "Scaling decisions taken by the service manager");

    /// <summary>
    /// One pass over every live service. <paramref name="evaluate"/>: this pass counts as an evaluation of the rules (a tick of
    /// Services:EvaluateIntervalSeconds), not only a reaction to a member's change.
    /// </summary>
    public async Task ReconcileAllAsync(bool evaluate, CancellationToken ct)
    {
        foreach (var row in await store.ListAsync(null, activeOnly: true))
        {
            await _lock.WaitAsync(ct);
            try
            {
                // Re-read under the lock: a delete may have finished meanwhile.
                if (await store.GetAsync(row.Id) is { State: not "DONE" } current) await ReconcileAsync(current, evaluate, ct);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                logger.LogError(e, "Service {Id}: the pass failed", row.Id);
                await store.SetStateAsync(row.Id, "FAILED", $"the service manager's pass failed: {e.Message}; retried at the next evaluation");
            }
            finally { _lock.Release(); }
        }
    }

    sealed record RoleRun(RoleTemplate Template, RoleRow Row, Cardinality Limits)
    {
        public List<MemberRow> Active { get; } = [];
    }

    async Task ReconcileAsync(ServiceRow row, bool evaluate, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var owner = await OwnerAsync(row.OwnerId);
        var template = TemplateOf(row);
        var roleRows = (await store.RolesAsync(row.Id)).ToDictionary(r => r.Name);
        var members = await store.MembersAsync(row.Id);
        foreach (var m in members) _memberServices[m.InstanceId] = row.Id;
        var views = await MemberViewsAsync(owner, members, ct);
        var roles = template.Roles!.ToDictionary(r => r.Name!, r => new RoleRun(r, roleRows[r.Name!], r.Cardinality ?? new Cardinality()));
        string? trouble = null;

        // 1. Members that ended or failed leave; a failed (or vanished) member that was not leaving is replaced.
        foreach (var m in members)
        {
            views.TryGetValue(m.InstanceId, out var v);
            var state = v?.State ?? "DONE";
            if (state is "DONE" or "FAILED")
            {
                if (state == "FAILED") await TerminateQuietlyAsync(owner, m.InstanceId);
                await store.MarkEndedAsync(m.InstanceId);
                _memberServices.TryRemove(m.InstanceId, out _);
                if (!m.Leaving)
                {
                    var run = roles[m.Role];
                    var why = state == "FAILED"
                        ? $"member {m.InstanceId} FAILED ({v?.FailedStep}: {v?.FailureReason}); a new member replaces it"
                        : $"member {m.InstanceId} ended without the service asking; a new member replaces it";
                    await DecideAsync(row.Id, m.Role, "replace", null, run.Row.Cardinality, run.Row.Cardinality, why,
                        new() { ["instanceId"] = m.InstanceId, ["state"] = state, ["failedStep"] = v?.FailedStep, ["failureReason"] = v?.FailureReason });
                    trouble = $"role {m.Role}: replacing member {m.InstanceId} ({state})";
                }
                continue;
            }
            if (!m.Leaving) roles[m.Role].Active.Add(m);
        }

        bool Ready(RoleRun r) => r.Row.Started && r.Active.Count >= r.Row.Cardinality && r.Active.All(m => views.TryGetValue(m.InstanceId, out var v)
            && v.State == "RUNNING" && (r.Template.ReadyGate != "guest" || v.Ready));

        // 2. Roles start in dependency order; a started role is kept at its cardinality.
        var order = ServiceRules.DependencyOrder(template.Roles!.Select(r => (r.Name!, (IReadOnlyList<string>)(r.DependsOn ?? []))).ToList());
        var waiting = new List<string>();
        foreach (var name in order)
        {
            var run = roles[name];
            var deps = (run.Template.DependsOn ?? []).Select(d => roles.Values.First(x => string.Equals(x.Template.Name, d, StringComparison.OrdinalIgnoreCase))).ToList();
            if (!run.Row.Started)
            {
                var notReady = deps.Where(d => !Ready(d)).Select(d => d.Template.Name).ToList();
                if (notReady.Count > 0)
                {
                    waiting.Add($"{name} waits for {string.Join(", ", notReady)}");
                    continue;
                }
                run.Row.Started = true;
                await store.SaveRoleAsync(run.Row);
                await DecideAsync(row.Id, name, "deploy", null, 0, run.Row.Cardinality,
                    deps.Count == 0 ? "deployed (no dependencies)" : $"deployed: {string.Join(", ", deps.Select(d => d.Template.Name))} ready", []);
            }
            var missing = run.Row.Cardinality - run.Active.Count;
            for (var i = 0; i < missing; i++)
            {
                try
                {
                    var ips = IpsByRole(template, await store.MembersAsync(row.Id), views);
                    var context = new Dictionary<string, string>(run.Template.Context ?? new Dictionary<string, string>());
                    foreach (var (k, value) in ServiceContext(row, name, ips)) context[k] = value;
                    var launched = await instances.LaunchAsync(owner, new CreateInstanceRequest(Image: run.Template.Image, InstanceType: run.Template.Type,
                        Name: $"{row.Name}-{name}-{await store.MembersEverAsync(row.Id, name) + 1}", Networks: run.Template.Networks, Context: context), ct);
                    foreach (var v in launched)
                    {
                        await store.AddMemberAsync(row.Id, name, v.Id);
                        _memberServices[v.Id] = row.Id;
                        views[v.Id] = v;
                        run.Active.Add(new MemberRow { InstanceId = v.Id, ServiceId = row.Id, Role = name, JoinedAt = now });
                    }
                }
                catch (DomainException e)
                {
                    await store.SetStateAsync(row.Id, "FAILED", $"role {name}: a member could not be launched: {e.Detail} (retried at every evaluation)");
                    return;
                }
            }
            if (missing < 0)
                foreach (var m in run.Active.OrderByDescending(m => m.JoinedAt).ThenByDescending(m => m.InstanceId).Take(-missing).ToList())
                {
                    await RetireAsync(owner, m.InstanceId, views.GetValueOrDefault(m.InstanceId));
                    run.Active.Remove(m);
                }
        }

        // 3. Cooldowns start once a change has settled; rules are evaluated on ticks only, for settled started roles.
        var cooling = new List<string>();
        foreach (var run in roles.Values.Where(r => r.Row.Started))
        {
            var settled = Ready(run) && run.Active.Count == run.Row.Cardinality;
            var dirty = false;
            if (settled && run.Row.CooldownSecs is { } secs)
            {
                run.Row.CooldownUntil = now + secs;
                run.Row.CooldownSecs = null;
                dirty = true;
            }
            if (evaluate)
            {
                dirty = true;
                if (await EvaluateScheduledAsync(row, run, now)) { }
                else if (settled && !(run.Row.CooldownUntil > now)) await EvaluateElasticityAsync(row, run, ct);
                run.Row.LastEvaluated = now;
            }
            if (dirty) await store.SaveRoleAsync(run.Row);
            if (run.Row.CooldownUntil > now) cooling.Add($"{run.Template.Name} until {DateTimeOffset.FromUnixTimeSeconds(run.Row.CooldownUntil.Value):HH:mm:ss}Z");
        }

        // 4. The service's state, with its reason.
        var unready = roles.Values.Where(r => !Ready(r) || r.Active.Count != r.Row.Cardinality).ToList();
        if (row.State is "DEPLOYING" || (row.State == "FAILED" && roles.Values.Any(r => !r.Row.Started)))
        {
            if (unready.Count == 0) await store.SetStateAsync(row.Id, "RUNNING", "every role is at its cardinality, its members RUNNING");
            else await store.SetStateAsync(row.Id, "DEPLOYING", waiting.Count > 0 ? string.Join("; ", waiting)
                : $"starting {string.Join(", ", unready.Select(r => $"{r.Template.Name} ({r.Active.Count(m => views.GetValueOrDefault(m.InstanceId)?.State == "RUNNING")}/{r.Row.Cardinality} RUNNING)"))}");
        }
        else if (unready.Count > 0 || roles.Values.Any(r => r.Row.Cardinality != r.Active.Count))
            await store.SetStateAsync(row.Id, "SCALING", trouble ?? $"bringing {string.Join(", ", (unready.Count > 0 ? unready : roles.Values.ToList()).Select(r => $"{r.Template.Name} to {r.Row.Cardinality}"))}");
        else if (roles.Values.Any(r => r.Row.CooldownSecs is not null) || cooling.Count > 0)
            await store.SetStateAsync(row.Id, "COOLDOWN", roles.Values.Any(r => r.Row.CooldownSecs is not null) ? "a scaling decision was just taken" : $"cooling down after scaling: {string.Join(", ", cooling)}");
        else
            await store.SetStateAsync(row.Id, "RUNNING", "every role is at its cardinality, its members RUNNING");
    }

    /// <summary>Scale-in: the member leaves the addresses at once and is shut down gracefully (terminated when it cannot shut down).</summary>
    async Task RetireAsync(Caller owner, long instanceId, InstanceView? view)
    {
        await store.MarkLeavingAsync(instanceId);
        try
        {
            if (view?.State == "RUNNING") await instances.ActAsync(owner, instanceId, "shutdown");
            else await instances.TerminateAsync(owner, instanceId);
        }
        catch (ConflictException)
        {
            await TerminateQuietlyAsync(owner, instanceId);
        }
        catch (NotFoundException) { }
    }

    /// <summary>Fires the scheduled rules whose cron time passed since the last evaluation; true when one changed the cardinality.</summary>
    async Task<bool> EvaluateScheduledAsync(ServiceRow row, RoleRun run, long now)
    {
        var since = DateTimeOffset.FromUnixTimeSeconds(run.Row.LastEvaluated ?? now);
        for (var j = 0; j < (run.Template.Scheduled?.Count ?? 0); j++)
        {
            var rule = run.Template.Scheduled![j];
            var cron = ServiceRules.ParseCron(rule.Cron, out _)!;
            if (cron.GetNextValidTimeAfter(since) is not { } next || next.ToUnixTimeSeconds() > now) continue;
            var from = run.Row.Cardinality;
            var wanted = rule.Cardinality ?? ServiceRules.ParseAdjustment(rule.Adjustment, out _)!.Apply(from);
            var to = Math.Clamp(wanted, run.Limits.Min, run.Limits.Max);
            if (to == from) continue;
            await DecideAsync(row.Id, run.Template.Name!, "schedule", $"scheduled[{j}] cron '{rule.Cron}'", from, to,
                $"scheduled at {next:O}" + (wanted != to ? $" (asked {wanted}, kept within {run.Limits.Min}..{run.Limits.Max})" : ""),
                new() { ["firedAt"] = next, ["asked"] = wanted });
            run.Row.Cardinality = to;
            run.Row.Streaks = "[]";
            return true;
        }
        return false;
    }

    async Task EvaluateElasticityAsync(ServiceRow row, RoleRun run, CancellationToken ct)
    {
        var rules = run.Template.Elasticity ?? [];
        if (rules.Count == 0) return;
        var streaks = JsonSerializer.Deserialize<int[]>(run.Row.Streaks) ?? [];
        if (streaks.Length != rules.Count) streaks = new int[rules.Count];
        var ids = run.Active.Select(m => m.InstanceId).ToList();
        for (var j = 0; j < rules.Count; j++)
        {
            var rule = rules[j];
            var condition = ServiceRules.ParseExpression(rule.Expression, out _)!;
            var reading = await kpis.ReadAsync(ids, condition.Kpi, condition.Aggregate, condition.Window, ct);
            streaks[j] = reading.Value is { } value && condition.Holds(value) ? streaks[j] + 1 : 0;
            if (streaks[j] < rule.Periods) continue;
            var from = run.Row.Cardinality;
            var wanted = ServiceRules.ParseAdjustment(rule.Adjustment, out _)!.Apply(from);
            var to = Math.Clamp(wanted, run.Limits.Min, run.Limits.Max);
            if (to == from) continue; // at min or max: nothing to do, the streak keeps counting
            await DecideAsync(row.Id, run.Template.Name!, "elasticity", $"elasticity[{j}] {rule.Expression} for {rule.Periods} period(s): {rule.Adjustment}", from, to,
                $"{condition.Aggregate.ToString().ToLowerInvariant()}({condition.Kpi}) = {reading.Value!.Value.ToString("0.###", CultureInfo.InvariantCulture)} {condition.Operator} {condition.Threshold.ToString(CultureInfo.InvariantCulture)} on {streaks[j]} consecutive evaluation(s)"
                    + (wanted != to ? $"; {wanted} kept within {run.Limits.Min}..{run.Limits.Max}" : ""),
                new()
                {
                    ["value"] = reading.Value, ["threshold"] = condition.Threshold, ["operator"] = condition.Operator,
                    ["aggregate"] = condition.Aggregate.ToString().ToLowerInvariant(), ["kpi"] = condition.Kpi, ["windowSeconds"] = condition.Window.TotalSeconds,
                    ["members"] = reading.Members, ["samples"] = reading.Samples, ["periods"] = streaks[j],
                    ["perMember"] = reading.PerMember.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value),
                });
            run.Row.Cardinality = to;
            run.Row.CooldownSecs = rule.CooldownSeconds;
            run.Row.CooldownUntil = null;
            streaks = new int[rules.Count];
            break;
        }
        run.Row.Streaks = JsonSerializer.Serialize(streaks);
    }

    async Task DecideAsync(long serviceId, string role, string kind, string? rule, int from, int to, string reason, Dictionary<string, object?> values)
    {
        await store.AddDecisionAsync(serviceId, role, kind, rule, from, to, reason, JsonSerializer.Serialize(values, Json));
        Decisions.Add(1, new KeyValuePair<string, object?>("kind", kind));
        Wake(); // act on it (launch or retire members) in a pass right after this one, not a tick later
        logger.LogInformation("Service {Id} role {Role}: {Kind} {From} -> {To}: {Reason}", serviceId, role, kind, from, to, reason);
    }
}
