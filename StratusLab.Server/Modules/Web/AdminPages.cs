using System.Globalization;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Scheduling.Contracts;
using StratusLab.Server.Platform.Contracts;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// The administrators' pages: users and groups, API tokens, quotas with usage bars, hosts with capacity (drain, simulated
/// hosts), the site image policy and its launch audit trail. Each calls the owning module's service (Identity
/// <see cref="IUserAccounts"/>, Scheduling <see cref="IHostAdministration"/>, Marketplace <see cref="IPolicyAdministration"/>),
/// which checks the caller is an administrator; the route group asks for the admin role too.
/// </summary>
internal static class AdminPages
{
    public static void Map(RouteGroupBuilder admin)
    {
        admin.MapGet("", () => Results.Redirect("/ui/admin/users"));
        admin.MapGet("/users", ListUsers);
        admin.MapPost("/users", CreateUser).DisableAntiforgery();
        admin.MapPost("/users/{name}/disable", DisableUser).DisableAntiforgery();
        admin.MapPost("/users/{name}/enable", EnableUser).DisableAntiforgery();
        admin.MapPost("/groups", CreateGroup).DisableAntiforgery();
        admin.MapGet("/tokens", ListTokens);
        admin.MapPost("/tokens/{id}/revoke", RevokeToken).DisableAntiforgery();
        admin.MapGet("/quotas", ListQuotas);
        admin.MapPost("/quotas", SetQuota).DisableAntiforgery();
        admin.MapGet("/hosts", ListHosts);
        admin.MapPost("/hosts", AddSimulatedHost).DisableAntiforgery();
        admin.MapPost("/hosts/{name}/drain", DrainHost).DisableAntiforgery();
        admin.MapPost("/hosts/{name}/undrain", UndrainHost).DisableAntiforgery();
        admin.MapGet("/images", ListCache);
        admin.MapGet("/images/progress", StreamCacheProgress);
        admin.MapPost("/images/prefetch", PrefetchImage).DisableAntiforgery();
        admin.MapPost("/images/evict", EvictImage).DisableAntiforgery();
        admin.MapGet("/policy", ShowPolicy);
        admin.MapPost("/policy", SetPolicy).DisableAntiforgery();
    }

    static readonly (string Href, string Label, string Key)[] Sections =
    [
        ("/ui/admin/users", "Users and groups", "users"), ("/ui/admin/tokens", "API tokens", "tokens"), ("/ui/admin/quotas", "Quotas", "quotas"),
        ("/ui/admin/hosts", "Hosts", "hosts"), ("/ui/admin/images", "Image cache", "images"), ("/ui/admin/policy", "Image policy and audit", "policy"),
    ];

    static IResult Page(HttpContext http, string heading, string section, WebProblem? problem, Markup body, int? status = null)
    {
        var nav = Each(Sections, s => s.Key == section
            ? H($"<a href=\"{s.Href}\" aria-current=\"page\">{s.Label}</a>") : H($"<a href=\"{s.Href}\">{s.Label}</a>"));
        return Layout.Page(http, heading, H($"""
            <nav class="admin" aria-label="Administration">{nav}</nav>
            {(problem is null ? Markup.Empty : H($"<p class=\"problem\" role=\"alert\" id=\"admin-problem\">{problem.Detail}</p>"))}
            {body}
            """), status ?? problem?.Status ?? 200, "admin");
    }

    static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd HH:mm'Z'", CultureInfo.InvariantCulture) ?? "";

    /// <summary>Runs a change; on success back to <paramref name="back"/> (post, redirect, get), on refusal the page again with the problem and its status.</summary>
    static async Task<IResult> Change(HttpContext http, string back, Func<Task> change, Func<WebProblem, Task<IResult>> again)
    {
        try { await change(); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return await again(p); }
        return Results.Redirect(back);
    }

    // ---- users and groups ----

    static Task<IResult> ListUsers(HttpContext http, IUserAccounts accounts, CancellationToken ct) => RenderUsers(http, accounts, null, ct);

