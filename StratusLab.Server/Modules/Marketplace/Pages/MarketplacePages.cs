using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Marketplace.Pages;

/// <summary>
/// The human pages: /marketplace (browse and search), /marketplace/images/{identifier} (details and history),
/// /marketplace/confirm/{token}. Server-rendered from the binary, no external assets, every value HTML-encoded,
/// title, logo and colours from Marketplace:Pages.
/// </summary>
internal static class MarketplacePages
{
    const int PageSize = 50;
    static readonly HtmlEncoder Html = HtmlEncoder.Default;

    public static void MapMarketplacePages(this IEndpointRouteBuilder app)
    {
        var pages = app.MapGroup("/marketplace").AllowAnonymous().ExcludeFromDescription();
        pages.MapGet("", Browse);
        pages.MapGet("/images/{identifier}", Details);
        pages.MapGet("/confirm/{token}", ConfirmForm);
        pages.MapPost("/confirm/{token}", Confirm).DisableAntiforgery();
        pages.MapGet("/style.css", Style);
        pages.MapGet("/logo", Logo);
    }

    static async Task<IResult> Browse(HttpContext http, MarketplaceCatalog catalog, MarketplaceOptions options,
        string? q, string? os, string? arch, string? tag, string? email, string? status, int? page)
    {
        var current = Math.Max(1, page ?? 1);
        IReadOnlyList<MetadataEntry> entries;
        string? problem = null;
        try
        {
            entries = await catalog.QueryAsync(new EntryQuery(MarketplaceEndpoints.ParseStatus(status), null, Blank(email), Blank(os), Blank(arch),
                Blank(tag), Blank(q), null, PageSize + 1, (current - 1) * PageSize));
        }
        catch (DomainException e)
        {
            entries = [];
            problem = e.Detail;
        }
        var body = new StringBuilder();
        body.Append("<form class=\"search\" method=\"get\" action=\"/marketplace\">")
            .Append(Input("q", q, "search title, description, tags...", "search"))
            .Append(Input("os", os, "os")).Append(Input("arch", arch, "arch")).Append(Input("tag", tag, "tag")).Append(Input("email", email, "endorser"))
            .Append("<select name=\"status\">");
        foreach (var s in new[] { "valid", "expired", "deprecated", "all" })
            body.Append($"<option{(string.Equals(status ?? "valid", s, StringComparison.OrdinalIgnoreCase) ? " selected" : "")}>{s}</option>");
        body.Append("</select><button type=\"submit\">Search</button></form>");
        if (problem is not null) body.Append($"<p class=\"problem\">{E(problem)}</p>");
        else if (entries.Count == 0) body.Append("<p>No image matches.</p>");
        else
        {
            body.Append("<table><thead><tr><th>Title</th><th>OS</th><th>Arch</th><th>Endorser</th><th>Created</th><th>Status</th><th>Tags</th></tr></thead><tbody>");
            foreach (var e in entries.Take(PageSize))
                body.Append("<tr>")
                    .Append($"<td><a href=\"/marketplace/images/{U(e.Identifier)}\">{E(e.Title ?? e.Identifier)}</a><div class=\"id\">{E(e.Identifier)}</div></td>")
                    .Append($"<td>{E(Join(e.Os, e.OsVersion))}</td><td>{E(e.OsArch)}</td><td>{E(e.Endorser.Email)}</td>")
                    .Append($"<td>{E(MetadataXml.Format(e.Created))}</td><td><span class=\"status {e.Status.ToString().ToLowerInvariant()}\">{e.Status.ToString().ToLowerInvariant()}</span></td>")
                    .Append($"<td>{E(string.Join(", ", e.Tags))}</td></tr>");
            body.Append("</tbody></table>");
            var query = http.Request.Query.Where(p => p.Key != "page").Select(p => $"{U(p.Key)}={U(p.Value.ToString())}").ToList();
            string Link(int n) => "/marketplace?" + string.Join("&", query.Append($"page={n}"));
            body.Append("<nav class=\"pager\">");
            if (current > 1) body.Append($"<a href=\"{E(Link(current - 1))}\">&larr; previous</a>");
            if (entries.Count > PageSize) body.Append($"<a href=\"{E(Link(current + 1))}\">next &rarr;</a>");
            body.Append("</nav>");
        }
        return Page(http, options, "Images", body.ToString());
    }

