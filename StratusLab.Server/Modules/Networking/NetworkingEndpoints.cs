using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Ranges;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Networking;

internal static class NetworkingEndpoints
{
    public static RouteGroupBuilder MapNetworkingEndpoints(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1").RequireAuthorization().WithTags("Networking");

        api.MapPost("/networks", CreateNetwork);
        api.MapGet("/networks", ListNetworks);
        api.MapGet("/networks/{network}", GetNetwork);
        api.MapDelete("/networks/{network}", DeleteNetwork);
        api.MapGet("/networks/{network}/leases", ListLeases);
        api.MapPost("/networks/{network}/hold", HoldAddress);
        api.MapPost("/networks/{network}/release", ReleaseAddress);

        api.MapPost("/security-groups", CreateSecurityGroup);
        api.MapGet("/security-groups", ListSecurityGroups);
        api.MapGet("/security-groups/{name}", GetSecurityGroup);
        api.MapDelete("/security-groups/{name}", DeleteSecurityGroup);
        api.MapPost("/security-groups/{name}/rules", AddSecurityRule);
        api.MapDelete("/security-groups/{name}/rules/{id:long}", DeleteSecurityRule);
        return api;
    }

    static async Task<Created<NetworkView>> CreateNetwork(CreateNetworkRequest body, ClaimsPrincipal principal, NetworkRequests requests, NetworkingStore store, IUserDirectory users)
    {
        var id = await requests.CreateAsync(body, principal.ToCaller());
        var row = (await store.GetNetworkAsync(id))!;
        return TypedResults.Created($"/api/v1/networks/{row.Name}", (await ViewAsync([row], store, users))[0]);
    }

    static async Task<Ok<IReadOnlyList<NetworkView>>> ListNetworks(ClaimsPrincipal principal, NetworkRequests requests, NetworkingStore store, IUserDirectory users, int? limit, int? offset)
    {
        var (l, o) = Paging.Of(limit, offset);
        var rows = (await requests.VisibleAsync(principal.ToCaller())).Skip(o).Take(l).ToList();
        return TypedResults.Ok(await ViewAsync(rows, store, users));
    }

    static async Task<Ok<NetworkView>> GetNetwork(string network, ClaimsPrincipal principal, NetworkingStore store, IUserDirectory users) =>
        TypedResults.Ok((await ViewAsync([await VisibleAsync(network, principal.ToCaller(), store)], store, users))[0]);

    static async Task<NoContent> DeleteNetwork(string network, ClaimsPrincipal principal, NetworkingStore store, NetworkRequests requests)
    {
        var caller = principal.ToCaller();
        await requests.DeleteAsync(await VisibleAsync(network, caller, store), caller);
        return TypedResults.NoContent();
    }

    static async Task<Ok<IReadOnlyList<LeaseView>>> ListLeases(string network, ClaimsPrincipal principal, INetworks networks, string? state, int? limit, int? offset,
        CancellationToken ct)
    {
        var (l, o) = Paging.Of(limit, offset);
        return TypedResults.Ok(await networks.LeasesAsync(principal.ToCaller(), network, state, l, o, ct));
    }

    static async Task<Ok<LeaseView>> HoldAddress(string network, AddressRequest body, ClaimsPrincipal principal, INetworks networks, CancellationToken ct) =>
        TypedResults.Ok(await networks.HoldAsync(principal.ToCaller(), network, body.Ip, ct));

    static async Task<NoContent> ReleaseAddress(string network, AddressRequest body, ClaimsPrincipal principal, INetworks networks, CancellationToken ct)
    {
        await networks.ReleaseAsync(principal.ToCaller(), network, body.Ip, ct);
        return TypedResults.NoContent();
    }

    static async Task<Created<SecurityGroupView>> CreateSecurityGroup(CreateSecurityGroupRequest body, ClaimsPrincipal principal, ISecurityGroups groups, CancellationToken ct)
    {
        var created = await groups.CreateAsync(body.Name, body.Description, (body.Rules ?? []).Select(ToSpec).ToList(), principal.ToCaller(), ct);
        return TypedResults.Created($"/api/v1/security-groups/{created.Name}", ToView(created));
    }

