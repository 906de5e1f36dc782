using System.Text.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>Multi-VM services with elasticity: create from a template, describe (roles, members, decisions), scale, delete.</summary>
public static class ServiceCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("service-create", "FILE", "deploy a service from a JSON template (roles, cardinality, dependsOn, elasticity rules)", Create)
            { Example = "stratuslab service-create config/examples/service-balancer.json" },
        new("describe-services", "[ID]", "your services (all for admins), or one: state and reason, roles, members and their addresses, scaling decisions", Describe)
            { Example = "stratuslab describe-services\nstratuslab describe-services 2 --json" },
        new("service-scale", "ID ROLE CARDINALITY", "set a role's cardinality by hand (within its min and max)", Scale)
            { Example = "stratuslab service-scale 2 frontend 3" },
        new("service-delete", "ID", "terminate every member of a service; it ends DONE", Delete)
            { Example = "stratuslab service-delete 2" },
    ];

    static long Id(CliContext cx)
    {
        var text = cx.Args.Positional(0, "the service ID");
        return long.TryParse(text, out var n) && n > 0 ? n : throw new UsageException($"'{text}' is not a service ID (a positive number).");
    }

    static async Task<int> Create(CliContext cx)
    {
        var file = cx.Args.Positional(0, "the template file");
        if (!File.Exists(file)) throw new UsageException($"'{file}' does not exist; give a JSON or YAML service template (see config/examples/service-balancer.json and .yaml).");
        object? template;
        var text = await File.ReadAllTextAsync(file);
        if (file.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
            template = new StringContent(text, System.Text.Encoding.UTF8, "application/yaml"); // the server reads it, and names line and column of what it refuses
        else
        {
            try { template = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
            catch (JsonException e) { throw new UsageException($"'{file}' is not JSON: {e.Message} (a YAML template must be named .yaml or .yml)"); }
        }
        var created = await cx.Api.PostAsync("api/v1/services", template);
        return cx.Print(created, s => cx.Out.WriteLine($"service {s["id"]} '{s["name"]}' {s["state"]}: {s["reason"]}"));
    }

    static async Task<int> Describe(CliContext cx)
    {
        var text = cx.Args.Positionals.Count > 0 ? cx.Args.Positionals[0] : null;
        if (text is null)
        {
            var list = await cx.Api.GetAsync("api/v1/services");
            return cx.Print(list, l => cx.Table(l.AsArray(),
                ("id", s => s["id"]?.ToString()), ("name", s => s["name"]?.ToString()), ("owner", s => s["owner"]?.ToString()),
                ("state", s => s["state"]?.ToString()),
                ("roles", s => string.Join(" ", s["roles"]!.AsArray().Select(r => $"{r!["name"]}={r["members"]!.AsArray().Count(m => !m!["leaving"]!.GetValue<bool>())}/{r["cardinality"]}"))),
                ("reason", s => s["reason"]?.ToString())));
        }
        var id = long.TryParse(text, out var n) && n > 0 ? n : throw new UsageException($"'{text}' is not a service ID (a positive number).");
        var service = await cx.Api.GetAsync($"api/v1/services/{id}");
        return cx.Print(service, s =>
        {
            cx.Out.WriteLine($"service {s["id"]} '{s["name"]}' of {s["owner"]}: {s["state"]} ({s["reason"]})");
            foreach (var r in s["roles"]!.AsArray())
            {
                cx.Out.WriteLine($"role {r!["name"]}: cardinality {r["cardinality"]} ({r["min"]}..{r["max"]}), addresses {string.Join(",", r["ips"]!.AsArray())}"
                    + (r["cooldownUntil"] is { } u ? $", cooldown until {u}" : ""));
                cx.Table(r["members"]!.AsArray(), ("instance", m => m["instanceId"]?.ToString()), ("state", m => m["state"]?.ToString()),
                    ("ip", m => m["ip"]?.ToString()), ("leaving", m => m["leaving"]!.GetValue<bool>() ? "yes" : ""), ("joined", m => m["joinedAt"]?.ToString()));
            }
            cx.Out.WriteLine("decisions:");
            cx.Table(s["decisions"]!.AsArray(), ("time", d => d["at"]?.ToString()), ("role", d => d["role"]?.ToString()), ("kind", d => d["kind"]?.ToString()),
                ("change", d => $"{d["from"]} -> {d["to"]}"), ("reason", d => d["reason"]?.ToString()));
        });
    }

    static async Task<int> Scale(CliContext cx)
    {
        var id = Id(cx);
        var role = cx.Args.Positional(1, "the role");
        var text = cx.Args.Positional(2, "the cardinality");
        var count = int.TryParse(text, out var c) && c >= 0 ? c : throw new UsageException($"'{text}' is not a cardinality (a number, 0 or more).");
        var scaled = await cx.Api.PostAsync($"api/v1/services/{id}/scale", new { role, cardinality = count });
        return cx.Print(scaled, s => cx.Out.WriteLine($"service {s["id"]}: role {role} set to {count}; {s["state"]} ({s["reason"]})"));
    }

    static async Task<int> Delete(CliContext cx)
    {
        var deleted = await cx.Api.DeleteAsync($"api/v1/services/{Id(cx)}");
        return cx.Print(deleted, s => cx.Out.WriteLine($"service {s["id"]} {s["state"]}: {s["reason"]}"));
    }
}
