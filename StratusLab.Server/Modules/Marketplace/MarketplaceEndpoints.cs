using System.Security.Claims;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Modules.Marketplace.Pages;
using StratusLab.Server.Modules.Marketplace.Policy;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Marketplace;

/// <summary>Body of 202 Accepted: the entry is stored but waits for its endorser's confirmation.</summary>
internal sealed record PendingUpload(string Status, string Identifier, string Email, DateTimeOffset Created, string Detail);
/// <summary>Body of POST /marketplace/metadata/{identifier}/deprecate as JSON: an administrator's override.</summary>
internal sealed record DeprecateRequest(string Reason, string? Email = null);
/// <summary>The result of an administrator's deprecation.</summary>
internal sealed record DeprecationResult(string Identifier, string Reason, string DeprecatedBy, IReadOnlyList<MetadataEntry> Entries);
/// <summary>An endorser as lists show it; Pending only appears for administrators.</summary>
internal sealed record EndorserView(string Email, string Subject, string Issuer, string State, bool Whitelisted, long Entries, string? LastCreated,
    DateTimeOffset CreatedAt, DateTimeOffset? ConfirmedAt);
/// <summary>An endorser with every entry they published, newest first.</summary>
internal sealed record EndorserHistory(string Email, IReadOnlyList<EndorserView> Certificates, IReadOnlyList<MetadataEntry> History);
/// <summary>Body of POST /marketplace/endorsers/confirm.</summary>
internal sealed record ConfirmRequest(string Token);
/// <summary>Result of a confirmation.</summary>
internal sealed record ConfirmResult(string Email, int Published);

internal static partial class MarketplaceEndpoints
{
    public static RouteGroupBuilder MapMarketplaceEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/marketplace").WithTags("Marketplace");

        api.MapPost("/metadata", UploadMetadata).RequireAuthorization().Accepts<string>("application/xml");
        api.MapGet("/metadata", ListMetadata).AllowAnonymous();
        api.MapGet("/metadata/{identifier}", GetMetadata).AllowAnonymous();
        api.MapGet("/metadata/{identifier}/{email}", GetEndorserMetadata).AllowAnonymous();
        api.MapGet("/metadata/{identifier}/{email}/{created}", GetMetadataAt).AllowAnonymous();
        api.MapPost("/metadata/{identifier}/deprecate", DeprecateMetadata).RequireAuthorization().Accepts<string>("application/xml", "application/json");

        api.MapGet("/endorsers", ListEndorsers).AllowAnonymous();
        api.MapGet("/endorsers/{email}", GetEndorser).AllowAnonymous();
        api.MapPost("/endorsers/confirm", ConfirmEndorser).AllowAnonymous();
        api.MapPost("/endorsers/{email}/confirm", ConfirmEndorserByAdmin).RequireAuthorization(Policies.Admin);

