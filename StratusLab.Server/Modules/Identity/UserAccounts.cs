using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Users, groups, tokens and quotas for the REST API and the dashboard (see <see cref="IUserAccounts"/>).</summary>
internal sealed class UserAccounts(IdentityStore store, IQuotaLedger quotas, IFreeSpaceGuard space, TimeProvider clock) : IUserAccounts
{
    public async Task<IReadOnlyList<UserAccount>> ListUsersAsync(Caller caller, int limit = 100, int offset = 0, CancellationToken ct = default)
    {
        var rows = caller.IsAdmin ? await store.ListUsersAsync(limit, offset) : [(await store.FindUserAsync(caller.UserId))!];
        var views = new List<UserAccount>();
        foreach (var row in rows) views.Add(await ViewAsync(store, row));
        return views;
    }

    public async Task<UserAccount> CreateUserAsync(Caller caller, NewUser user, CancellationToken ct = default)
    {
        RequireAdmin(caller, "create users");
        space.EnsureRoom("Creating a user");
        var name = Validate.Name(user.Name, "name");
        var role = ParseRole(user.Role ?? IdentityClaims.UserRole);
        if (user.Password is { } p) CheckPassword(p);
        var id = await store.Store.WriteAsync(async (c, tx) =>
        {
            if (await store.FindUserAsync(name, c, tx) is not null)
                throw new ConflictException($"A user named '{name}' already exists; choose another name.");
            var groupIds = await ResolveGroupsAsync(store, user.Groups, c, tx);
            var userId = await store.InsertUserAsync(c, tx, name, user.Password is null ? null : Secrets.HashPassword(user.Password), role,
                role == IdentityClaims.AdminRole ? 0 : 1);
            await store.SetGroupsAsync(c, tx, userId, groupIds);
            return userId;
        });
        return await ViewAsync(store, (await store.FindUserAsync(id))!);
    }

    public async Task<IReadOnlyList<GroupInfo>> ListGroupsAsync(int limit = 100, int offset = 0, CancellationToken ct = default) =>
        (await store.ListGroupsAsync(limit, offset)).Select(ToInfo).ToList();

    public async Task<GroupInfo> CreateGroupAsync(Caller caller, string name, CancellationToken ct = default)
    {
        RequireAdmin(caller, "create groups");
        name = Validate.Name(name, "name");
        var id = await store.Store.WriteAsync(async (c, tx) =>
        {
            if (await store.FindGroupAsync(name, c, tx) is not null)
                throw new ConflictException($"A group named '{name}' already exists.");
            return await store.InsertGroupAsync(c, tx, name);
        });
        return ToInfo((await store.FindGroupAsync(id))!);
    }

    public async Task<IReadOnlyList<TokenInfo>> ListTokensAsync(Caller caller, string? user = null, int limit = 100, int offset = 0, CancellationToken ct = default)
    {
        long? userId = caller.UserId;
        if (caller.IsAdmin)
            userId = user is null ? null : (await store.FindUserAsync(user) ?? throw new NotFoundException($"User '{user}'")).Id;
        else if (user is not null && !string.Equals(user, caller.Name, StringComparison.OrdinalIgnoreCase))
            throw new NotFoundException($"User '{user}'");
        var now = clock.GetUtcNow();
        return (await store.ListTokensAsync(userId, limit, offset)).Select(t => ToInfo(t, now)).ToList();
    }

    public async Task RevokeTokenAsync(Caller caller, string id, CancellationToken ct = default)
    {
        var token = await store.FindTokenAsync(id);
        if (token is null || (!caller.IsAdmin && token.UserId != caller.UserId)) throw new NotFoundException($"Token '{id}'");
        await store.RevokeTokenAsync(id);
    }

