using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Body of POST /api/v1/keys: import a public key under a name; <c>default</c> makes it the key requests get when they name none.</summary>
internal sealed record ImportKeyRequest(string Name, string PublicKey, bool Default = false);

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

    static async Task<Ok<IReadOnlyList<KeyPair>>> ListKeys(ClaimsPrincipal principal, KeyPairStore store) =>
        TypedResults.Ok(await store.ListAsync(principal.ToCaller().UserId));

    static async Task<Ok<KeyPair>> GetKey(string name, ClaimsPrincipal principal, KeyPairStore store) =>
        TypedResults.Ok(await store.FindAsync(principal.ToCaller().UserId, name) ?? throw Missing(name));

    static async Task<Created<KeyPair>> ImportKey(ImportKeyRequest body, ClaimsPrincipal principal, KeyPairStore store)
    {
        var caller = principal.ToCaller();
        var name = Validate.Name(body.Name, "name");
        if (string.IsNullOrWhiteSpace(body.PublicKey))
            throw new InvalidInputException("publicKey", "'publicKey' is missing; give the contents of a .pub file (ssh-keygen -t ed25519 makes one).");
        if (body.PublicKey.Length > 16 * 1024)
            throw new InvalidInputException("publicKey", "'publicKey' is longer than 16 KiB; give one OpenSSH public key line.");
        var parsed = SshPublicKeys.Parse(body.PublicKey, out var error)
            ?? throw new InvalidInputException("publicKey", $"'publicKey' is not an OpenSSH public key: {error}.");
        if (!await store.InsertAsync(caller.UserId, name, parsed.Line, parsed.Fingerprint, "imported", body.Default))
            throw new ConflictException($"You already have a key named '{name}'; delete it first (DELETE /api/v1/keys/{name}) or choose another name.");
        var key = (await store.FindAsync(caller.UserId, name))!;
        return TypedResults.Created($"/api/v1/keys/{Uri.EscapeDataString(name)}", key);
    }

    static async Task<Ok<KeyPair>> MakeDefault(string name, ClaimsPrincipal principal, KeyPairStore store)
    {
        var userId = principal.ToCaller().UserId;
        if (!await store.SetDefaultAsync(userId, name)) throw Missing(name);
        return TypedResults.Ok((await store.FindAsync(userId, name))!);
    }

    static async Task<NoContent> DeleteKey(string name, ClaimsPrincipal principal, KeyPairStore store)
    {
        if (!await store.DeleteAsync(principal.ToCaller().UserId, name)) throw Missing(name);
        return TypedResults.NoContent();
    }

    static NotFoundException Missing(string name) =>
        new($"Key '{Validate.Trim(name)}' (list yours with GET /api/v1/keys or 'stratuslab describe-keys')");
}
