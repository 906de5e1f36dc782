using System.Globalization;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// The images this site offers (its cache), and the networks: their leases (address, instance, MAC), held addresses (hold,
/// release) and security groups with their rules (add, delete), through Networking's <see cref="INetworks"/> and <see cref="ISecurityGroups"/>.
/// </summary>
internal static class CatalogPages
{
    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/images", ListImages);
        pages.MapGet("/networks", ListNetworks);
        pages.MapPost("/networks/{network}/hold", HoldAddress).DisableAntiforgery();
        pages.MapPost("/networks/{network}/release", ReleaseAddress).DisableAntiforgery();
        pages.MapPost("/security-groups/{name}/rules", AddRule).DisableAntiforgery();
        pages.MapPost("/security-groups/{name}/rules/{id:long}/delete", DeleteRule).DisableAntiforgery();
    }

    static async Task<IResult> ListImages(HttpContext http, IImageCatalog catalog, CancellationToken ct)
    {
        var images = await catalog.ListAsync(ct);
        var body = H($"""
            <p class="hint">The images this site can launch: registered names, then cached Marketplace images. <a href="/ui/instances/new">Launch one</a>, or find more in the <a href="/marketplace">Marketplace</a>.</p>
            {(images.Count == 0 ? H($"<p>No image yet.</p>") : H($"""
              <table id="images"><caption class="visually-hidden">Images</caption><thead><tr><th scope="col">Image</th><th scope="col">Marketplace identifier</th><th scope="col">State</th><th scope="col">Size</th><th scope="col">Needs</th><th scope="col">Added</th></tr></thead>
              <tbody>{Each(images, i => H($"""
                <tr><td><a href="/ui/instances/new?image={U(i.Image)}">{i.Image}</a>{If(i.IsDefault, new Markup(" <span class=\"tag\">default</span>"))}</td>
                <td>{(i.Identifier is null ? Markup.Empty : H($"<a href=\"/marketplace/images/{U(i.Identifier)}\">{i.Identifier}</a>"))}</td><td>{i.State}</td>
                <td>{(i.SizeBytes is { } b ? (b / (1024.0 * 1024)).ToString("F0", CultureInfo.InvariantCulture) + " MiB" : "")}</td>
                <td>{Needs(i.Requirements)}</td><td>{i.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm'Z'", CultureInfo.InvariantCulture)}</td></tr>
                """))}</tbody></table>
              """))}
            """);
        return Layout.Page(http, "Images", body, current: "images");
    }

    static string Needs(ImageRequirements? r) => r is null ? "" : string.Join(", ", new[]
    {
        r.MinCpu is { } c ? $"{c} CPU" : null, r.MinMemoryMiB is { } m ? $"{m} MiB" : null, r.MinDiskGiB is { } d ? $"{d} GiB disk" : null,
        r.Os, r.DefaultUser is { } u ? $"login {u}" : null,
    }.Where(s => s is not null));

    static Task<IResult> ListNetworks(HttpContext http, INetworks networks, ISecurityGroups groups, CancellationToken ct) =>
        RenderNetworks(http, networks, groups, null, null, ct);

    /// <summary>The page; a refusal is shown beside the form it came from (<paramref name="at"/>: "hold-NETWORK" or "rule-GROUP").</summary>
    static async Task<IResult> RenderNetworks(HttpContext http, INetworks networks, ISecurityGroups groups, WebProblem? problem, string? at, CancellationToken ct)
    {
        var caller = http.User.ToCaller();
        var nets = await networks.ListAsync(caller, ct);
        var sgs = await groups.ListAsync(caller, ct);
        var leases = new Dictionary<long, IReadOnlyList<LeaseView>>();
        foreach (var n in nets) leases[n.Id] = await networks.LeasesAsync(caller, n.Id.ToString(CultureInfo.InvariantCulture), ct: ct);
        var csrf = Layout.CsrfField(http);
        static string Ports(SecurityRuleInfo r) => r.PortFirst is null ? "all" : r.PortFirst == r.PortLast ? $"{r.PortFirst}" : $"{r.PortFirst}-{r.PortLast}";
        Markup ProblemAt(string key) => problem is not null && at == key
            ? H($"<p class=\"field-problem\" id=\"{key}-problem\" role=\"alert\">{problem.Detail}</p>") : Markup.Empty;
        // Only a hint: Networking decides who may hold addresses or change rules, and refuses the others.
        bool Manages(long ownerId) => caller.IsAdmin || ownerId == caller.UserId;
        Markup Leases(NetworkInfo n) => H($"""
            <section class="card" id="leases-{n.Name}"><h3>Leases on {n.Name}</h3>
            {(leases[n.Id].Count == 0 ? H($"<p class=\"hint\">No address in use or held.</p>") : H($"""
              <table class="leases"><caption class="visually-hidden">Leases on {n.Name}</caption><thead><tr><th scope="col">Address</th><th scope="col">State</th><th scope="col">Instance</th><th scope="col">MAC</th><th scope="col">Port forwards</th><th scope="col"></th></tr></thead>
              <tbody>{Each(leases[n.Id], l => H($"""
                <tr data-ip="{l.Ip}"><td>{l.Ip}</td><td>{l.State}{(l.Reason is null ? "" : $" ({l.Reason})")}</td>
                <td>{(l.InstanceId is { } i ? H($"<a href=\"/ui/instances/{i}\">instance {i}</a>{(l.Nic is { } nic ? $" NIC {nic}" : "")}") : Markup.Empty)}</td><td>{l.Mac}</td>
                <td>{string.Join(", ", l.Forwards.Select(f => $"{f.HostAddress}:{f.HostPort} → {f.GuestPort}/{f.Protocol}"))}</td>
                <td>{If(l.State == "held" && Manages(n.OwnerId) && l.Reason is not ("gateway" or "dns"), H($"<form method=\"post\" action=\"/ui/networks/{U(n.Name)}/release\" class=\"inline\">{csrf}<input type=\"hidden\" name=\"ip\" value=\"{l.Ip}\"><button type=\"submit\" aria-label=\"Release {l.Ip} on {n.Name}\">Release</button></form>"))}</td></tr>
                """))}</tbody></table>
              """))}
            {If(Manages(n.OwnerId), H($"""
              <form method="post" action="/ui/networks/{U(n.Name)}/hold" class="search">{csrf}<label for="hold-{n.Name}">Hold an address</label>
              <input id="hold-{n.Name}" name="ip" required placeholder="{n.Gateway}"{(problem is not null && at == "hold-" + n.Name ? H($" aria-describedby=\"hold-{n.Name}-problem\" aria-invalid=\"true\"") : Markup.Empty)}><button type="submit">Hold</button></form>
              {ProblemAt("hold-" + n.Name)}
              """))}</section>
            """);
        Markup Group(SecurityGroupInfo g) => H($"""
            <section class="card" id="group-{g.Name}"><h3>{g.Name} <span class="hint">owner {g.Owner}</span></h3>{(g.Description is null ? Markup.Empty : H($"<p>{g.Description}</p>"))}
            {(g.Rules.Count == 0 ? H($"<p class=\"hint\">No rule.</p>") : H($"""
              <table class="rules"><caption class="visually-hidden">Rules of {g.Name}</caption><thead><tr><th scope="col">Direction</th><th scope="col">Action</th><th scope="col">Protocol</th><th scope="col">Ports</th><th scope="col">From / to</th><th scope="col"></th></tr></thead>
              <tbody>{Each(g.Rules, r => H($"""
                <tr data-rule="{r.Id}"><td>{r.Direction}</td><td>{r.Action}</td><td>{r.Protocol}</td><td>{Ports(r)}</td><td>{r.Cidr ?? "anywhere"}</td>
                <td>{If(Manages(g.OwnerId), H($"<form method=\"post\" action=\"/ui/security-groups/{U(g.Name)}/rules/{r.Id}/delete\" class=\"inline\">{csrf}<button type=\"submit\" class=\"danger\" aria-label=\"Delete rule {r.Id} of {g.Name}\">Delete</button></form>"))}</td></tr>
                """))}</tbody></table>
              """))}
            {If(Manages(g.OwnerId), H($"""
              <form method="post" action="/ui/security-groups/{U(g.Name)}/rules" class="search">{csrf}
              <label for="dir-{g.Name}">Direction</label><select id="dir-{g.Name}" name="direction"><option>inbound</option><option>outbound</option></select>
              <label for="proto-{g.Name}">Protocol</label><select id="proto-{g.Name}" name="protocol"><option>tcp</option><option>udp</option><option>icmp</option><option>all</option></select>
              <label for="ports-{g.Name}">Ports</label><input id="ports-{g.Name}" name="ports" placeholder="22 or 8000-8080" size="10">
              <label for="cidr-{g.Name}">From / to (CIDR)</label><input id="cidr-{g.Name}" name="cidr" placeholder="anywhere" size="16">
              <label for="action-{g.Name}">Action</label><select id="action-{g.Name}" name="action"><option>accept</option><option>drop</option></select>
              <button type="submit">Add rule</button></form>
              {ProblemAt("rule-" + g.Name)}
              """))}</section>
            """);
        var body = H($"""
            {(problem is not null && at is null ? H($"<p class=\"problem\" role=\"alert\">{problem.Detail}</p>") : Markup.Empty)}
            <h2>Networks</h2>
            <table id="networks"><caption class="visually-hidden">Networks you can use</caption><thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Driver</th><th scope="col">Addresses</th><th scope="col">Free</th><th scope="col">Gateway</th><th scope="col">Security groups</th></tr></thead>
            <tbody>{Each(nets, n => H($"""
              <tr><td><a href="#leases-{n.Name}">{n.Name}</a>{If(n.IsDefault, new Markup(" <span class=\"tag\">default</span>"))}{If(!n.Usable, new Markup(" <span class=\"tag\">not usable</span>"))}</td><td>{n.Kind}</td><td>{n.Driver}</td><td>{n.Cidr}</td><td>{n.Free} of {n.Size}</td><td>{n.Gateway}</td><td>{string.Join(", ", n.SecurityGroups)}</td></tr>
              """))}</tbody></table>
            {Each(nets, Leases)}
            <h2>Security groups</h2>
            {Each(sgs, Group)}
            """);
        return Layout.Page(http, "Networks", body, problem?.Status ?? 200, "networks");
    }

    /// <summary>Runs one change; on success back to the page at <paramref name="anchor"/>, on refusal the page with the problem beside the form.</summary>
    static async Task<IResult> ChangeNetworks(HttpContext http, INetworks networks, ISecurityGroups groups, string at, string anchor, Func<Caller, Task> change, CancellationToken ct)
    {
        try { await change(http.User.ToCaller()); }
        catch (Exception e) when (WebProblem.From(e) is { } p) { return await RenderNetworks(http, networks, groups, p, at, ct); }
        return Results.Redirect("/ui/networks#" + anchor);
    }

    static async Task<IResult> HoldAddress(string network, HttpContext http, INetworks networks, ISecurityGroups groups, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        return await ChangeNetworks(http, networks, groups, "hold-" + network, "leases-" + network,
            caller => networks.HoldAsync(caller, network, form["ip"].ToString().Trim(), ct), ct);
    }

    static async Task<IResult> ReleaseAddress(string network, HttpContext http, INetworks networks, ISecurityGroups groups, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        return await ChangeNetworks(http, networks, groups, "hold-" + network, "leases-" + network,
            caller => networks.ReleaseAsync(caller, network, form["ip"].ToString().Trim(), ct), ct);
    }

    static async Task<IResult> AddRule(string name, HttpContext http, INetworks networks, ISecurityGroups groups, CancellationToken ct)
    {
        var form = await http.Request.ReadFormAsync(ct);
        string? Field(string key) => form[key].ToString().Trim() is { Length: > 0 } v ? v : null;
        var rule = new SecurityRuleSpec(form["direction"].ToString().Trim(), Field("protocol"), Field("ports"), Field("cidr"), Field("action"));
        return await ChangeNetworks(http, networks, groups, "rule-" + name, "group-" + name, caller => groups.AddRulesAsync(name, [rule], caller, ct), ct);
    }

    static Task<IResult> DeleteRule(string name, long id, HttpContext http, INetworks networks, ISecurityGroups groups, CancellationToken ct) =>
        ChangeNetworks(http, networks, groups, "rule-" + name, "group-" + name, caller => groups.RemoveRulesAsync(name, [id], caller, ct), ct);
}