    public async Task<UserAccount> SetDisabledAsync(Caller caller, string user, bool disabled, CancellationToken ct = default)
    {
        RequireAdmin(caller, disabled ? "disable users" : "enable users");
        var row = await store.FindUserAsync(user) ?? throw new NotFoundException($"User '{user}'");
        if (disabled && row.Id == caller.UserId)
            throw new ConflictException("You cannot disable your own account; another administrator must do it.");
        if (disabled != row.DisabledAt is not null)
            await store.Store.WriteAsync((c, tx) => store.SetDisabledAsync(c, tx, row.Id, disabled ? clock.GetUtcNow() : null), ct);
        return await ViewAsync(store, (await store.FindUserAsync(row.Id))!);
    }

    public async Task<IReadOnlyList<QuotaView>> ListQuotasAsync(Caller caller, int limit = 100, int offset = 0, CancellationToken ct = default)
    {
        RequireAdmin(caller, "see every user's quota");
        var list = new List<QuotaView>();
        foreach (var user in await store.ListUsersAsync(limit, offset)) list.Add(await quotas.GetAsync(user.Id, ct));
        return list;
    }

    public async Task<QuotaView> SetQuotaAsync(Caller caller, string user, QuotaLimits limits, CancellationToken ct = default)
    {
        RequireAdmin(caller, "set quotas");
        var row = await store.FindUserAsync(user) ?? throw new NotFoundException($"User '{user}'");
        static void Check(long? value, string field)
        {
            if (value is < -1) throw new InvalidInputException(field, $"'{field}' = {value} is not accepted; give a limit >= 0, -1 for unlimited, or null for the site default.");
        }
        Check(limits.Vms, "vms"); Check(limits.Cpus, "cpus"); Check(limits.MemoryMiB, "memoryMiB"); Check(limits.StorageGiB, "storageGiB");
        await store.Store.WriteAsync((c, tx) => store.UpsertQuotaAsync(c, tx, row.Id, limits.Vms, limits.Cpus, limits.MemoryMiB, limits.StorageGiB));
        return await quotas.GetAsync(row.Id, ct);
    }

    static void RequireAdmin(Caller caller, string what)
    {
        if (!caller.IsAdmin) throw new ForbiddenException($"Only administrators may {what}; ask an administrator.");
    }

    internal static async Task<List<long>> ResolveGroupsAsync(IdentityStore store, IReadOnlyList<string>? names, System.Data.IDbConnection c, System.Data.IDbTransaction tx)
    {
        var ids = new List<long>();
        foreach (var name in names ?? [])
        {
            var group = await store.FindGroupAsync(name, c, tx)
                ?? throw new InvalidInputException("groups", $"Group '{name}' does not exist; create it first with POST /api/v1/groups.");
            ids.Add(group.Id);
        }
        return ids;
    }

    internal static string ParseRole(string role) => role switch
    {
        IdentityClaims.AdminRole or IdentityClaims.UserRole => role,
        _ => throw new InvalidInputException("role", $"'role' = '{Validate.Trim(role)}' is not accepted; accepted values: admin, user."),
    };

    internal static void CheckPassword(string password)
    {
        if (password.Length is < 8 or > 1024)
            throw new InvalidInputException("password", "'password' must be 8 to 1024 characters long.");
    }

    internal static async Task<UserAccount> ViewAsync(IdentityStore store, UserRow row)
    {
        var primary = await store.FindGroupAsync(row.PrimaryGroup);
        // A directory user given a local password by an admin is checked locally from then on (CredentialValidator).
        var synced = row.PasswordHash is null ? await store.LdapSyncedAtAsync(row.Id) : null;
        return new UserAccount(row.Id, row.Name, row.Role, primary?.Name ?? "", await store.GroupNamesOfAsync(row.Id), row.CreatedAt,
            synced is null ? UserSources.Local : UserSources.Ldap, synced, row.DisabledAt);
    }

    static GroupInfo ToInfo(GroupRow g) => new(g.Id, g.Name, g.CreatedAt);

    static TokenInfo ToInfo(TokenRow t, DateTimeOffset now) => new(t.Id, t.UserName, t.Name,
        t.RevokedAt is not null ? "revoked" : t.ExpiresAt is { } e && e <= now ? "expired" : "active",
        t.CreatedAt, t.ExpiresAt, t.RevokedAt);
}
