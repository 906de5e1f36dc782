using System.Globalization;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Cli;

/// <summary>Users, tokens and quotas.</summary>
public static class IdentityCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("user-add", "NAME [--password P] [--role admin|user] [--group G]...", "create a user (admin)", UserAdd) { Example = "stratuslab user-add alice --password s3cret-pass --group physics" },
        new("user-list", "", "list users (admins see all, others themselves)", UserList) { Example = "stratuslab user-list" },
        new("describe-users", "[NAME]...", "show users: role, groups, and where the password is checked (source: local, or ldap with the groups' last refresh)", DescribeUsers)
            { Example = "stratuslab describe-users alice bob" },
        new("user-delete", "NAME", "delete a user (admin)", UserDelete) { Example = "stratuslab user-delete alice" },
        new("user-disable", "NAME", "disable a user: every password, token, access key and session of theirs is refused until enabled (admin)", UserDisable)
            { Example = "stratuslab user-disable alice" },
        new("user-enable", "NAME", "enable a disabled user again (admin)", UserEnable) { Example = "stratuslab user-enable alice" },
        new("token-create", "[--user NAME] [--expires TIME] [--name LABEL]", "create an API token; it is shown only once", TokenCreate) { Example = "stratuslab token-create --user alice --name ci" },
        new("token-list", "[--user NAME]", "list API tokens", TokenList) { Example = "stratuslab token-list --user alice" },
        new("token-revoke", "ID", "revoke an API token", TokenRevoke) { Example = "stratuslab token-revoke 7" },
        new("quota-show", "[USER]", "show a user's quota and usage (default: yourself)", QuotaShow) { Example = "stratuslab quota-show alice" },
        new("quota-set", "USER [--vms N] [--cpus N] [--memory MiB] [--storage GiB]", "set a user's quota, -1 = unlimited (admin)", QuotaSet) { Example = "stratuslab quota-set alice --vms 10 --cpus 20 --memory 32768 --storage -1" },
    ];

    static async Task<int> UserAdd(CliContext cx)
    {
        cx.Args.AllowOnly("--password", "--role", "--group");
        var body = new CreateUserRequest(cx.Args.Positional(0, "the user name"), cx.Args.Option("--password"), cx.Args.Option("--role"),
            cx.Args.All("--group").Count > 0 ? cx.Args.All("--group") : null);
        var user = await cx.Api.PostAsync<UserView>("api/v1/users", body);
        return cx.Print(user, u => cx.Out.WriteLine($"created user {u.Name} (id {u.Id}, role {u.Role})"));
    }

    static async Task<int> UserList(CliContext cx)
    {
        cx.Args.AllowOnly();
        var users = await cx.Api.GetAsync<List<UserView>>("api/v1/users");
        return cx.Print(users, list => cx.TableOf(list,
            ("id", u => u.Id.ToString(CultureInfo.InvariantCulture)), ("name", u => u.Name), ("role", u => u.Role), ("source", u => u.Source),
            ("state", u => u.DisabledAt is null ? "enabled" : "disabled"),
            ("groups", u => string.Join(",", u.Groups)), ("created", u => u.CreatedAt.ToString("u", CultureInfo.InvariantCulture))));
    }

    static async Task<int> DescribeUsers(CliContext cx)
    {
        cx.Args.AllowOnly();
        List<UserView> users;
        if (cx.Args.Positionals.Count == 0) users = await cx.Api.GetAsync<List<UserView>>("api/v1/users");
        else
        {
            users = [];
            foreach (var name in cx.Args.Positionals) users.Add(await cx.Api.GetAsync<UserView>($"api/v1/users/{Uri.EscapeDataString(name)}"));
        }
        return cx.Print(users, list => cx.TableOf(list,
            ("name", u => u.Name), ("role", u => u.Role), ("source", u => u.Source), ("groups", u => string.Join(",", u.Groups)),
            ("primary group", u => u.PrimaryGroup), ("synced from directory", u => u.DirectorySyncedAt?.ToString("u", CultureInfo.InvariantCulture)),
            ("created", u => u.CreatedAt.ToString("u", CultureInfo.InvariantCulture))));
    }

    static async Task<int> UserDelete(CliContext cx)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the user name");
        await cx.Api.DeleteAsync($"api/v1/users/{Uri.EscapeDataString(name)}");
        return cx.Print(new JsonObject { ["deleted"] = name }, _ => cx.Out.WriteLine($"deleted user {name}"));
    }

    static Task<int> UserDisable(CliContext cx) => SetDisabled(cx, "disable");

    static Task<int> UserEnable(CliContext cx) => SetDisabled(cx, "enable");

    static async Task<int> SetDisabled(CliContext cx, string action)
    {
        cx.Args.AllowOnly();
        var name = cx.Args.Positional(0, "the user name");
        var user = await cx.Api.PostAsync<UserView>($"api/v1/users/{Uri.EscapeDataString(name)}/{action}", null);
        return cx.Print(user, u => cx.Out.WriteLine(u.DisabledAt is { } at
            ? $"disabled user {u.Name} (since {at.ToString("u", CultureInfo.InvariantCulture)})" : $"enabled user {u.Name}"));
    }

    static async Task<int> TokenCreate(CliContext cx)
    {
        cx.Args.AllowOnly("--user", "--expires", "--name");
        DateTimeOffset? expires = null;
        if (cx.Args.Option("--expires") is { } text)
            expires = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, out var t) ? t : throw new UsageException($"--expires '{text}' is not a time; use ISO-8601 such as 2030-01-01T00:00:00Z.");
        var token = await cx.Api.PostAsync<TokenCreated>("api/v1/tokens", new CreateTokenRequest(cx.Args.Option("--user"), expires, cx.Args.Option("--name")));
        return cx.Print(token, t => cx.Out.WriteLine(t.Token));
    }

    static async Task<int> TokenList(CliContext cx)
    {
        cx.Args.AllowOnly("--user");
        var user = cx.Args.Option("--user");
        var tokens = await cx.Api.GetAsync<List<TokenView>>("api/v1/tokens" + (user is null ? "" : "?user=" + Uri.EscapeDataString(user)));
        return cx.Print(tokens, list => cx.TableOf(list,
            ("id", t => t.Id), ("user", t => t.User), ("name", t => t.Name), ("state", t => t.State),
            ("expires", t => t.ExpiresAt?.ToString("u", CultureInfo.InvariantCulture))));
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
            var me = await cx.Api.GetAsync<List<UserView>>("api/v1/users");
            user = me.Count == 1 ? me[0].Name : throw new UsageException("give the user name (admins see every user).");
        }
        var quota = await cx.Api.GetAsync<QuotaView>($"api/v1/quotas/{Uri.EscapeDataString(user)}");
        return cx.Print(quota, q =>
        {
            static string Limit(long v) => v < 0 ? "unlimited" : v.ToString(CultureInfo.InvariantCulture);
            cx.Out.WriteLine($"quota of {q.User}:");
            cx.TableOf([
                    ("vms", q.Usage.Vms, q.Limits.Vms), ("cpus", q.Usage.Cpus, q.Limits.Cpus),
                    ("memory (MiB)", q.Usage.MemoryMiB, q.Limits.MemoryMiB), ("storage (GiB)", q.Usage.StorageGiB, q.Limits.StorageGiB),
                ],
                ("resource", r => r.Item1), ("used", r => r.Item2.ToString(CultureInfo.InvariantCulture)), ("limit", r => Limit(r.Item3)));
        });
    }

    static async Task<int> QuotaSet(CliContext cx)
    {
        cx.Args.AllowOnly("--vms", "--cpus", "--memory", "--storage");
        var user = cx.Args.Positional(0, "the user name");
        var quota = await cx.Api.PostAsync<QuotaView>($"api/v1/quotas/{Uri.EscapeDataString(user)}", new SetQuotaRequest(
            cx.Args.LongOption("--vms"), cx.Args.LongOption("--cpus"), cx.Args.LongOption("--memory"), cx.Args.LongOption("--storage")));
        return cx.Print(quota, q => cx.Out.WriteLine($"quota of {q.User} set"));
    }
}
