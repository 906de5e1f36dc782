using System.Text.RegularExpressions;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Services.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Services;

/// <summary>
/// Checks a service template before anything is created: names, cardinalities, dependencies (no cycles), rules, and that the
/// images, instance types and networks exist for the caller. The first problem is an <see cref="InvalidInputException"/>
/// whose field is the path in the template (roles[1].elasticity[0].expression).
/// </summary>
internal sealed partial class TemplateValidator(IImageCache images, IInstances instances, INetworks networks)
{
    public const int MaxRoles = 20;
    public const int MaxCardinality = 100;

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
    private static partial Regex RoleName();

    static InvalidInputException Bad(string field, string detail) => new(field, $"{field}: {detail}");

    public async Task CheckAsync(Caller caller, ServiceTemplate? t, CancellationToken ct)
    {
        if (t is null) throw Bad("body", "send a service template: {\"name\": ..., \"roles\": [{\"name\", \"image\", \"type\", \"cardinality\": {\"min\", \"max\", \"initial\"}, ...}]}.");
        if (string.IsNullOrWhiteSpace(t.Name) || t.Name.Length > 64 || t.Name.Any(char.IsControl))
            throw Bad("name", "give the service a name of 1-64 printable characters.");
        if (t.Roles is not { Count: > 0 })
            throw Bad("roles", "a service needs at least one role.");
        if (t.Roles.Count > MaxRoles)
            throw Bad("roles", $"{t.Roles.Count} roles; at most {MaxRoles} are accepted.");

        var names = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < t.Roles.Count; i++)
        {
            var r = t.Roles[i];
            var at = $"roles[{i}]";
            if (r is null) throw Bad(at, "a role is an object with name, image, type, cardinality, ...");
            if (r.Name is null || !RoleName().IsMatch(r.Name))
                throw Bad($"{at}.name", $"'{r.Name}' is not a role name: 1-32 characters, a letter first, then letters, digits, '_' or '-'.");
            if (!names.TryAdd(r.Name, i))
                throw Bad($"{at}.name", $"role '{r.Name}' is already roles[{names[r.Name]}]; role names are unique (case-insensitive).");
        }