    static async Task<IResult> Details(string identifier, HttpContext http, MarketplaceCatalog catalog, MarketplaceStore store, MarketplaceOptions options)
    {
        if (!ImageIdentifier.IsWellFormed(identifier))
            return Page(http, options, "Not an identifier", $"<p class=\"problem\">'{E(Validate.Trim(identifier))}' is not an image identifier.</p>", 400);
        var latest = await catalog.FindEntriesAsync(identifier);
        if (latest.Count == 0)
            return Page(http, options, "Unknown image", $"<p class=\"problem\">The Marketplace has no published entry for {E(identifier)}.</p>", 404);
        var body = new StringBuilder();
        foreach (var e in latest)
        {
            body.Append($"<section class=\"entry\"><h2>{E(e.Title ?? e.Identifier)} <span class=\"status {e.Status.ToString().ToLowerInvariant()}\">{e.Status.ToString().ToLowerInvariant()}</span></h2>");
            if (e.Description is not null) body.Append($"<p>{E(e.Description)}</p>");
            body.Append("<dl>");
            void Row(string name, string? value) { if (!string.IsNullOrEmpty(value)) body.Append($"<dt>{E(name)}</dt><dd>{E(value)}</dd>"); }
            Row("Identifier", e.Identifier);
            Row("Endorser", e.Endorser.Email);
            Row("Certificate subject", e.Endorser.Subject);
            Row("Certificate issuer", e.Endorser.Issuer);
            Row("Created", MetadataXml.Format(e.Created));
            Row("Valid until", e.Valid is { } v ? MetadataXml.Format(v) : "no expiry");
            Row("Deprecated", e.Deprecated is null ? null : $"{e.Deprecated} ({e.DeprecatedBy})");
            Row("Type", e.Type);
            Row("OS", Join(e.Os, e.OsVersion));
            Row("Architecture", e.OsArch);
            Row("Version", e.Version);
            Row("Hypervisor", e.Hypervisor);
            Row("Format", Join(e.Format, e.Compression is null ? null : $"({e.Compression})"));
            Row("Size", e.Bytes is { } b ? $"{b.ToString("N0", CultureInfo.InvariantCulture)} bytes" : null);
            foreach (var c in e.Checksums) Row(c.Algorithm, c.Value);
            Row("Tags", string.Join(", ", e.Tags));
            Row("Creator", e.Creator);
            Row("Publisher", e.Publisher);
            Row("Inbound ports", string.Join(", ", e.InboundPorts));
            Row("Outbound ports", string.Join(", ", e.OutboundPorts));
            body.Append("</dl>");
            if (e.Locations.Count > 0)
            {
                body.Append("<h3>Locations</h3><ul>");
                foreach (var l in e.Locations)
                    body.Append(Uri.TryCreate(l, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                        ? $"<li><a href=\"{E(l)}\" rel=\"nofollow noopener\">{E(l)}</a></li>" : $"<li>{E(l)}</li>");
                body.Append("</ul>");
            }
            var xml = MarketplaceCatalog.EntryPath(e.Identifier, e.Endorser.Email, e.Created) + "?format=xml";
            body.Append($"<p><a href=\"{E(xml)}\">Signed metadata (XML)</a></p></section>");
        }
        var history = await store.IdentifierHistoryAsync(identifier, 100);
        if (history.Count > latest.Count)
        {
            body.Append("<h2>History</h2><table><thead><tr><th>Created</th><th>Endorser</th><th>Deprecated</th><th></th></tr></thead><tbody>");
            foreach (var h in history)
                body.Append($"<tr><td>{E(h.Created)}</td><td>{E(h.Email)}</td><td>{E(h.Deprecated)}</td>")
                    .Append($"<td><a href=\"{E($"/api/v1/marketplace/metadata/{h.Identifier}/{Uri.EscapeDataString(h.Email)}/{h.Created}?format=xml")}\">XML</a></td></tr>");
            body.Append("</tbody></table>");
        }
        return Page(http, options, latest[0].Title ?? identifier, body.ToString());
    }

    static async Task<IResult> ConfirmForm(string token, HttpContext http, MarketplaceStore store, MarketplaceOptions options)
    {
        var endorser = await store.FindEndorserByTokenAsync(TokenHash.Of(token));
        if (endorser is null)
            return Page(http, options, "Unknown link", "<p class=\"problem\">This confirmation link is unknown or was already used; only the link in the newest mail works.</p>", 404);
        // A form, not a GET side effect: mail scanners that open links must not confirm anything.
        return Page(http, options, "Confirm endorser", $"""
            <p>Confirm that the certificate below belongs to <strong>{E(endorser.Email)}</strong> and publish the entries signed with it.</p>
            <dl><dt>Subject</dt><dd>{E(endorser.Subject)}</dd><dt>Issuer</dt><dd>{E(endorser.Issuer)}</dd><dt>SHA-256 fingerprint</dt><dd>{E(endorser.CertSha256)}</dd></dl>
            <form method="post" action="/marketplace/confirm/{U(token)}"><button type="submit">Confirm and publish</button></form>
            """);
    }

    static async Task<IResult> Confirm(string token, HttpContext http, MarketplaceCatalog catalog, MarketplaceOptions options, CancellationToken ct)
    {
        var result = await catalog.ConfirmAsync(token, ct);
        return result is null
            ? Page(http, options, "Unknown link", "<p class=\"problem\">This confirmation link is unknown or was already used; only the link in the newest mail works.</p>", 404)
            : Page(http, options, "Confirmed", $"<p>Thank you: {E(result.Value.Email)} is confirmed and {result.Value.Published} entr{(result.Value.Published == 1 ? "y is" : "ies are")} now published.</p><p><a href=\"/marketplace?email={U(result.Value.Email)}\">See your entries</a></p>");
    }

    static IResult Style(MarketplaceOptions options)
    {
        var p = options.Pages;
        var css = $$"""
            :root { --primary: {{p.PrimaryColour}}; --accent: {{p.AccentColour}}; --background: {{p.BackgroundColour}}; }
            * { box-sizing: border-box; }
            body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--background); color: #1c2430; }
            header { background: var(--primary); color: #fff; padding: .8rem 1.5rem; display: flex; align-items: center; gap: 1rem; border-bottom: 4px solid var(--accent); }
            header img { height: 40px; } header a { color: #fff; text-decoration: none; font-size: 1.4rem; font-weight: 600; }
            main { max-width: 1100px; margin: 1.5rem auto; padding: 0 1rem; }
            h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; }
            table { width: 100%; border-collapse: collapse; background: #fff; }
            th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #dde3ea; vertical-align: top; }
            th { background: #eef2f6; font-weight: 600; }
            a { color: var(--primary); } .id { font: 12px ui-monospace, monospace; color: #5b6673; }
            form.search { display: flex; flex-wrap: wrap; gap: .5rem; margin-bottom: 1rem; }
            input, select, button { font: inherit; padding: .35rem .5rem; border: 1px solid #b8c2cc; border-radius: 4px; }
            input[name=q] { flex: 1 1 16rem; } button { background: var(--primary); color: #fff; border-color: var(--primary); cursor: pointer; }
            .status { font-size: .8rem; padding: .1rem .45rem; border-radius: 999px; background: #dde3ea; }
            .status.valid { background: #d6f0dd; } .status.expired { background: #f5e6c8; } .status.deprecated { background: #f6d3d3; }
            .entry { background: #fff; padding: 1rem 1.2rem; margin-bottom: 1rem; border: 1px solid #dde3ea; border-radius: 6px; }
            dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; } dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
            .problem { color: #8a1c1c; } .pager { display: flex; gap: 1rem; margin-top: 1rem; }
            footer { text-align: center; color: #5b6673; font-size: .85rem; padding: 2rem; }
            header nav.site { margin-left: auto; display: flex; flex-wrap: wrap; gap: .9rem; align-items: center; }
            header nav.site a { font-size: 1rem; font-weight: 500; } header nav.site a[aria-current=page] { text-decoration: underline; text-underline-offset: 4px; }
            a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
            @media (max-width: 640px) { header { flex-wrap: wrap; padding: .6rem .8rem; } main { padding: 0 .5rem; } table { display: block; overflow-x: auto; } }
            """;
        return TypedResults.Text(css, "text/css", Encoding.UTF8);
    }

    static IResult Logo(MarketplaceOptions options)
    {
        var file = options.Pages.LogoFile;
        if (file.Length > 0 && File.Exists(file))
        {
            var type = Path.GetExtension(file).ToLowerInvariant() switch { ".svg" => "image/svg+xml", ".jpg" or ".jpeg" => "image/jpeg", _ => "image/png" };
            return TypedResults.File(File.ReadAllBytes(file), type);
        }
        const string svg = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 40"><path d="M16 34a10 10 0 0 1 0-20 14 14 0 0 1 27-3 11 11 0 0 1 5 23z" fill="#fff"/>
            <path d="M22 28h22M26 22h16" stroke="#1f4e79" stroke-width="3" stroke-linecap="round"/></svg>
            """;
        return TypedResults.Text(svg, "image/svg+xml", Encoding.UTF8);
    }

    static IResult Page(HttpContext http, MarketplaceOptions options, string heading, string body, int status = 200)
    {
        var title = options.Pages.Title;
        http.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        var html = $"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{E(heading)} - {E(title)}</title><link rel="stylesheet" href="/marketplace/style.css"></head>
            <body><header><img src="/marketplace/logo" alt=""><a href="/marketplace">{E(title)}</a><nav class="site"><a href="/">Dashboard</a></nav></header>
            <main><h1>{E(heading)}</h1>
            {body}
            </main><footer>Signed appliance metadata, compatible with the StratusLab Marketplace. API: <a href="/docs">/docs</a></footer></body></html>
            """;
        return TypedResults.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    static string Input(string name, string? value, string placeholder, string type = "text") =>
        $"<input type=\"{type}\" name=\"{name}\" value=\"{E(value)}\" placeholder=\"{E(placeholder)}\">";

    static string E(string? value) => value is null ? "" : Html.Encode(value);
    static string U(string value) => Uri.EscapeDataString(value);
    static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
    static string? Join(string? a, string? b) => a is null ? b : b is null ? a : $"{a} {b}";
}
