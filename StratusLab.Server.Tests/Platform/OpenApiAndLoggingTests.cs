using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

/// <summary>The /docs Authorize button (a bearer security scheme) and the request log's levels.</summary>
public class OpenApiAndLoggingTests
{
    [Test, CancelAfter(120_000)]
    public async Task The_openapi_document_declares_a_bearer_scheme_for_every_operation_and_its_text_survives_html()
    {
        await using var server = await TestServer.StartAsync();
        using var anonymous = server.Client(token: null);
        var doc = await (await anonymous.GetAsync("/openapi/v1.json")).Json(200);
        var scheme = doc["components"]!["securitySchemes"]!["bearer"]!;
        Assert.That(scheme["type"]!.GetValue<string>(), Is.EqualTo("http"));
        Assert.That(scheme["scheme"]!.GetValue<string>(), Is.EqualTo("bearer"));
        Assert.That(doc["security"]!.AsArray().Any(r => r!.AsObject().ContainsKey("bearer")), Is.True, doc["security"]?.ToJsonString());
        // Markdown: in a code span the angle brackets are shown, not parsed as an HTML tag (which made it "Bearer .").
        Assert.That(doc["info"]!["description"]!.GetValue<string>(), Does.Contain("`Authorization: Bearer <token>`"));
    }

    [Test, CancelAfter(120_000)]
    public async Task Guest_api_requests_are_logged_at_debug_and_api_requests_at_information()
    {
        var lines = new ConcurrentQueue<(LogLevel Level, string Text)>();
        await using var server = await TestServer.StartAsync(configure: b =>
        {
            b.Logging.AddProvider(new Capture(lines));
            b.Logging.AddFilter<Capture>("StratusLab.Server.Platform.Http.RequestLogging", LogLevel.Debug);
        });
        using var admin = server.Client();
        await (await admin.GetAsync("/api/v1/instances")).Json(200);
        using var guest = server.Client(token: "not-a-guest-token");
        Assert.That((int)(await guest.GetAsync("/guest/v1/context")).StatusCode, Is.EqualTo(401));
        await Task.Delay(200);
        Assert.That(lines.Where(l => l.Text.StartsWith("GET /api/v1/instances ")).Select(l => l.Level), Is.EqualTo(new[] { LogLevel.Information }));
        Assert.That(lines.Where(l => l.Text.StartsWith("GET /guest/v1/context ")).Select(l => l.Level), Is.EqualTo(new[] { LogLevel.Debug }));
    }

    [Test]
    public void The_console_log_stamps_every_line_with_a_utc_timestamp()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["DataDir"] = TempDir.Create("log") });
        StratusLab.Server.Platform.PlatformModule.AddPlatform(builder);
        using var provider = builder.Services.BuildServiceProvider();
        var options = provider.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Microsoft.Extensions.Logging.Console.SimpleConsoleFormatterOptions>>().CurrentValue;
        // Without a formatter name the console provider replaces the formatter's options with its deprecated ones.
        Assert.That(provider.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>>().CurrentValue.FormatterName,
            Is.EqualTo("simple"));
        Assert.That(options.UseUtcTimestamp, Is.True);
        Assert.That(options.SingleLine, Is.True);
        Assert.That(DateTimeOffset.UtcNow.ToString(options.TimestampFormat), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z $"));
    }

    sealed class Capture(ConcurrentQueue<(LogLevel, string)> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, lines);
        public void Dispose() { }

        sealed class Logger(string category, ConcurrentQueue<(LogLevel, string)> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (category.EndsWith("RequestLogging", StringComparison.Ordinal)) lines.Enqueue((logLevel, formatter(state, exception)));
            }
        }
    }
}