    static async Task<IResult> RenderUsers(HttpContext http, IUserAccounts accounts, WebProblem? problem, CancellationToken ct)
    {
        var caller = http.User.ToCaller();
        var users = await accounts.ListUsersAsync(caller, 1000, 0, ct);
        var groups = await accounts.ListGroupsAsync(1000, 0, ct);
        var csrf = Layout.CsrfField(http);
        return Page(http, "Users and groups", "users", problem, H($"""
            <h2>Users</h2>
            <table id="users"><caption class="visually-hidden">Users</caption><thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Primary group</th><th scope="col">Groups</th><th scope="col">Created</th><th scope="col">State</th><th scope="col"></th></tr></thead>
            <tbody>{Each(users, u => H($"""
              <tr data-user="{u.Name}"><td>{u.Name}</td><td>{u.Role}</td><td>{u.PrimaryGroup}</td><td>{string.Join(", ", u.Groups)}</td><td>{Time(u.CreatedAt)}</td>
              <td class="state">{(u.DisabledAt is { } off ? $"disabled since {Time(off)}" : "enabled")}</td>
              <td><a href="/ui/admin/tokens?user={U(u.Name)}">tokens</a> · <a href="/ui/admin/quotas#quota-{U(u.Name)}">quota</a>
              {If(u.Id != caller.UserId, H($"<form method=\"post\" action=\"/ui/admin/users/{U(u.Name)}/{(u.DisabledAt is null ? "disable" : "enable")}\" class=\"inline\">{csrf}<button type=\"submit\"{(u.DisabledAt is null ? new Markup(" class=\"danger\"") : Markup.Empty)} aria-label=\"{(u.DisabledAt is null ? "Disable" : "Enable")} {u.Name}\">{(u.DisabledAt is null ? "Disable" : "Enable")}</button></form>"))}</td></tr>
              """))}</tbody></table>
            <form method="post" action="/ui/admin/users" class="card">{csrf}<h3>Create a user</h3>
            <div class="grid">
            <div><label for="new-user">Name</label><input id="new-user" name="name" required autocomplete="off"></div>
            <div><label for="new-password">Password (8 characters or more; empty: API tokens only)</label><input id="new-password" name="password" type="password" autocomplete="new-password"></div>
            <div><label for="new-role">Role</label><select id="new-role" name="role"><option value="user" selected>user</option><option value="admin">admin</option></select></div>
            <div><label for="new-groups">Groups (comma-separated)</label><input id="new-groups" name="groups"></div>
            </div><button type="submit">Create user</button></form>
            <h2>Groups</h2>
            <table id="groups"><caption class="visually-hidden">Groups</caption><thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Created</th></tr></thead>
            <tbody>{Each(groups, g => H($"<tr><td>{g.Name}</td><td>{g.Id}</td><td>{Time(g.CreatedAt)}</td></tr>"))}</tbody></table>
            <form method="post" action="/ui/admin/groups" class="card search">{csrf}<label for="new-group">New group</label><input id="new-group" name="name" required><button type="submit">Create group</button></form>
            """));
    }

    static async Task<IResult> CreateUser(HttpContext http, IUserAccounts accounts, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        var password = form["password"].ToString();
        var groups = form["groups"].ToString().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var user = new NewUser(form["name"].ToString().Trim(), password.Length == 0 ? null : password, form["role"].ToString() is { Length: > 0 } r ? r : null,
            groups.Length == 0 ? null : groups);
        return await Change(http, "/ui/admin/users", () => accounts.CreateUserAsync(http.User.ToCaller(), user, ct),
            p => RenderUsers(http, accounts, p, ct));
    }

    static Task<IResult> DisableUser(string name, HttpContext http, IUserAccounts accounts, CancellationToken ct) =>
        Change(http, "/ui/admin/users", () => accounts.SetDisabledAsync(http.User.ToCaller(), name, true, ct), p => RenderUsers(http, accounts, p, ct));

    static Task<IResult> EnableUser(string name, HttpContext http, IUserAccounts accounts, CancellationToken ct) =>
        Change(http, "/ui/admin/users", () => accounts.SetDisabledAsync(http.User.ToCaller(), name, false, ct), p => RenderUsers(http, accounts, p, ct));

    static async Task<IResult> CreateGroup(HttpContext http, IUserAccounts accounts, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        return await Change(http, "/ui/admin/users", () => accounts.CreateGroupAsync(http.User.ToCaller(), form["name"].ToString().Trim(), ct),
            p => RenderUsers(http, accounts, p, ct));
    }

    // ---- tokens ----

    static Task<IResult> ListTokens(HttpContext http, IUserAccounts accounts, string? user, CancellationToken ct) => RenderTokens(http, accounts, user, null, ct);

    static async Task<IResult> RenderTokens(HttpContext http, IUserAccounts accounts, string? user, WebProblem? problem, CancellationToken ct)
    {
        IReadOnlyList<TokenInfo> tokens;
        try { tokens = await accounts.ListTokensAsync(http.User.ToCaller(), string.IsNullOrWhiteSpace(user) ? null : user.Trim(), 1000, 0, ct); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { tokens = []; problem ??= p; }
        var csrf = Layout.CsrfField(http);
        return Page(http, "API tokens", "tokens", problem, H($"""
            <form class="search" method="get" action="/ui/admin/tokens" role="search"><label for="token-user">User</label><input id="token-user" name="user" value="{user}" placeholder="every user"><button type="submit">Show</button></form>
            <p class="hint">Secrets are shown only once, when a token is made ('stratuslab token create' or POST /api/v1/tokens); revoking one stops it at once.</p>
            <table id="tokens"><caption class="visually-hidden">API tokens</caption><thead><tr><th scope="col">Id</th><th scope="col">User</th><th scope="col">Name</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col"></th></tr></thead>
            <tbody>{Each(tokens, t => H($"""
              <tr data-token="{t.Id}"><td class="id">{t.Id}</td><td>{t.User}</td><td>{t.Name}</td><td>{t.State}</td><td>{Time(t.CreatedAt)}</td><td>{(t.ExpiresAt is null ? "never" : Time(t.ExpiresAt))}</td>
              <td>{If(t.State == "active", H($"<form method=\"post\" action=\"/ui/admin/tokens/{U(t.Id)}/revoke\" class=\"inline\">{csrf}<button type=\"submit\" class=\"danger\" aria-label=\"Revoke token {t.Id} of {t.User}\">Revoke</button></form>"))}</td></tr>
              """))}</tbody></table>
            """));
    }

    static Task<IResult> RevokeToken(string id, HttpContext http, IUserAccounts accounts, CancellationToken ct) =>
        Change(http, "/ui/admin/tokens", () => accounts.RevokeTokenAsync(http.User.ToCaller(), id, ct), p => RenderTokens(http, accounts, null, p, ct));

    // ---- quotas ----

    static Task<IResult> ListQuotas(HttpContext http, IUserAccounts accounts, CancellationToken ct) => RenderQuotas(http, accounts, null, ct);

    static Markup Usage(string label, long used, long limit, string unit) => limit == QuotaMath.Unlimited
        ? H($"<span class=\"usage\">{used}{unit} <span class=\"hint\">(no limit)</span></span>")
        : H($"<span class=\"usage\"><meter min=\"0\" max=\"{Math.Max(limit, 1)}\" value=\"{Math.Min(used, Math.Max(limit, 1))}\" high=\"{Math.Max(limit, 1) * 0.8}\" aria-label=\"{label}: {used} of {limit}{unit}\"></meter>{used} of {limit}{unit}</span>");

    static async Task<IResult> RenderQuotas(HttpContext http, IUserAccounts accounts, WebProblem? problem, CancellationToken ct)
    {
        var quotas = await accounts.ListQuotasAsync(http.User.ToCaller(), 1000, 0, ct);
        return Page(http, "Quotas", "quotas", problem, H($"""
            <table id="quotas"><caption class="visually-hidden">Quotas and usage per user</caption><thead><tr><th scope="col">User</th><th scope="col">VMs</th><th scope="col">CPUs</th><th scope="col">Memory</th><th scope="col">Storage</th></tr></thead>
            <tbody>{Each(quotas, q => H($"""
              <tr id="quota-{q.User}" data-user="{q.User}"><td>{q.User}</td><td>{Usage($"{q.User} VMs", q.Usage.Vms, q.Limits.Vms, "")}</td><td>{Usage($"{q.User} CPUs", q.Usage.Cpus, q.Limits.Cpus, "")}</td>
              <td>{Usage($"{q.User} memory", q.Usage.MemoryMiB, q.Limits.MemoryMiB, " MiB")}</td><td>{Usage($"{q.User} storage", q.Usage.StorageGiB, q.Limits.StorageGiB, " GiB")}</td></tr>
              """))}</tbody></table>
            <form method="post" action="/ui/admin/quotas" class="card">{Layout.CsrfField(http)}<h3>Set a user's limits</h3>
            <p class="hint">Each limit: a number, -1 for no limit, or empty for the site default.</p>
            <div class="grid">
            <div><label for="quota-user">User</label><select id="quota-user" name="user">{Each(quotas, q => H($"<option value=\"{q.User}\">{q.User}</option>"))}</select></div>
            <div><label for="quota-vms">VMs</label><input id="quota-vms" name="vms" inputmode="numeric"></div>
            <div><label for="quota-cpus">CPUs</label><input id="quota-cpus" name="cpus" inputmode="numeric"></div>
            <div><label for="quota-memory">Memory (MiB)</label><input id="quota-memory" name="memoryMiB" inputmode="numeric"></div>
            <div><label for="quota-storage">Storage (GiB)</label><input id="quota-storage" name="storageGiB" inputmode="numeric"></div>
            </div><button type="submit">Set limits</button></form>
            """));
    }

    static async Task<IResult> SetQuota(HttpContext http, IUserAccounts accounts, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        static long? Limit(string value, string field)
        {
            value = value.Trim();
            if (value.Length == 0) return null;
            return long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n
                : throw new InvalidInputException(field, $"'{field}' = '{(value.Length > 20 ? value[..20] : value)}' is not a whole number; give a limit, -1 for no limit, or leave it empty for the site default.");
        }
        return await Change(http, "/ui/admin/quotas", () => accounts.SetQuotaAsync(http.User.ToCaller(), form["user"].ToString(),
                new QuotaLimits(Limit(form["vms"].ToString(), "vms"), Limit(form["cpus"].ToString(), "cpus"), Limit(form["memoryMiB"].ToString(), "memoryMiB"),
                    Limit(form["storageGiB"].ToString(), "storageGiB")), ct),
            p => RenderQuotas(http, accounts, p, ct));
    }

    // ---- hosts ----

    static Task<IResult> ListHosts(HttpContext http, IHostAdministration hosts, CancellationToken ct) => RenderHosts(http, hosts, null, ct);

    static async Task<IResult> RenderHosts(HttpContext http, IHostAdministration hosts, WebProblem? problem, CancellationToken ct)
    {
        var list = await hosts.ListAsync(http.User.ToCaller(), ct);
        var csrf = Layout.CsrfField(http);
        return Page(http, "Hosts", "hosts", problem, H($"""
            <p class="hint">A drained host takes no new instance; what runs there keeps running. Simulated hosts add capacity without a machine, to model a larger site.</p>
            <table id="hosts"><caption class="visually-hidden">Hosts</caption><thead><tr><th scope="col">Host</th><th scope="col">Driver</th><th scope="col">Placement</th><th scope="col">CPUs allocated</th><th scope="col">Memory allocated</th><th scope="col">Measured</th><th scope="col">VMs</th><th scope="col"></th></tr></thead>
            <tbody>{Each(list, h => H($"""
              <tr data-host="{h.Name}"><td>{h.Name}{If(h.Local, new Markup(" <span class=\"tag\">this machine</span>"))}</td><td>{h.Driver}</td><td class="placement">{(h.Enabled ? "open" : "drained")}</td>
              <td>{Usage($"{h.Name} CPUs allocated", h.AllocatedCpus, h.Cpus, "")}</td><td>{Usage($"{h.Name} memory allocated", h.AllocatedMemoryMiB, h.MemoryMiB, " MiB")}</td>
              <td>{h.CpuUsagePercent.ToString("F0", CultureInfo.InvariantCulture)}% CPU, {h.MemoryUsedMiB} MiB{(h.MonitoredAt is null ? "" : $" at {Time(h.MonitoredAt)}")}</td><td>{h.RunningVms}</td>
              <td><form method="post" action="/ui/admin/hosts/{U(h.Name)}/{(h.Enabled ? "drain" : "undrain")}" class="inline">{csrf}<button type="submit" aria-label="{(h.Enabled ? "Drain" : "Undrain")} {h.Name}">{(h.Enabled ? "Drain" : "Undrain")}</button></form></td></tr>
              """))}</tbody></table>
            <form method="post" action="/ui/admin/hosts" class="card">{csrf}<h3>Add a simulated host</h3>
            <div class="grid">
            <div><label for="host-name">Name</label><input id="host-name" name="name" required></div>
            <div><label for="host-cpus">CPUs</label><input id="host-cpus" name="cpus" inputmode="numeric" required></div>
            <div><label for="host-memory">Memory (MiB)</label><input id="host-memory" name="memoryMiB" inputmode="numeric" required></div>
            </div><button type="submit">Add simulated host</button></form>
            """));
    }

    static async Task<IResult> AddSimulatedHost(HttpContext http, IHostAdministration hosts, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        static long Number(string value, string field) =>
            long.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
                : throw new InvalidInputException(field, $"'{field}' = '{(value.Length > 20 ? value[..20] : value)}' is not a whole number; give one, like 4.");
        return await Change(http, "/ui/admin/hosts", () => hosts.AddSimulatedAsync(http.User.ToCaller(), form["name"].ToString().Trim(),
            Number(form["cpus"].ToString(), "cpus"), Number(form["memoryMiB"].ToString(), "memoryMiB"), ct), p => RenderHosts(http, hosts, p, ct));
    }

    static Task<IResult> DrainHost(string name, HttpContext http, IHostAdministration hosts, CancellationToken ct) =>
        Change(http, "/ui/admin/hosts", () => hosts.SetEnabledAsync(http.User.ToCaller(), name, false, ct), p => RenderHosts(http, hosts, p, ct));

    static Task<IResult> UndrainHost(string name, HttpContext http, IHostAdministration hosts, CancellationToken ct) =>
        Change(http, "/ui/admin/hosts", () => hosts.SetEnabledAsync(http.User.ToCaller(), name, true, ct), p => RenderHosts(http, hosts, p, ct));

    // ---- image cache ----

    static Task<IResult> ListCache(HttpContext http, IImageCacheAdministration cache, CancellationToken ct) => RenderCache(http, cache, null, "", ct);

    static string Mib(long bytes) => (bytes / (1024.0 * 1024)).ToString("F1", CultureInfo.InvariantCulture) + " MiB";

    static async Task<IResult> RenderCache(HttpContext http, IImageCacheAdministration cache, WebProblem? problem, string typed, CancellationToken ct)
    {
        var entries = await cache.ListAsync(http.User.ToCaller(), ct);
        var csrf = Layout.CsrfField(http);
        Markup Progress(CacheEntry e) => e.State == "downloading"
            ? H($"""<progress max="{e.BytesTotal ?? 0}" value="{e.BytesDone}" aria-label="Download of {e.Image}"></progress> <span class="done">{Mib(e.BytesDone)}{(e.BytesTotal is { } t ? " of " + Mib(t) : "")}</span>""")
            : H($"{(e.SizeBytes is { } b ? Mib(b) : "")}");
        var fieldProblem = problem?.Field == "image";
        return Page(http, "Image cache", "images", fieldProblem ? null : problem, H($"""
            <p class="hint">Images are cached when first launched; prefetch one to have it ready (a Marketplace identifier, or an http(s) URL of a raw or qcow2 image). Downloads go on in the server: this page follows them live.</p>
            <form method="post" action="/ui/admin/images/prefetch" class="card search" id="prefetch">{csrf}
            <label for="prefetch-image">Image to prefetch</label><input id="prefetch-image" name="image" required value="{typed}" size="40"{(fieldProblem ? new Markup(" aria-describedby=\"image-problem\" aria-invalid=\"true\"") : Markup.Empty)}>
            <button type="submit">Prefetch</button>
            {(fieldProblem ? H($"<p class=\"field-problem\" id=\"image-problem\" role=\"alert\">{problem!.Detail}</p>") : Markup.Empty)}</form>
            {(entries.Count == 0 ? H($"<p id=\"no-cache\">The cache is empty.</p>") : H($"""
              <table id="cache"{(entries.Any(e => e.State == "downloading") ? new Markup(" data-live=\"1\"") : Markup.Empty)}><caption class="visually-hidden">Cached images</caption><thead><tr><th scope="col">Image</th><th scope="col">Names</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Size / progress</th><th scope="col">Uses</th><th scope="col">Last used</th><th scope="col"></th></tr></thead>
              <tbody>{Each(entries, e => H($"""
                <tr data-image="{e.Image}"><td class="id">{e.Image}</td><td>{string.Join(", ", e.Names)}{If(e.IsDefault, new Markup(" <span class=\"tag\">default</span>"))}</td><td>{e.Kind}</td>
                <td class="state">{e.State}{(e.Error is null ? Markup.Empty : H($"<div class=\"problem\">{e.Error}</div>"))}</td><td class="progress">{Progress(e)}</td><td>{e.Hits}</td><td>{Time(e.LastUsedAt)}</td>
                <td><form method="post" action="/ui/admin/images/evict" class="inline">{csrf}<input type="hidden" name="image" value="{e.Image}"><button type="submit" class="danger" aria-label="Evict {e.Image}">Evict</button></form></td></tr>
                """))}</tbody></table>
              """))}
            """), problem?.Status);
    }

    /// <summary>Progress of the downloads in flight, as the admin images page's server-sent events.</summary>
    internal sealed record CacheProgressItem(string Image, string State, long BytesDone, long? BytesTotal);

    /// <summary>One snapshot of the downloads in flight; <see cref="Idle"/> when none is left (the stream then ends).</summary>
    internal sealed record CacheProgressEvent(long Seq, IReadOnlyList<CacheProgressItem> Downloads, bool Idle);

    /// <summary>
    /// Server-sent events of the cache's downloads: a snapshot each second while any is in flight, then one marked idle,
    /// and the stream ends (the page stops listening). The browser does not poll; the server reads its in-memory progress.
    /// </summary>
    static Task StreamCacheProgress(HttpContext http, IImageCacheAdministration cache, CancellationToken ct) =>
        Platform.Http.ServerSentEvents.StreamAsync(http, CacheProgress(http.User.ToCaller(), cache, ct), "progress", e => e.Seq,
            ": stratuslab image cache progress\nretry: 5000\n\n", ct);

    static async IAsyncEnumerable<CacheProgressEvent> CacheProgress(Caller caller, IImageCacheAdministration cache,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        for (long seq = 1; ; seq++)
        {
            var downloads = (await cache.ListAsync(caller, ct)).Where(e => e.State == "downloading")
                .Select(e => new CacheProgressItem(e.Image, e.State, e.BytesDone, e.BytesTotal)).ToList();
            yield return new CacheProgressEvent(seq, downloads, downloads.Count == 0);
            if (downloads.Count == 0) yield break;
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
        }
    }

    static async Task<IResult> PrefetchImage(HttpContext http, IImageCacheAdministration cache, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        var image = form["image"].ToString().Trim();
        // A short wait: a small or cached image is ready when the page comes back; a large one shows its progress there.
        return await Change(http, "/ui/admin/images", () => cache.PrefetchAsync(http.User.ToCaller(), image, TimeSpan.FromSeconds(2), ct),
            p => RenderCache(http, cache, p, image, ct));
    }

    static async Task<IResult> EvictImage(HttpContext http, IImageCacheAdministration cache, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        return await Change(http, "/ui/admin/images", () => cache.EvictAsync(http.User.ToCaller(), form["image"].ToString(), ct),
            p => RenderCache(http, cache, p, "", ct));
    }

    // ---- image policy and audit ----

    static Task<IResult> ShowPolicy(HttpContext http, IPolicyAdministration policy, string? identifier, string? user, string? decision, CancellationToken ct) =>
        RenderPolicy(http, policy, identifier, user, decision, null, null, ct);

    /// <summary>The lists of the edit form, one value a line, in the order and with the field names of PUT /api/v1/policy.</summary>
    static readonly (string Field, string Label)[] PolicyFields =
    [
        ("whitelistEndorsers", "Whitelisted endorsers (e-mail addresses)"), ("blacklistEndorsers", "Blacklisted endorsers"),
        ("whitelistImages", "Whitelisted images (identifiers)"), ("blacklistImages", "Blacklisted images"),
        ("whitelistChecksums", "Whitelisted checksums (hex)"), ("blacklistChecksums", "Blacklisted checksums"),
    ];

    static IReadOnlyList<string> ListOf(PolicyListSet l, string field) => field switch
    {
        "whitelistEndorsers" => l.WhitelistEndorsers, "blacklistEndorsers" => l.BlacklistEndorsers,
        "whitelistImages" => l.WhitelistImages, "blacklistImages" => l.BlacklistImages,
        "whitelistChecksums" => l.WhitelistChecksums, _ => l.BlacklistChecksums,
    };

    static async Task<IResult> SetPolicy(HttpContext http, IPolicyAdministration policy, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        IReadOnlyList<string> Lines(string field) =>
            form[field].ToString().Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var lists = new PolicyListSet(Lines("whitelistEndorsers"), Lines("blacklistEndorsers"), Lines("whitelistImages"), Lines("blacklistImages"),
            Lines("whitelistChecksums"), Lines("blacklistChecksums"));
        return await Change(http, "/ui/admin/policy", () => policy.SetSiteListsAsync(http.User.ToCaller(), lists, ct),
            p => RenderPolicy(http, policy, null, null, null, p, lists, ct));
    }

    static async Task<IResult> RenderPolicy(HttpContext http, IPolicyAdministration policy, string? identifier, string? user, string? decision,
        WebProblem? problem, PolicyListSet? typed, CancellationToken ct)
    {
        var caller = http.User.ToCaller();
        var overview = await policy.GetAsync(caller, ct);
        var editing = typed ?? overview.Site;
        var csrf = Layout.CsrfField(http);
        Markup Field((string Field, string Label) f) => H($"""
            <div><label for="policy-{f.Field}">{f.Label}</label>
            <textarea id="policy-{f.Field}" name="{f.Field}" rows="3"{(problem?.Field == f.Field ? new Markup($" aria-describedby=\"{f.Field}-problem\" aria-invalid=\"true\"") : Markup.Empty)}>{string.Join("\n", ListOf(editing, f.Field))}</textarea>
            {(problem?.Field == f.Field ? H($"<p class=\"field-problem\" id=\"{f.Field}-problem\" role=\"alert\">{problem.Detail}</p>") : Markup.Empty)}</div>
            """);
        var editForm = H($"""
            <form method="post" action="/ui/admin/policy" class="card" id="policy-form">{csrf}<h2>Change the site lists</h2>
            <p class="hint">One value a line. These are the lists set through the API (PUT /api/v1/policy); the configuration file's lists apply as well and are not changed here.</p>
            <div class="grid">{Each(PolicyFields, Field)}</div>
            <button type="submit">Save the site lists</button></form>
            """);
        bool? accepted = decision switch { "accepted" => true, "refused" => false, _ => null };
        var audit = await policy.AuditAsync(caller, new LaunchAuditQuery(string.IsNullOrWhiteSpace(identifier) ? null : identifier.Trim(),
            string.IsNullOrWhiteSpace(user) ? null : user.Trim(), accepted, Limit: 200), ct);
        Markup List(string label, IReadOnlyList<string> values) =>
            H($"<dt>{label}</dt><dd>{(values.Count == 0 ? "none" : string.Join(", ", values))}</dd>");
        Markup Lists(PolicyListSet l) => H($"""
            <dl>{List("Whitelisted endorsers", l.WhitelistEndorsers)}{List("Blacklisted endorsers", l.BlacklistEndorsers)}{List("Whitelisted images", l.WhitelistImages)}
            {List("Blacklisted images", l.BlacklistImages)}{List("Whitelisted checksums", l.WhitelistChecksums)}{List("Blacklisted checksums", l.BlacklistChecksums)}</dl>
            """);
        Markup Option(string value, string label) => (decision ?? "") == value
            ? H($"<option value=\"{value}\" selected>{label}</option>") : H($"<option value=\"{value}\">{label}</option>");
        return Page(http, "Image policy and audit", "policy", problem is { Field: null } ? problem : null, H($"""
            <section class="card" id="policy"><h2>Policy in force</h2>
            <p class="hint">Launching from a URL: {overview.UrlImages}; from a volume: {overview.VolumeImages}.{(overview.UpdatedAt is null ? "" : $" Site lists last changed {Time(overview.UpdatedAt)} by {overview.UpdatedBy}.")} Change the site lists below (or with 'PUT /api/v1/policy'); the configuration file's lists apply too.</p>
            {Lists(overview.Effective)}
            <details><summary>From the configuration file</summary>{Lists(overview.Config)}</details>
            <details><summary>Set through the API</summary>{Lists(overview.Site)}</details></section>
            {editForm}
            <h2>Launch audit trail</h2>
            <form class="search" method="get" action="/ui/admin/policy" role="search">
            <label for="audit-identifier">Image</label><input id="audit-identifier" name="identifier" value="{identifier}">
            <label for="audit-user">User</label><input id="audit-user" name="user" value="{user}">
            <label for="audit-decision">Decision</label><select id="audit-decision" name="decision">{Option("", "any")}{Option("accepted", "accepted")}{Option("refused", "refused")}</select>
            <button type="submit">Filter</button></form>
            <table id="audit"><caption class="visually-hidden">Launch decisions, newest first</caption><thead><tr><th scope="col">When</th><th scope="col">User</th><th scope="col">Image</th><th scope="col">Endorser</th><th scope="col">Instance</th><th scope="col">Decision</th><th scope="col">Rule</th><th scope="col">Reason</th></tr></thead>
            <tbody>{Each(audit, a => H($"""
              <tr><td>{Time(a.At)}</td><td>{a.UserName}</td><td class="id">{a.Identifier}</td><td>{a.Endorser}</td><td>{(a.InstanceId is null ? Markup.Empty : H($"<a href=\"/ui/instances/{U(a.InstanceId)}\">{a.InstanceId}</a>"))}</td>
              <td class="verdict {(a.Accepted ? "accepted" : "refused")}">{(a.Accepted ? "accepted" : "refused")}</td><td>{a.Rule}</td><td>{a.Reason}</td></tr>
              """))}</tbody></table>
            {If(audit.Count == 0, H($"<p id=\"no-audit\">No launch decision matches.</p>"))}
            """), problem?.Status);
    }
}
