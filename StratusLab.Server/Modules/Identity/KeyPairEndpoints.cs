using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Identity;

/// <summary>The caller's own SSH key pairs (public halves): a launch names one (keyName) or gets the default.</summary>
internal static class KeyPairEndpoints
{
    public static RouteGroupBuilder MapKeyPairEndpoints(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/api/v1/keys").RequireAuthorization().WithTags("Identity");
        keys.MapGet("", ListKeys);
        keys.MapGet("/{name}", GetKey);
        keys.MapPost("", ImportKey);
        keys.MapPost("/{name}/default", MakeDefault);
        keys.MapDelete("/{name}", DeleteKey);
        return keys;
    }

    static async Task<Ok<IReadOnlyList<KeyPair>>> ListKeys(ClaimsPrincipal principal, IKeyPairs keys, CancellationToken ct) =>
        TypedResults.Ok(await keys.ListAsync(principal.ToCaller(), ct));

    static async Task<Ok<KeyPair>> GetKey(string name, ClaimsPrincipal principal, IKeyPairs keys, CancellationToken ct) =>
        TypedResults.Ok(await keys.FindAsync(principal.ToCaller().UserId, name, ct) ?? throw Missing(name));

    static async Task<Created<KeyPair>> ImportKey(ImportKeyRequest body, ClaimsPrincipal principal, IKeyPairs keys, CancellationToken ct)
    {
        var key = await keys.ImportAsync(principal.ToCaller(), body.Name, body.PublicKey, body.Default, ct);
        return TypedResults.Created($"/api/v1/keys/{Uri.EscapeDataString(key.Name)}", key);
    }

    static async Task<Ok<KeyPair>> MakeDefault(string name, ClaimsPrincipal principal, IKeyPairs keys, CancellationToken ct) =>
        TypedResults.Ok(await keys.MakeDefaultAsync(principal.ToCaller(), name, ct));

    static async Task<NoContent> DeleteKey(string name, ClaimsPrincipal principal, IKeyPairs keys, CancellationToken ct)
    {
        await keys.DeleteAsync(principal.ToCaller(), name, ct);
        return TypedResults.NoContent();
    }

    static NotFoundException Missing(string name) => KeyPairService.Missing(name);
}
