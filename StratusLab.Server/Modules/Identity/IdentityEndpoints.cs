using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Auth;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Identity;

internal static class IdentityEndpoints
{
    public static RouteGroupBuilder MapIdentityEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").RequireAuthorization().WithTags("Identity");

        api.MapPost("/users", CreateUser).RequireAuthorization(Policies.Admin);
        api.MapGet("/users", ListUsers);
        api.MapGet("/users/{name}", GetUser);
        api.MapPut("/users/{name}", UpdateUser);
        api.MapDelete("/users/{name}", DeleteUser).RequireAuthorization(Policies.Admin);
        api.MapPost("/users/{name}/disable", DisableUser).RequireAuthorization(Policies.Admin);
        api.MapPost("/users/{name}/enable", EnableUser).RequireAuthorization(Policies.Admin);

        api.MapPost("/users/{name}/access-keys", CreateAccessKey);
        api.MapGet("/users/{name}/access-keys", ListAccessKeys);
        api.MapDelete("/users/{name}/access-keys/{id}", DeleteAccessKey);

        api.MapPost("/groups", CreateGroup).RequireAuthorization(Policies.Admin);
        api.MapGet("/groups", ListGroups);
        api.MapDelete("/groups/{name}", DeleteGroup).RequireAuthorization(Policies.Admin);

        api.MapPost("/tokens", CreateToken);
        api.MapGet("/tokens", ListTokens);
        api.MapDelete("/tokens/{id}", RevokeToken);

