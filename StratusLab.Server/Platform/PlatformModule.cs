using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Data.Sqlite;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Quartz;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Platform;

/// <summary>
/// The platform every module stands on: store, command runner, HTTP conventions, the auth pipeline, jobs, telemetry.
/// Who the users are and what roles mean is Identity's: its module registers the authentication scheme and the policies.
/// </summary>
public static class PlatformModule
{
    public static ServerOptions AddPlatform(this WebApplicationBuilder builder)
    {
        var options = ServerConfiguration.Bind(builder.Configuration);
        var services = builder.Services;
        DapperTypes.Register();
        // One background loop's failure (a VM, a tool, a peer) must never stop the server; each loop logs and goes on.
        services.Configure<HostOptions>(o => o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.Ignore);

        var urls = options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (GuestListener.UrlFor(options) is { } guestUrl) urls.Add(guestUrl);
        builder.WebHost.UseUrls([.. urls]);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.Http.MaxRequestBodyBytes;
            k.AddServerHeader = false;
            // Read when the https endpoints bind, after the data dir exists (the self-signed certificate lives there).
            if (ServerTls.Wanted(options.Urls))
                k.ConfigureHttpsDefaults(h => h.ServerCertificate = k.ApplicationServices.GetRequiredService<ServerTls>().Certificate);
        });

        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new Store(options.DatabasePath, options.Store.BusyTimeoutMs));
        services.AddSingleton<ICommandRunner, CommandRunner>();
        services.AddSingleton<SshTransport>();
        services.AddSingleton<DiskSpace>();
        services.AddSingleton<Contracts.IFreeSpaceGuard>(sp => sp.GetRequiredService<DiskSpace>());
        services.AddSingleton<GuestApiAddress>();
        services.AddSingleton<Security.SecretBox>();
        services.AddSingleton<ServerTls>();

        services.ConfigureHttpJsonOptions(j => ConfigureJson(j.SerializerOptions));
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddErrorHandling();

        // One line per event, stamped in UTC; configures the console provider the host already has (tests replace it).
        // The formatter is named: without a name the provider overwrites these options with its own deprecated ones.
        services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.FormatterName = Microsoft.Extensions.Logging.Console.ConsoleFormatterNames.Simple);
        services.Configure<Microsoft.Extensions.Logging.Console.SimpleConsoleFormatterOptions>(o =>
        {
            o.SingleLine = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        });

        services.AddOpenApi("v1", o => o.AddDocumentTransformer(OpenApiSecurity.Describe));

        AddTelemetry(services, options);
        return options;
    }

    public static void ConfigureJson(JsonSerializerOptions json)
    {
        json.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        json.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        json.RespectNullableAnnotations = true;
        json.RespectRequiredConstructorParameters = true;
        json.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        json.Converters.Add(new UtcTimeConverter());
        json.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
    }

    static void AddTelemetry(IServiceCollection services, ServerOptions options)
    {
        var serverMeter = new Telemetry.ServerMeter();
        services.AddSingleton(_ => serverMeter); // made by a factory, so the container disposes it
        var otel = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("stratuslab", serviceVersion: typeof(PlatformModule).Assembly.GetName().Version?.ToString()))
            .WithMetrics(m =>
            {
                m.AddMeter(Telemetry.Telemetry.Name)
                    .AddView(instrument => serverMeter.IsForeign(instrument) ? MetricStreamConfiguration.Drop : null)
                    .AddAspNetCoreInstrumentation().AddRuntimeInstrumentation().AddPrometheusExporter();
                if (options.Telemetry.OtlpEndpoint.Length > 0) m.AddOtlpExporter(o => o.Endpoint = new Uri(options.Telemetry.OtlpEndpoint));
            })
            .WithTracing(t =>
            {
                t.AddSource(Telemetry.Telemetry.Name).AddAspNetCoreInstrumentation(o =>
                    o.Filter = http => !http.Request.Path.StartsWithSegments("/metrics"));
                if (options.Telemetry.OtlpEndpoint.Length > 0) t.AddOtlpExporter(o => o.Endpoint = new Uri(options.Telemetry.OtlpEndpoint));
            });
    }

    /// <summary>Quartz with its job store in the same SQLite file; each module adds its jobs.</summary>
    public static void AddJobs(this WebApplicationBuilder builder, ServerOptions options, params Action<IQuartzBuilder>[] modules)
    {
        builder.Services.AddQuartz(q =>
        {
            q.ConfigureScheduler(s =>
            {
                // Quartz keeps schedulers in a process-wide registry by name; one name per data dir keeps test servers apart.
                s.InstanceName = "stratuslab-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
                    System.Text.Encoding.UTF8.GetBytes(options.DatabasePath)))[..12];
                s.InstanceId = "local";
            });
            q.UsePersistentStore(s =>
            {
                s.UseSqlite(SqliteFactory.Instance, Store.BuildConnectionString(options.DatabasePath, options.Store.BusyTimeoutMs));
                s.UseSystemTextJsonSerializer();
                s.ProvisionSchema();
            });
            foreach (var configure in modules) configure(q);
        });
        builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
    }

    public static WebApplication UsePlatform(this WebApplication app)
    {
        app.UseMiddleware<RequestLogging>();
        app.UseErrorHandling();
        var options = app.Services.GetRequiredService<ServerOptions>();
        app.UseGuestListener(options);
        AnnounceListeners(app, options);
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapOpenApi("/openapi/{documentName}.json");
        app.UseSwaggerUI(o =>
        {
            o.RoutePrefix = "docs";
            o.SwaggerEndpoint("/openapi/v1.json", "StratusLab Server v1");
            o.DocumentTitle = "StratusLab Server API";
        });
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/health", Health).WithTags("Platform").AllowAnonymous();
        return app;
    }

    /// <summary>Warns about plain HTTP off the loopback; with TLS, prints the certificate's fingerprint once the server listens.</summary>
    static void AnnounceListeners(WebApplication app, ServerOptions options)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("StratusLab.Server.Listeners");
        foreach (var url in GuestListener.PlainHttpOffLoopback(options.Urls))
            logger.LogWarning("Serving plain HTTP on {Url}, which is not a loopback address: tokens and passwords cross the network in clear text. "
                + "Serve https instead (--urls https://...; a self-signed certificate is made on first start, or set Tls:CertificateFile and Tls:KeyFile)", url);
        if (!ServerTls.Wanted(options.Urls)) return;
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var tls = app.Services.GetRequiredService<ServerTls>();
            Console.WriteLine($"TLS certificate {tls.CertificatePath}, SHA-256 fingerprint {tls.Fingerprint}");
            Console.WriteLine($"  clients: stratuslab --ca-file {tls.CertificatePath} ..., or --accept-fingerprint {tls.Fingerprint} (pinned on first use)");
            if (GuestListener.UrlFor(options) is not null)
                logger.LogInformation("Guests reach the guest API over plain HTTP on {Url} (guest API only)", app.Services.GetRequiredService<GuestApiAddress>().Url);
        });
    }

    /// <summary>
    /// ok (200) when everything is usable; degraded (200, with problems) when the server serves but refuses new work that
    /// writes (the data dir's filesystem is below its free-space floor, or a write failed for lack of space and still would);
    /// unhealthy (503) when the store or a module is not usable. The disk member says where the data dir is and how much is free.
    /// </summary>
    static async Task<IResult> Health(Store store, DiskSpace disk, IEnumerable<IHealthContributor> contributors, CancellationToken ct)
    {
        var problems = new List<string>();
        try
        {
            await using var c = await store.OpenAsync(ct);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT 1";
            await cmd.ExecuteScalarAsync(ct);
        }
        catch (Exception e) { problems.Add("store: " + e.Message); }
        foreach (var contributor in contributors)
            problems.AddRange(await contributor.CheckAsync(ct));
        var (space, diskProblems) = disk.Check();
        var report = new
        {
            dataDir = space.DataDir, filesystem = space.Filesystem, freeBytes = space.FreeBytes, totalBytes = space.TotalBytes,
            minFreeBytes = space.MinFreeBytes, lastWriteFailedAt = space.LastWriteFailedAt, lastWriteError = space.LastWriteError,
        };
        if (problems.Count > 0)
            return Results.Json(new { status = "unhealthy", problems = problems.Concat(diskProblems).ToList(), disk = report }, statusCode: 503);
        return diskProblems.Count == 0
            ? Results.Ok(new { status = "ok", disk = report })
            : Results.Ok(new { status = "degraded", problems = diskProblems, disk = report });
    }
}

/// <summary>Times go out as ISO-8601 UTC with a 'Z'.</summary>
public sealed class UtcTimeConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(DapperTypes.Format(value));
}

/// <summary>A module's say in GET /health: the problems it sees (none when usable).</summary>
public interface IHealthContributor
{
    Task<IReadOnlyList<string>> CheckAsync(CancellationToken ct);
}
