using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace StratusLab.Server.Platform.Http;

/// <summary>
/// The OpenAPI document's title and its bearer security scheme, so /docs has an Authorize button and "Try it out" sends
/// the token. The description is Markdown: the header is a code span, or the UI would eat "&lt;token&gt;" as HTML.
/// </summary>
internal static class OpenApiSecurity
{
    public const string SchemeName = "bearer";

    public static Task Describe(OpenApiDocument doc, OpenApiDocumentTransformerContext context, CancellationToken ct)
    {
        doc.Info.Title = "StratusLab Server API";
        doc.Info.Description = "A private IaaS cloud in one binary. Authenticate with `Authorization: Bearer <token>`: "
            + "press **Authorize** and paste a token (the admin's is in `<data-dir>/admin.token`; others come from `POST /api/v1/tokens`).";
        doc.Components ??= new OpenApiComponents();
        doc.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        doc.Components.SecuritySchemes[SchemeName] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            Description = "An API token: `stratuslab token-create`, or the admin token the server wrote at first start.",
        };
        doc.Security ??= [];
        doc.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(SchemeName, doc)] = [] });
        return Task.CompletedTask;
    }
}