        api.MapGet("/quotas", ListQuotas).RequireAuthorization(Policies.Admin);
        api.MapGet("/quotas/{user}", GetQuota);
        api.MapGet("/quota", GetOwnQuota);
        api.MapPost("/quotas/{user}", SetQuota).RequireAuthorization(Policies.Admin);
        api.MapPut("/quotas/{user}", SetQuota).RequireAuthorization(Policies.Admin);
        return api;
    }

    static async Task<Created<UserView>> CreateUser(CreateUserRequest body, ClaimsPrincipal principal, IUserAccounts accounts, CancellationToken ct)
    {
        var user = await accounts.CreateUserAsync(principal.ToCaller(), new NewUser(body.Name, body.Password, body.Role, body.Groups), ct);
        return TypedResults.Created($"/api/v1/users/{user.Name}", ToView(user));
    }

    static async Task<Ok<IReadOnlyList<UserView>>> ListUsers(ClaimsPrincipal principal, IUserAccounts accounts, int? limit, int? offset, CancellationToken ct)
    {
        var (l, o) = Paging.Of(limit, offset);
        return TypedResults.Ok<IReadOnlyList<UserView>>((await accounts.ListUsersAsync(principal.ToCaller(), l, o, ct)).Select(ToView).ToList());
    }

    static async Task<Ok<UserView>> GetUser(string name, ClaimsPrincipal principal, IdentityStore store)
    {
        var row = await VisibleUserAsync(name, principal.ToCaller(), store);
        return TypedResults.Ok(await ViewAsync(store, row));
    }

    static async Task<Ok<UserView>> UpdateUser(string name, UpdateUserRequest body, ClaimsPrincipal principal, IdentityStore store)
    {
        var caller = principal.ToCaller();
        var row = await VisibleUserAsync(name, caller, store);
        if (!caller.IsAdmin && (body.Role is not null || body.Groups is not null))
            throw new ForbiddenException("Only administrators may change a user's role or groups; you may change your own password.");
        var role = body.Role is null ? null : UserAccounts.ParseRole(body.Role);
        if (body.Password is { } p) UserAccounts.CheckPassword(p);
        await store.Store.WriteAsync(async (c, tx) =>
        {
            if (role == IdentityClaims.UserRole && row.Role == IdentityClaims.AdminRole && await store.CountAdminsAsync(c, tx) <= 1)
                throw new ConflictException($"'{row.Name}' is the last administrator; make another user admin first.");
            await store.UpdateUserAsync(c, tx, row.Id, body.Password is null ? null : Secrets.HashPassword(body.Password), role);
            if (body.Groups is not null) await store.SetGroupsAsync(c, tx, row.Id, await UserAccounts.ResolveGroupsAsync(store, body.Groups, c, tx));
        });
        return TypedResults.Ok(await ViewAsync(store, (await store.FindUserAsync(row.Id))!));
    }

    static async Task<NoContent> DeleteUser(string name, ClaimsPrincipal principal, IdentityStore store, IQuotaLedger quotas)
    {
        var caller = principal.ToCaller();
        var row = await store.FindUserAsync(name) ?? throw new NotFoundException($"User '{name}'");
        if (row.Id == caller.UserId) throw new ConflictException("You cannot delete yourself; another administrator must do it.");
        var usage = (await quotas.GetAsync(row.Id)).Usage;
        if (usage.Vms > 0 || usage.StorageGiB > 0)
            throw new ConflictException($"User '{name}' still has {usage.Vms} VM(s) and {usage.StorageGiB} GiB of storage; remove them first.");
        await store.Store.WriteAsync(async (c, tx) =>
        {
            if (row.Role == IdentityClaims.AdminRole && await store.CountAdminsAsync(c, tx) <= 1)
                throw new ConflictException($"'{name}' is the last administrator and cannot be deleted.");
            await store.DeleteUserAsync(c, tx, row.Id);
        });
        return TypedResults.NoContent();
    }

    static async Task<Ok<UserView>> DisableUser(string name, ClaimsPrincipal principal, IUserAccounts accounts, CancellationToken ct) =>
        TypedResults.Ok(ToView(await accounts.SetDisabledAsync(principal.ToCaller(), name, true, ct)));

    static async Task<Ok<UserView>> EnableUser(string name, ClaimsPrincipal principal, IUserAccounts accounts, CancellationToken ct) =>
        TypedResults.Ok(ToView(await accounts.SetDisabledAsync(principal.ToCaller(), name, false, ct)));

    static async Task<Created<AccessKeyCreated>> CreateAccessKey(string name, ClaimsPrincipal principal, IAccessKeys keys, CancellationToken ct)
    {
        var created = await keys.CreateAsync(principal.ToCaller(), name, ct);
        return TypedResults.Created($"/api/v1/users/{created.User}/access-keys/{created.AccessKeyId}", created);
    }

    static async Task<Ok<IReadOnlyList<AccessKeyView>>> ListAccessKeys(string name, ClaimsPrincipal principal, IAccessKeys keys, CancellationToken ct) =>
        TypedResults.Ok(await keys.ListAsync(principal.ToCaller(), name, ct));

    static async Task<NoContent> DeleteAccessKey(string name, string id, ClaimsPrincipal principal, IAccessKeys keys, CancellationToken ct)
    {
        await keys.DeleteAsync(principal.ToCaller(), name, id, ct);
        return TypedResults.NoContent();
    }

    static async Task<Created<GroupView>> CreateGroup(CreateGroupRequest body, ClaimsPrincipal principal, IUserAccounts accounts, CancellationToken ct)
    {
        var group = await accounts.CreateGroupAsync(principal.ToCaller(), body.Name, ct);
        return TypedResults.Created($"/api/v1/groups/{group.Name}", ToView(group));
    }

    static async Task<Ok<IReadOnlyList<GroupView>>> ListGroups(IUserAccounts accounts, int? limit, int? offset, CancellationToken ct)
    {
        var (l, o) = Paging.Of(limit, offset);
        return TypedResults.Ok<IReadOnlyList<GroupView>>((await accounts.ListGroupsAsync(l, o, ct)).Select(ToView).ToList());
    }

    static async Task<NoContent> DeleteGroup(string name, IdentityStore store)
    {
        var group = await store.FindGroupAsync(name) ?? throw new NotFoundException($"Group '{name}'");
        if (group.Id is 0 or 1) throw new ConflictException($"'{name}' is a built-in group and cannot be deleted.");
        await store.Store.WriteAsync(async (c, tx) =>
        {
            var members = await store.CountGroupUsersAsync(c, tx, group.Id);
            if (members > 0) throw new ConflictException($"Group '{name}' still has {members} member(s); remove them from it first.");
            await store.DeleteGroupAsync(c, tx, group.Id);
        });
        return TypedResults.NoContent();
    }

    static async Task<Created<TokenCreated>> CreateToken(CreateTokenRequest? body, ClaimsPrincipal principal, IdentityStore store,
        IdentityOptions options, TimeProvider clock)
    {
        body ??= new CreateTokenRequest();
        var caller = principal.ToCaller();
        var target = await store.FindUserAsync(caller.UserId);
        if (body.User is not null && !string.Equals(body.User, caller.Name, StringComparison.OrdinalIgnoreCase))
        {
            if (!caller.IsAdmin) throw new ForbiddenException("Only administrators may create tokens for other users.");
            target = await store.FindUserAsync(body.User) ?? throw new NotFoundException($"User '{body.User}'");
        }
        var now = clock.GetUtcNow();
        var expires = body.ExpiresAt;
        if (expires is { } e && e <= now)
            throw new InvalidInputException("expiresAt", $"'expiresAt' = {e:O} is in the past; give a future time or leave it out.");
        if (expires is null && options.DefaultTokenLifetimeDays > 0)
            expires = now.AddDays(options.DefaultTokenLifetimeDays);
        if (body.Name is { Length: > 100 }) throw new InvalidInputException("name", "'name' is longer than 100 characters.");
        var token = Secrets.NewToken();
        var id = Secrets.NewId();
        await store.InsertTokenAsync(id, target!.Id, TokenHash.Of(token), body.Name, expires);
        return TypedResults.Created($"/api/v1/tokens/{id}", new TokenCreated(id, token, target.Name, body.Name, now, expires));
    }

    static async Task<Ok<IReadOnlyList<TokenView>>> ListTokens(ClaimsPrincipal principal, IUserAccounts accounts, string? user, int? limit, int? offset, CancellationToken ct)
    {
        var (l, o) = Paging.Of(limit, offset);
        return TypedResults.Ok<IReadOnlyList<TokenView>>((await accounts.ListTokensAsync(principal.ToCaller(), user, l, o, ct))
            .Select(t => new TokenView(t.Id, t.User, t.Name, t.State, t.CreatedAt, t.ExpiresAt, t.RevokedAt)).ToList());
    }

    static async Task<NoContent> RevokeToken(string id, ClaimsPrincipal principal, IUserAccounts accounts, CancellationToken ct)
    {
        await accounts.RevokeTokenAsync(principal.ToCaller(), id, ct);
        return TypedResults.NoContent();
    }

    static async Task<Ok<IReadOnlyList<QuotaView>>> ListQuotas(ClaimsPrincipal principal, IUserAccounts accounts, int? limit, int? offset, CancellationToken ct)
    {
        var (l, o) = Paging.Of(limit, offset);
        return TypedResults.Ok(await accounts.ListQuotasAsync(principal.ToCaller(), l, o, ct));
    }

    static async Task<Ok<QuotaView>> GetQuota(string user, ClaimsPrincipal principal, IdentityStore store, IQuotaLedger quotas)
    {
        var row = await VisibleUserAsync(user, principal.ToCaller(), store);
        return TypedResults.Ok(await quotas.GetAsync(row.Id));
    }

    /// <summary>The caller's own quota and usage (a peer cloud's probe reads its headroom here without knowing its user name).</summary>
    static async Task<Ok<QuotaView>> GetOwnQuota(ClaimsPrincipal principal, IQuotaLedger quotas) =>
        TypedResults.Ok(await quotas.GetAsync(principal.ToCaller().UserId));

    static async Task<Ok<QuotaView>> SetQuota(string user, SetQuotaRequest body, ClaimsPrincipal principal, IUserAccounts accounts, CancellationToken ct) =>
        TypedResults.Ok(await accounts.SetQuotaAsync(principal.ToCaller(), user, new QuotaLimits(body.Vms, body.Cpus, body.MemoryMiB, body.StorageGiB), ct));

    static async Task<UserRow> VisibleUserAsync(string name, Caller caller, IdentityStore store)
    {
        var row = await store.FindUserAsync(name);
        if (row is null || (!caller.IsAdmin && row.Id != caller.UserId)) throw new NotFoundException($"User '{name}'");
        return row;
    }

    static async Task<UserView> ViewAsync(IdentityStore store, UserRow row) => ToView(await UserAccounts.ViewAsync(store, row));

    static UserView ToView(UserAccount u) => new(u.Id, u.Name, u.Role, u.PrimaryGroup, u.Groups, u.CreatedAt, u.Source, u.DirectorySyncedAt, u.DisabledAt);

    static GroupView ToView(GroupInfo g) => new(g.Id, g.Name, g.CreatedAt);
}