        app.MapPolicyEndpoints();
        app.MapMarketplacePages();
        return api;
    }

    static async Task<Results<Created<MetadataEntry>, Accepted<PendingUpload>>> UploadMetadata(
        HttpContext http, ClaimsPrincipal principal, MarketplaceCatalog catalog, ServerOptions options, MarketplaceOptions marketplace, CancellationToken ct)
    {
        var xml = await ReadXmlBodyAsync(http, marketplace.MaxEntryBytes, ct);
        return Respond(await catalog.UploadAsync(xml, principal.ToCaller().Name, BaseUrl(http, options), ct: ct));
    }

    static Results<Created<MetadataEntry>, Accepted<PendingUpload>> Respond(UploadResult result)
    {
        if (result.Published) return TypedResults.Created(result.Location, result.Entry);
        var e = result.Entry;
        var detail = result.ConfirmationSentTo is not null
            ? $"Stored, but not published: {e.Endorser.Email} has not confirmed this certificate yet. A confirmation link was mailed to {e.Endorser.Email}; the entry is published as soon as it is followed."
            : $"Stored, but not published: {e.Endorser.Email} has not confirmed this certificate yet, and the confirmation mail could not be sent ({result.MailError}). Ask an administrator to confirm the endorser.";
        return TypedResults.Accepted(result.Location, new PendingUpload("pending", e.Identifier, e.Endorser.Email, e.Created, detail));
    }

    /// <summary>The raw XML body, refused early when it is not XML or larger than the cap (which may exceed the server-wide body limit).</summary>
    static async Task<byte[]> ReadXmlBodyAsync(HttpContext http, long max, CancellationToken ct)
    {
        var type = http.Request.ContentType;
        if (type is not null && !type.Contains("xml", StringComparison.OrdinalIgnoreCase))
            throw new ApiException(415, $"Send the entry as XML with 'Content-Type: application/xml' (got '{Validate.Trim(type)}').", title: "Unsupported Media Type");
        if (http.Request.ContentLength > max)
            throw MetadataException.TooLarge($"The entry is {http.Request.ContentLength} bytes, more than the {max} bytes accepted; metadata entries are small, check that you are sending the XML entry and not the image.");
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = max + 1;
        return await RequestBodies.ReadBoundedAsync(http.Request, max, ct)
            ?? throw MetadataException.TooLarge($"The entry is larger than the {max} bytes accepted; metadata entries are small, check that you are sending the XML entry and not the image.");
    }

    static string BaseUrl(HttpContext http, ServerOptions options) =>
        options.PublicUrl.Length > 0 ? options.PublicUrl.TrimEnd('/') : $"{http.Request.Scheme}://{http.Request.Host}";

    static async Task<IResult> ListMetadata(HttpContext http, MarketplaceCatalog catalog, MarketplaceStore store, string? status, string? identifier,
        string? email, string? os, string? arch, string? tag, string? q, string? created, string? format, int? limit, int? offset)
    {
        var (l, o) = Paging.Of(limit, offset);
        var query = new EntryQuery(ParseStatus(status), identifier is null ? null : CheckIdentifier(identifier), Blank(email), Blank(os), Blank(arch),
            Blank(tag), Blank(q), created is null ? null : CheckCreatedPrefix(created), l, o);
        var rows = await catalog.QueryRowsAsync(query);
        if (WantsXml(http, format)) return XmlList(await store.XmlOfAsync(rows.Select(r => r.Id).ToList()));
        return TypedResults.Ok<IReadOnlyList<MetadataEntry>>(rows.Select(catalog.ToEntry).ToList());
    }

    static async Task<IResult> GetMetadata(string identifier, HttpContext http, MarketplaceCatalog catalog, MarketplaceStore store, string? format)
    {
        var rows = await store.LatestForIdentifierAsync(CheckIdentifier(identifier));
        if (rows.Count == 0) throw new NotFoundException($"Marketplace image '{identifier}'");
        if (WantsXml(http, format))
            return rows.Count == 1 ? XmlDocument((await store.XmlOfAsync(rows[0].Id))!) : XmlList(await store.XmlOfAsync(rows.Select(r => r.Id).ToList()));
        return TypedResults.Ok<IReadOnlyList<MetadataEntry>>(rows.Select(catalog.ToEntry).ToList());
    }

    static async Task<IResult> GetEndorserMetadata(string identifier, string email, HttpContext http, MarketplaceCatalog catalog, MarketplaceStore store, string? format)
    {
        var row = await store.LatestOfEndorserAsync(CheckIdentifier(identifier), email)
            ?? throw new NotFoundException($"Marketplace entry '{identifier}' by '{email}'");
        return WantsXml(http, format) ? XmlDocument((await store.XmlOfAsync(row.Id))!) : TypedResults.Ok(catalog.ToEntry(row));
    }

    static async Task<IResult> GetMetadataAt(string identifier, string email, string created, HttpContext http, MarketplaceCatalog catalog,
        MarketplaceStore store, string? format)
    {
        DateTimeOffset time;
        try { time = MetadataXml.ParseDate(created, "created"); }
        catch (MetadataException e) { throw new InvalidInputException("created", e.Detail); }
        var row = await store.FindEntryAsync(CheckIdentifier(identifier), email, MetadataXml.Format(time))
            ?? throw new NotFoundException($"Marketplace entry '{identifier}' by '{email}' created {created}");
        return WantsXml(http, format) ? XmlDocument((await store.XmlOfAsync(row.Id))!) : TypedResults.Ok(catalog.ToEntry(row));
    }

    /// <summary>XML: an entry re-signed by its endorser with slterms:deprecated. JSON {reason, email?}: an administrator's override, recorded as such.</summary>
    static async Task<IResult> DeprecateMetadata(string identifier, HttpContext http, ClaimsPrincipal principal, MarketplaceCatalog catalog,
        MarketplaceStore store, ServerOptions options, MarketplaceOptions marketplace, CancellationToken ct)
    {
        CheckIdentifier(identifier);
        var caller = principal.ToCaller();
        if (http.Request.ContentType?.Contains("json", StringComparison.OrdinalIgnoreCase) != true)
        {
            var xml = await ReadXmlBodyAsync(http, marketplace.MaxEntryBytes, ct);
            var result = await catalog.UploadAsync(xml, caller.Name, BaseUrl(http, options), identifier, mustDeprecate: true, ct);
            return Respond(result).Result;
        }
        if (!caller.IsAdmin)
            throw new ForbiddenException("Only administrators may deprecate an entry without the endorser's signature; endorsers re-sign it with 'stratuslab deprecate-metadata ID --reason TEXT --p12 KEY'.");
        DeprecateRequest? body;
        try { body = await http.Request.ReadFromJsonAsync<DeprecateRequest>(ct); }
        catch (System.Text.Json.JsonException e) { throw new BadHttpRequestException("invalid JSON body", 400, e); }
        if (body is null) throw new InvalidInputException("reason", "Send {\"reason\": \"...\"} (and optionally \"email\" to deprecate one endorser's entry).");
        if (string.IsNullOrWhiteSpace(body.Reason) || body.Reason.Length > 1000)
            throw new InvalidInputException("reason", "'reason' is required (1 to 1000 characters): say why the image must no longer be used.");
        var by = "admin:" + caller.Name;
        var count = await store.DeprecateLatestAsync(identifier, Blank(body.Email), body.Reason.Trim(), by);
        if (count == 0) throw new NotFoundException($"Marketplace entry '{identifier}'{(body.Email is null ? "" : $" by '{body.Email}'")}");
        var entries = (await store.LatestForIdentifierAsync(identifier)).Select(catalog.ToEntry)
            .Where(e => e.DeprecatedBy == by && (body.Email is null || e.Endorser.Email.Equals(body.Email, StringComparison.OrdinalIgnoreCase))).ToList();
        return TypedResults.Ok(new DeprecationResult(identifier, body.Reason.Trim(), by, entries));
    }

    static async Task<Ok<IReadOnlyList<EndorserView>>> ListEndorsers(ClaimsPrincipal principal, MarketplaceStore store, int? limit, int? offset)
    {
        var (l, o) = Paging.Of(limit, offset);
        var rows = await store.ListEndorsersAsync(IsAdmin(principal), null, l, o);
        return TypedResults.Ok<IReadOnlyList<EndorserView>>(rows.Select(ToView).ToList());
    }

    static async Task<Ok<EndorserHistory>> GetEndorser(string email, ClaimsPrincipal principal, MarketplaceStore store, MarketplaceCatalog catalog, int? limit, int? offset)
    {
        var (l, o) = Paging.Of(limit, offset);
        var certificates = await store.ListEndorsersAsync(IsAdmin(principal), email, 100, 0);
        if (certificates.Count == 0) throw new NotFoundException($"Endorser '{email}'");
        var history = (await store.HistoryAsync(email, l, o)).Select(catalog.ToEntry).ToList();
        return TypedResults.Ok(new EndorserHistory(certificates[0].Email, certificates.Select(ToView).ToList(), history));
    }

    static async Task<Ok<ConfirmResult>> ConfirmEndorser(ConfirmRequest body, MarketplaceCatalog catalog, CancellationToken ct)
    {
        var result = await catalog.ConfirmAsync(body.Token, ct)
            ?? throw new ApiException(404, "This confirmation link is unknown or was already used; only the link in the newest mail works.", "token", "Not Found");
        return TypedResults.Ok(new ConfirmResult(result.Email, result.Published));
    }

    static async Task<Ok<ConfirmResult>> ConfirmEndorserByAdmin(string email, MarketplaceCatalog catalog, CancellationToken ct) =>
        TypedResults.Ok(new ConfirmResult(email, await catalog.ConfirmByAdminAsync(email, ct)));

    static bool IsAdmin(ClaimsPrincipal principal) => principal.Identity?.IsAuthenticated == true && principal.IsInRole(IdentityClaims.AdminRole);

    static EndorserView ToView(EndorserSummaryRow r) =>
        new(r.Email, r.Subject, r.Issuer, r.State, r.Whitelisted != 0, r.Entries, r.LastCreated, r.CreatedAt, r.ConfirmedAt);

    public static string ParseStatus(string? status) => (status ?? "valid").ToLowerInvariant() switch
    {
        "valid" or "expired" or "deprecated" or "all" => (status ?? "valid").ToLowerInvariant(),
        _ => throw new InvalidInputException("status", $"'status' = '{Validate.Trim(status!)}' is not accepted; accepted values: valid, expired, deprecated, all."),
    };

    public static string CheckIdentifier(string identifier) =>
        ImageIdentifier.IsWellFormed(identifier) ? identifier
            : throw new InvalidInputException("identifier", $"'{Validate.Trim(identifier)}' is not an image identifier: 27 characters of A-Z, a-z, 0-9, '-' and '_' (e.g. MMZu9WvwKIro-rtBQfDk4PsKO7_).");

    static string CheckCreatedPrefix(string created) =>
        CreatedPrefix().IsMatch(created) ? created
            : throw new InvalidInputException("created", $"'created' = '{Validate.Trim(created)}' is not a date; give yyyy-MM-dd, or a time such as 2011-01-24T09:59:42Z.");

    static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    static bool WantsXml(HttpContext http, string? format)
    {
        if (format is not null)
            return format.ToLowerInvariant() switch
            {
                "xml" => true,
                "json" => false,
                _ => throw new InvalidInputException("format", $"'format' = '{Validate.Trim(format)}' is not accepted; accepted values: json, xml."),
            };
        var accept = http.Request.Headers.Accept.ToString();
        return accept.Contains("xml", StringComparison.OrdinalIgnoreCase) && !accept.Contains("json", StringComparison.OrdinalIgnoreCase);
    }

    static IResult XmlDocument(byte[] xml) => TypedResults.Bytes(xml, "application/xml; charset=utf-8");

    /// <summary>Several entries in one document: &lt;metadata&gt; around each entry exactly as signed (signatures still verify once extracted).</summary>
    static IResult XmlList(IReadOnlyList<byte[]> entries)
    {
        var sb = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n");
        foreach (var xml in entries) sb.Append(XmlDeclaration().Replace(Encoding.UTF8.GetString(xml), "", 1).Trim()).Append('\n');
        sb.Append("</metadata>\n");
        return TypedResults.Text(sb.ToString(), "application/xml", Encoding.UTF8);
    }

    [GeneratedRegex(@"^\s*<\?xml[^>]*\?>")]
    private static partial Regex XmlDeclaration();

    [GeneratedRegex(@"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}Z?)?)?)?)?)?$")]
    private static partial Regex CreatedPrefix();
}