        var types = (await instances.ListTypesAsync(ct)).Select(x => x.Name).ToList();
        IReadOnlyList<string>? networkNames = null;
        for (var i = 0; i < t.Roles.Count; i++)
        {
            var r = t.Roles[i];
            var at = $"roles[{i}]";
            var c = r.Cardinality ?? new Cardinality();
            if (c.Min < 0 || c.Max < 1 || c.Max > MaxCardinality)
                throw Bad($"{at}.cardinality", $"min {c.Min}, max {c.Max}: min must be at least 0 and max between 1 and {MaxCardinality}.");
            if (c.Min > c.Max)
                throw Bad($"{at}.cardinality.min", $"min ({c.Min}) is greater than max ({c.Max}); make min <= max.");
            if (c.Initial is { } initial && (initial < c.Min || initial > c.Max))
                throw Bad($"{at}.cardinality.initial", $"initial ({initial}) is outside min..max ({c.Min}..{c.Max}).");

            if (r.Type is not null && !types.Contains(r.Type))
                throw Bad($"{at}.type", $"instance type '{r.Type}' does not exist; known types: {string.Join(", ", types)}.");
            if (r.ReadyGate is not (null or "running" or "guest"))
                throw Bad($"{at}.readyGate", $"'{r.ReadyGate}' is not accepted; accepted values: running (members RUNNING), guest (members also reported ready).");
            try
            {
                await images.ResolveAsync(r.Image, ct);
            }
            catch (DomainException e)
            {
                throw Bad($"{at}.image", $"image '{r.Image}' cannot be used: {e.Detail}");
            }
            for (var j = 0; j < (r.Networks?.Count ?? 0); j++)
            {
                networkNames ??= (await networks.ListAsync(caller, ct)).Select(n => n.Name).ToList();
                if (!networkNames.Contains(r.Networks![j]))
                    throw Bad($"{at}.networks[{j}]", $"network '{r.Networks[j]}' does not exist or is not yours to use; known: {string.Join(", ", networkNames)}.");
            }
            foreach (var key in r.Context?.Keys ?? [])
                if (key.StartsWith("ROLE_", StringComparison.OrdinalIgnoreCase) || key.StartsWith("SERVICE_", StringComparison.OrdinalIgnoreCase))
                    throw Bad($"{at}.context.{key}", "ROLE_* and SERVICE_* context values are set by the service manager; rename it.");
            for (var j = 0; j < (r.DependsOn?.Count ?? 0); j++)
            {
                var d = r.DependsOn![j];
                if (d is null || !names.ContainsKey(d))
                    throw Bad($"{at}.dependsOn[{j}]", $"'{d}' is not a role of this service; roles: {string.Join(", ", names.Keys)}.");
                if (string.Equals(d, r.Name, StringComparison.OrdinalIgnoreCase))
                    throw Bad($"{at}.dependsOn[{j}]", $"role '{r.Name}' depends on itself.");
            }
            for (var j = 0; j < (r.Elasticity?.Count ?? 0); j++)
            {
                var e = r.Elasticity![j];
                var ef = $"{at}.elasticity[{j}]";
                if (e is null) throw Bad(ef, "an elasticity rule is an object: expression, periods, adjustment, cooldownSeconds.");
                if (ServiceRules.ParseExpression(e.Expression, out var error) is null) throw Bad($"{ef}.expression", error!);
                if (ServiceRules.ParseAdjustment(e.Adjustment, out error) is null) throw Bad($"{ef}.adjustment", error!);
                if (e.Periods is < 1 or > 1000) throw Bad($"{ef}.periods", $"{e.Periods} is out of range; accepted: 1 to 1000 consecutive evaluations.");
                if (e.CooldownSeconds is < 0 or > 86_400) throw Bad($"{ef}.cooldownSeconds", $"{e.CooldownSeconds} is out of range; accepted: 0 to 86400.");
            }
            for (var j = 0; j < (r.Scheduled?.Count ?? 0); j++)
            {
                var s = r.Scheduled![j];
                var sf = $"{at}.scheduled[{j}]";
                if (s is null) throw Bad(sf, "a scheduled rule is an object: cron, and cardinality or adjustment.");
                if (ServiceRules.ParseCron(s.Cron, out var error) is null) throw Bad($"{sf}.cron", error!);
                if ((s.Cardinality is null) == (s.Adjustment is null))
                    throw Bad(sf, "give either cardinality (the count to set) or adjustment (+N, -N, +N%, -N%).");
                if (s.Adjustment is not null && ServiceRules.ParseAdjustment(s.Adjustment, out error) is null) throw Bad($"{sf}.adjustment", error!);
                if (s.Cardinality is { } n && (n < c.Min || n > c.Max))
                    throw Bad($"{sf}.cardinality", $"{n} is outside the role's min..max ({c.Min}..{c.Max}).");
            }
        }

        var graph = t.Roles.ToDictionary(r => r.Name!, r => (IReadOnlyList<string>)(r.DependsOn ?? []).Select(d => names.Keys.First(k => string.Equals(k, d, StringComparison.OrdinalIgnoreCase))).ToList());
        if (ServiceRules.FindCycle(graph) is { } cycle)
        {
            var first = names[cycle[0]];
            var j = t.Roles[first].DependsOn!.ToList().FindIndex(d => string.Equals(d, cycle[1], StringComparison.OrdinalIgnoreCase));
            throw Bad($"roles[{first}].dependsOn[{j}]", $"the roles depend on each other in a cycle ({string.Join(" -> ", cycle)}); remove one of these dependencies.");
        }
    }
}