    static async Task<Ok<IReadOnlyList<SecurityGroupView>>> ListSecurityGroups(ClaimsPrincipal principal, ISecurityGroups groups, CancellationToken ct) =>
        TypedResults.Ok<IReadOnlyList<SecurityGroupView>>((await groups.ListAsync(principal.ToCaller(), ct)).Select(ToView).ToList());

    static async Task<Ok<SecurityGroupView>> GetSecurityGroup(string name, ClaimsPrincipal principal, ISecurityGroups groups, CancellationToken ct) =>
        TypedResults.Ok(ToView(await groups.GetAsync(name, principal.ToCaller(), ct)));

    static async Task<NoContent> DeleteSecurityGroup(string name, ClaimsPrincipal principal, ISecurityGroups groups, CancellationToken ct)
    {
        await groups.DeleteAsync(name, principal.ToCaller(), ct);
        return TypedResults.NoContent();
    }

    static async Task<Created<SecurityRuleView>> AddSecurityRule(string name, SecurityRuleRequest body, ClaimsPrincipal principal, ISecurityGroups groups, CancellationToken ct)
    {
        var rule = (await groups.AddRulesAsync(name, [ToSpec(body)], principal.ToCaller(), ct))[0];
        return TypedResults.Created($"/api/v1/security-groups/{name}/rules/{rule.Id}", ToView(rule));
    }

    static async Task<NoContent> DeleteSecurityRule(string name, long id, ClaimsPrincipal principal, ISecurityGroups groups, CancellationToken ct)
    {
        await groups.RemoveRulesAsync(name, [id], principal.ToCaller(), ct);
        return TypedResults.NoContent();
    }

    static async Task<NetworkRow> VisibleAsync(string idOrName, Caller caller, NetworkingStore store)
    {
        var row = await store.FindNetworkAsync(idOrName);
        if (row is null || !AccessRules.CanSee(caller, InstanceNetworking.OwnershipOf(row))) throw ApiException.NotFound($"Network '{Validate.Trim(idOrName)}'");
        return row;
    }

    static async Task<IReadOnlyList<NetworkView>> ViewAsync(IReadOnlyList<NetworkRow> rows, NetworkingStore store, IUserDirectory users)
    {
        var counts = await store.CountLeasesAsync();
        var list = new List<NetworkView>();
        foreach (var n in rows)
        {
            var ranges = await store.RangesAsync(n.Id);
            var size = ranges.Sum(r => r.Last - r.First + 1);
            var (used, held) = counts.GetValueOrDefault(n.Id);
            list.Add(new NetworkView(n.Id, n.Name, n.Kind, n.Driver, await OwnerNameAsync(n.OwnerId, users), n.Subnet.ToString(), n.Subnet.MaskText,
                ranges.Select(r => new AddressRangeView(Ipv4.Format((uint)r.First), Ipv4.Format((uint)r.Last), r.Last - r.First + 1)).ToList(),
                n.Gateway, InstanceNetworking.DnsOf(n), n.Mtu, n.VlanId, n.Uplink, n.Driver == "bridge" ? BridgeNetworkDriver.BridgeName(n.Id) : null,
                await store.SecurityGroupNamesAsync(n.Id), size, used, held, size - used - held, n.CreatedAt));
        }
        return list;
    }

    static SecurityRuleSpec ToSpec(SecurityRuleRequest r) => new(r.Direction, r.Protocol, r.Ports, r.Cidr, r.Action);

    static SecurityGroupView ToView(SecurityGroupInfo g) =>
        new(g.Id, g.Name, g.Owner, g.Description, g.Rules.Select(ToView).ToList(), g.Networks, g.CreatedAt);

    static SecurityRuleView ToView(SecurityRuleInfo r) =>
        new(r.Id, r.Direction, r.Action, r.Protocol, r.PortFirst is null ? null : r.PortFirst == r.PortLast ? $"{r.PortFirst}" : $"{r.PortFirst}-{r.PortLast}", r.Cidr);

    static async Task<string> OwnerNameAsync(long ownerId, IUserDirectory users) =>
        ownerId == 0 ? "site" : (await users.FindAsync(ownerId))?.Name ?? $"#{ownerId}";
}
