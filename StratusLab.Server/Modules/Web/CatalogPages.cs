using System.Globalization;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Images.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using static StratusLab.Server.Modules.Web.Html;

namespace StratusLab.Server.Modules.Web;

/// <summary>Read-only pages: the images this site offers (its cache) and the networks with their security-group rules.</summary>
internal static class CatalogPages
{
    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/images", ListImages);
        pages.MapGet("/networks", ListNetworks);
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

    static async Task<IResult> ListNetworks(HttpContext http, INetworks networks, ISecurityGroups groups, CancellationToken ct)
    {
        var caller = http.User.ToCaller();
        var nets = await networks.ListAsync(caller, ct);
        var sgs = await groups.ListAsync(caller, ct);
        static string Ports(SecurityRuleInfo r) => r.PortFirst is null ? "all" : r.PortFirst == r.PortLast ? $"{r.PortFirst}" : $"{r.PortFirst}-{r.PortLast}";
        var body = H($"""
            <h2>Networks</h2>
            <table id="networks"><caption class="visually-hidden">Networks you can use</caption><thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Driver</th><th scope="col">Addresses</th><th scope="col">Free</th><th scope="col">Gateway</th><th scope="col">Security groups</th></tr></thead>
            <tbody>{Each(nets, n => H($"""
              <tr><td>{n.Name}{If(n.IsDefault, new Markup(" <span class=\"tag\">default</span>"))}{If(!n.Usable, new Markup(" <span class=\"tag\">not usable</span>"))}</td><td>{n.Kind}</td><td>{n.Driver}</td><td>{n.Cidr}</td><td>{n.Free} of {n.Size}</td><td>{n.Gateway}</td><td>{string.Join(", ", n.SecurityGroups)}</td></tr>
              """))}</tbody></table>
            <h2>Security groups</h2>
            {Each(sgs, g => H($"""
              <section class="card"><h3>{g.Name} <span class="hint">owner {g.Owner}</span></h3>{(g.Description is null ? Markup.Empty : H($"<p>{g.Description}</p>"))}
              {(g.Rules.Count == 0 ? H($"<p class=\"hint\">No rule.</p>") : H($"""
                <table><thead><tr><th scope="col">Direction</th><th scope="col">Action</th><th scope="col">Protocol</th><th scope="col">Ports</th><th scope="col">From / to</th></tr></thead>
                <tbody>{Each(g.Rules, r => H($"<tr><td>{r.Direction}</td><td>{r.Action}</td><td>{r.Protocol}</td><td>{Ports(r)}</td><td>{r.Cidr ?? "anywhere"}</td></tr>"))}</tbody></table>
                """))}</section>
              """))}
            """);
        return Layout.Page(http, "Networks", body, current: "networks");
    }
}
