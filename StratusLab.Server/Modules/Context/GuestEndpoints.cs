using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http.HttpResults;
using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Context;

/// <summary>What GET /guest/v1/context returns to a guest.</summary>
internal sealed record GuestContextView(long InstanceId, string Hostname, IReadOnlyDictionary<string, string> Context);

/// <summary>The guest API: authenticated by the per-VM token from the context CD and nothing else.</summary>
internal static class GuestEndpoints
{
    public static RouteGroupBuilder MapGuestEndpoints(this IEndpointRouteBuilder app)
    {
        var guest = app.MapGroup("/guest/v1").AllowAnonymous().WithTags("Guest");
        guest.MapGet("/context", GetContext);
        guest.MapPut("/ready", ReportReady);
        guest.MapPost("/ready", ReportReady);
        // PUT/POST /metrics (guest KPIs) belong to Monitoring, which stores them.
        // cloud-init's phone_home posts a form and cannot send headers, so its URL carries the guest token.
        guest.MapPost("/phone-home/{token}", PhoneHome).DisableAntiforgery();
        return guest;
    }

    static async Task<Ok<GuestContextView>> GetContext(HttpContext http, IGuestInstances instances)
    {
        var instance = await AuthenticateAsync(http, instances);
        return TypedResults.Ok(new GuestContextView(instance.InstanceId, instance.Hostname, instance.Context));
    }

    static async Task<NoContent> ReportReady(HttpContext http, IGuestInstances instances)
    {
        var instance = await AuthenticateAsync(http, instances);
        await instances.MarkReadyAsync(instance.InstanceId);
        return TypedResults.NoContent();
    }

    /// <summary>cloud-init's phone_home (its vendor-data on a NoCloud seed points here): the guest finished booting. The form's fields are not needed.</summary>
    static async Task<NoContent> PhoneHome(string token, IGuestInstances instances)
    {
        var instance = await instances.FindByGuestTokenAsync(token)
            ?? throw new ApiException(401, "This phone_home URL's guest token is unknown, or its instance has ended.", title: "Unauthorized");
        await instances.MarkReadyAsync(instance.InstanceId, "phone-home");
        return TypedResults.NoContent();
    }

    static async Task<GuestInstance> AuthenticateAsync(HttpContext http, IGuestInstances instances)
    {
        string? header = http.Request.Headers.Authorization;
        if (AuthenticationHeaderValue.TryParse(header, out var value) && value.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)
            && value.Parameter is { } token && await instances.FindByGuestTokenAsync(token) is { } instance)
            return instance;
        throw new ApiException(401, "The guest API needs the per-VM token from the context CD (STRATUSLAB_TOKEN) as 'Authorization: Bearer <token>'; this one is missing, unknown, or its instance has ended.",
            title: "Unauthorized");
    }
}
