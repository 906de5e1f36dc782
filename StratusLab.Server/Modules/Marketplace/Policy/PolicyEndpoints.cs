using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Marketplace.Policy;

/// <summary>The site image policy as GET /policy shows it: the config file's lists, the API's, and both together.</summary>
internal sealed record PolicyView(PolicyLists Config, PolicyLists Site, PolicyLists Effective, DateTimeOffset? UpdatedAt, string? UpdatedBy,
    string UrlImages, string VolumeImages);
/// <summary>Body of PUT /policy: the site's lists (those set through the API), each replaced; absent lists become empty.</summary>
internal sealed record SetPolicyRequest(
    IReadOnlyList<string>? WhitelistEndorsers = null, IReadOnlyList<string>? BlacklistEndorsers = null,
    IReadOnlyList<string>? WhitelistImages = null, IReadOnlyList<string>? BlacklistImages = null,
    IReadOnlyList<string>? WhitelistChecksums = null, IReadOnlyList<string>? BlacklistChecksums = null);
/// <summary>Body of POST /policy/check.</summary>
internal sealed record PolicyCheckRequest(string Identifier);

internal static class PolicyEndpoints
{
    public static RouteGroupBuilder MapPolicyEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/policy").RequireAuthorization(Policies.Admin).WithTags("Policy");

        api.MapGet("", GetPolicy);
        api.MapPut("", SetPolicy);
        api.MapPost("/check", CheckImage);
        api.MapGet("/audit", ListAudit);
        return api;
    }

    static async Task<Ok<PolicyView>> GetPolicy(ClaimsPrincipal principal, IPolicyAdministration policy, CancellationToken ct) =>
        TypedResults.Ok(ToView(await policy.GetAsync(principal.ToCaller(), ct)));

    static async Task<Ok<PolicyView>> SetPolicy(SetPolicyRequest body, ClaimsPrincipal principal, IPolicyAdministration admin, CancellationToken ct) =>
        TypedResults.Ok(ToView(await admin.SetSiteListsAsync(principal.ToCaller(), new PolicyListSet(
            body.WhitelistEndorsers ?? [], body.BlacklistEndorsers ?? [], body.WhitelistImages ?? [], body.BlacklistImages ?? [],
            body.WhitelistChecksums ?? [], body.BlacklistChecksums ?? []), ct)));

    static async Task<Ok<PolicyDecision>> CheckImage(PolicyCheckRequest body, IImagePolicy policy, CancellationToken ct) =>
        TypedResults.Ok(await policy.EvaluateAsync(MarketplaceEndpoints.CheckIdentifier(body.Identifier ?? ""), ct));

    static async Task<Ok<IReadOnlyList<AuditRecord>>> ListAudit(ClaimsPrincipal principal, IPolicyAdministration policy, string? identifier, string? user, bool? accepted,
        DateTimeOffset? since, DateTimeOffset? until, int? limit, int? offset, CancellationToken ct)
    {
        var (l, o) = Paging.Of(limit, offset);
        return TypedResults.Ok<IReadOnlyList<AuditRecord>>((await policy.AuditAsync(principal.ToCaller(), new LaunchAuditQuery(identifier, user, accepted, since, until, l, o), ct))
            .Select(r => new AuditRecord(r.Id, r.At, r.Identifier, r.Sha1, r.Endorser, r.UserId, r.UserName, r.InstanceId, r.Accepted, r.Rule, r.Source, r.Reason)).ToList());
    }

    static PolicyView ToView(PolicyOverview o) => new(PolicyAdministration.ToLists(o.Config), PolicyAdministration.ToLists(o.Site),
        PolicyAdministration.ToLists(o.Effective), o.UpdatedAt, o.UpdatedBy, o.UrlImages, o.VolumeImages);
}
