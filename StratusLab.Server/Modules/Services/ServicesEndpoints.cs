using System.Net.Http.Headers;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Modules.Services.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Services;

/// <summary>REST /api/v1/services (owner or admin) and the guest API's GET /guest/v1/service (a member's view of its service).</summary>
internal static class ServicesEndpoints
{
    public static RouteGroupBuilder Map(IEndpointRouteBuilder app)
    {
        var guest = app.MapGroup("/guest/v1").AllowAnonymous().WithTags("Guest");
        guest.MapGet("/service", GetGuestService);

        var api = app.MapGroup("/api/v1/services").RequireAuthorization().WithTags("Services");
        api.MapPost("/", CreateService);
        api.MapPost("/", CreateServiceFromYaml).Accepts<string>("application/yaml", "application/x-yaml", "text/yaml");
        api.MapGet("/", ListServices);
        api.MapGet("/{id:long}", GetService);
        api.MapGet("/{id:long}/decisions", ListDecisions);
        api.MapPost("/{id:long}/scale", ScaleService);
        api.MapDelete("/{id:long}", DeleteService);
        return api;
    }

    static async Task<Created<ServiceView>> CreateService(ServiceTemplate body, ClaimsPrincipal principal, IServices services, CancellationToken ct)
    {
        var view = await services.CreateAsync(principal.ToCaller(), body, ct);
        return TypedResults.Created($"/api/v1/services/{view.Id}", view);
    }

    /// <summary>The same template in YAML: the same validation, and a rejection names the field's line and column.</summary>
    static async Task<Created<ServiceView>> CreateServiceFromYaml(HttpRequest request, ClaimsPrincipal principal, IServices services, CancellationToken ct)
    {
        if (request.ContentLength > MaxYamlBytes)
            throw new ApiException(413, $"The YAML template is larger than {MaxYamlBytes / 1024} KiB; send a smaller one.", title: "Content Too Large");
        using var reader = new StreamReader(request.Body, System.Text.Encoding.UTF8);
        var buffer = new char[MaxYamlBytes + 1];
        var read = await reader.ReadBlockAsync(buffer, ct);
        if (read > MaxYamlBytes)
            throw new ApiException(413, $"The YAML template is larger than {MaxYamlBytes / 1024} KiB; send a smaller one.", title: "Content Too Large");
        var yaml = TemplateYaml.Parse(new string(buffer, 0, read));
        ServiceView view;
        try { view = await services.CreateAsync(principal.ToCaller(), yaml.Template, ct); }
        catch (Platform.Contracts.InvalidInputException e) { throw yaml.WithPosition(e); }
        return TypedResults.Created($"/api/v1/services/{view.Id}", view);
    }

    const int MaxYamlBytes = 256 * 1024;

    static async Task<Ok<IReadOnlyList<ServiceView>>> ListServices(ClaimsPrincipal principal, IServices services, CancellationToken ct) =>
        TypedResults.Ok(await services.ListAsync(principal.ToCaller(), ct));

    static async Task<Ok<ServiceView>> GetService(long id, ClaimsPrincipal principal, IServices services, CancellationToken ct) =>
        TypedResults.Ok(await services.GetAsync(principal.ToCaller(), id, ct));

    static async Task<Ok<IReadOnlyList<DecisionView>>> ListDecisions(long id, ClaimsPrincipal principal, IServices services, CancellationToken ct) =>
        TypedResults.Ok((await services.GetAsync(principal.ToCaller(), id, ct)).Decisions);

    static async Task<Ok<ServiceView>> ScaleService(long id, ScaleRequest body, ClaimsPrincipal principal, IServices services, CancellationToken ct) =>
        TypedResults.Ok(await services.ScaleAsync(principal.ToCaller(), id, body, ct));

    static async Task<Ok<ServiceView>> DeleteService(long id, ClaimsPrincipal principal, IServices services, CancellationToken ct) =>
        TypedResults.Ok(await services.DeleteAsync(principal.ToCaller(), id, ct));

    static async Task<Ok<GuestServiceView>> GetGuestService(HttpContext http, IGuestInstances instances, ServiceManager manager, CancellationToken ct)
    {
        string? header = http.Request.Headers.Authorization;
        if (!(AuthenticationHeaderValue.TryParse(header, out var value) && value.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)
            && value.Parameter is { } token && await instances.FindByGuestTokenAsync(token, ct) is { } instance))
            throw new ApiException(401, "The guest API needs the per-VM token from the context CD (STRATUSLAB_TOKEN) as 'Authorization: Bearer <token>'; this one is missing, unknown, or its instance has ended.",
                title: "Unauthorized");
        var view = await manager.GuestViewAsync(instance.InstanceId, ct)
            ?? throw new Platform.Contracts.NotFoundException($"A service of instance {instance.InstanceId} (it is no member of a live service)");
        return TypedResults.Ok(view);
    }
}
