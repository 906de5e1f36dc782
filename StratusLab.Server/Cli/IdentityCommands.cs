using System.Text.Json.Nodes;

namespace StratusLab.Server.Cli;

/// <summary>Users, tokens and quotas.</summary>
public static class IdentityCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("user-add", "NAME [--password P] [--role admin|user] [--group G]...", "create a user (admin)", UserAdd) { Example = "stratuslab user-add alice --password s3cret-pass --group physics" },
        new("user-list", "", "list users (admins see all, others themselves)", UserList) { Example = "stratuslab user-list" },
        new("user-delete", "NAME", "delete a user (admin)", UserDelete) { Example = "stratuslab user-delete alice" },
        new("token-create", "[--user NAME] [--expires TIME] [--name LABEL]", "create an API token; it is shown only once", TokenCreate) { Example = "stratuslab token-create --user alice --name ci" },
        new("token-list", "[--user NAME]", "list API tokens", TokenList) { Example = "stratuslab token-list --user alice" },
        new("token-revoke", "ID", "revoke an API token", TokenRevoke) { Example = "stratuslab token-revoke 7" },
        new("quota-show", "[USER]", "show a user's quota and usage (default: yourself)", QuotaShow) { Example = "stratuslab quota-show alice" },
        new("quota-set", "USER [--vms N] [--cpus N] [--memory MiB] [--storage GiB]", "set a user's quota, -1 = unlimited (admin)", QuotaSet) { Example = "stratuslab quota-set alice --vms 10 --cpus 20 --memory 32768 --storage -1" },
    ];

    static async Task<int> UserAdd(CliContext cx)
    {
        cx.Args.AllowOnly("--password", "--role", "--group");
        var body = new
        {
            name = cx.Args.Positional(0, "the user name"),
            password = cx.Args.Option("--password"),
            role = cx.Args.Option("--role"),
            groups = cx.Args.All("--group").Count > 0 ? cx.Args.All("--group") : null,
        };
        var user = await cx.Api.PostAsync("api/v1/users", body);
        return cx.Print(user, u => cx.Out.WriteLine($"created user {u["name"]} (id {u["id"]}, role {u["role"]})"));
    }

    static async Task<int> UserList(CliContext cx)
    {
        cx.Args.AllowOnly();
        var users = await cx.Api.GetAsync("api/v1/users");
        return cx.Print(users, list => cx.Table(list.AsArray(),
            ("id", u => u["id"]?.ToString()), ("name", u => u["name"]?.ToString()), ("role", u => u["role"]?.ToString()),
            ("groups", u => string.Join(",", u["groups"]!.AsArray().Select(g => g!.ToString()))), ("created", u => u["createdAt"]?.ToString())));
    }

    static async Task<int> UserDelete(CliContext cx)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the user name");
        await cx.Api.DeleteAsync($"api/v1/users/{Uri.EscapeDataString(name)}");
        return cx.Print(new JsonObject { ["deleted"] = name }, _ => cx.Out.WriteLine($"deleted user {name}"));
    }

    static async Task<int> TokenCreate(CliContext cx)
    {
        cx.Args.AllowOnly("--user", "--expires", "--name");
        DateTimeOffset? expires = null;
        if (cx.Args.Option("--expires") is { } text)
            expires = DateTimeOffset.TryParse(text, out var t) ? t : throw new UsageException($"--expires '{text}' is not a time; use ISO-8601 such as 2030-01-01T00:00:00Z.");
        var token = await cx.Api.PostAsync("api/v1/tokens", new { user = cx.Args.Option("--user"), expiresAt = expires, name = cx.Args.Option("--name") });
        return cx.Print(token, t => cx.Out.WriteLine(t["token"]!.ToString()));
    }

    static async Task<int> TokenList(CliContext cx)
    {
        cx.Args.AllowOnly("--user");
        var user = cx.Args.Option("--user");
        var tokens = await cx.Api.GetAsync("api/v1/tokens" + (user is null ? "" : "?user=" + Uri.EscapeDataString(user)));
        return cx.Print(tokens, list => cx.Table(list.AsArray(),
            ("id", t => t["id"]?.ToString()), ("user", t => t["user"]?.ToString()), ("name", t => t["name"]?.ToString()),
            ("state", t => t["state"]?.ToString()), ("expires", t => t["expiresAt"]?.ToString())));
    }

    static async Task<int> TokenRevoke(CliContext cx)
    {
        cx.Args.AllowOnly();
        var id = cx.Args.Positional(0, "the token id");
        await cx.Api.DeleteAsync($"api/v1/tokens/{Uri.EscapeDataString(id)}");
        return cx.Print(new JsonObject { ["revoked"] = id }, _ => cx.Out.WriteLine($"revoked token {id}"));
    }

    static async Task<int> QuotaShow(CliContext cx)
    {
        cx.Args.AllowOnly();
        var user = cx.Args.Positionals.Count > 0 ? cx.Args.Positionals[0] : null;
        if (user is null)
        {
            var me = await cx.Api.GetAsync("api/v1/users");
            user = me!.AsArray().Count == 1 ? me[0]!["name"]!.ToString() : throw new UsageException("give the user name (admins see every user).");
        }
        var quota = await cx.Api.GetAsync($"api/v1/quotas/{Uri.EscapeDataString(user)}");
        return cx.Print(quota, q =>
        {
            string Limit(string k) => q["limits"]![k]!.GetValue<long>() is var v && v < 0 ? "unlimited" : v.ToString();
            cx.Out.WriteLine($"quota of {q["user"]}:");
            cx.Table([
                    new JsonObject { ["r"] = "vms", ["u"] = q["usage"]!["vms"]!.ToString(), ["l"] = Limit("vms") },
                    new JsonObject { ["r"] = "cpus", ["u"] = q["usage"]!["cpus"]!.ToString(), ["l"] = Limit("cpus") },
                    new JsonObject { ["r"] = "memory (MiB)", ["u"] = q["usage"]!["memoryMiB"]!.ToString(), ["l"] = Limit("memoryMiB") },
                    new JsonObject { ["r"] = "storage (GiB)", ["u"] = q["usage"]!["storageGiB"]!.ToString(), ["l"] = Limit("storageGiB") },
                ],
                ("resource", r => r["r"]?.ToString()), ("used", r => r["u"]?.ToString()), ("limit", r => r["l"]?.ToString()));
        });
    }

    static async Task<int> QuotaSet(CliContext cx)
    {
        cx.Args.AllowOnly("--vms", "--cpus", "--memory", "--storage");
        var user = cx.Args.Positional(0, "the user name");
        var quota = await cx.Api.PostAsync($"api/v1/quotas/{Uri.EscapeDataString(user)}", new
        {
            vms = cx.Args.LongOption("--vms"), cpus = cx.Args.LongOption("--cpus"),
            memoryMiB = cx.Args.LongOption("--memory"), storageGiB = cx.Args.LongOption("--storage"),
        });
        return cx.Print(quota, q => cx.Out.WriteLine($"quota of {q["user"]} set"));
    }
}
