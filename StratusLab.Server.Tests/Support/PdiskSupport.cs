using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Abstractions;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Tests.Support;

/// <summary>Wraps the real command runner: records every command and lets a test answer or fail chosen ones.</summary>
public sealed class InterceptingCommandRunner(Func<ToolCommand, ToolResult?> intercept) : ICommandRunner
{
    readonly CommandRunner _real = new(NullLogger<CommandRunner>.Instance);
    readonly List<ToolCommand> _commands = [];

    public IReadOnlyList<string> Lines { get { lock (_commands) return _commands.Select(c => c.ToString()).ToList(); } }

    public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken ct = default)
    {
        lock (_commands) _commands.Add(command);
        if (intercept(command) is { } answer)
        {
            if (answer.ExitCode != 0 && !command.AcceptedExitCodes.Contains(answer.ExitCode))
                throw new ToolFailedException(command, answer.ExitCode, answer.StandardError);
            return Task.FromResult(answer);
        }
        return _real.RunAsync(command, ct);
    }

    public static ToolResult Fails(string stderr) => new(1, "", stderr, TimeSpan.Zero);
    public static ToolResult Prints(string stdout) => new(0, stdout, "", TimeSpan.Zero);
}

/// <summary>Replaces services after every module registered its own (TestServer's hook runs before them).</summary>
public static class ServiceOverrides
{
    public static void Override(this WebApplicationBuilder builder, Action<IServiceCollection> replace) =>
        builder.Host.UseServiceProviderFactory(new OverridingFactory(replace));

    /// <summary>Uses <paramref name="runner"/> as the server's only command runner.</summary>
    public static void UseCommandRunner(this WebApplicationBuilder builder, ICommandRunner runner) =>
        builder.Override(s =>
        {
            s.RemoveAll<ICommandRunner>();
            s.AddSingleton(runner);
        });

    sealed class OverridingFactory(Action<IServiceCollection> replace) : IServiceProviderFactory<IServiceCollection>
    {
        public IServiceCollection CreateBuilder(IServiceCollection services)
        {
            replace(services);
            return services;
        }

        public IServiceProvider CreateServiceProvider(IServiceCollection containerBuilder) => containerBuilder.BuildServiceProvider();
    }
}

/// <summary>A throwaway HTTP server on 127.0.0.1 that serves files by name (for volumes made from URLs).</summary>
public sealed class FileHttpServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly Dictionary<string, byte[]> _files = new();
    public Uri BaseAddress { get; }

    FileHttpServer(WebApplication app)
    {
        _app = app;
        BaseAddress = new Uri(app.Urls.First());
    }

    public static async Task<FileHttpServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        FileHttpServer? server = null;
        app.MapGet("/{name}", (string name) =>
            server!._files.TryGetValue(name, out var data) ? Results.Bytes(data, "application/octet-stream") : Results.NotFound());
        await app.StartAsync();
        server = new FileHttpServer(app);
        return server;
    }

    public Uri Serve(string name, byte[] content)
    {
        _files[name] = content;
        return new Uri(BaseAddress, name);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Volume API helpers shared by the Pdisk API and host tests.</summary>
public static class Volumes
{
    public static async Task<JsonNode> CreateAsync(HttpClient http, object body, int status = 201) =>
        await (await http.PostAsJsonAsync("/api/v1/volumes", body)).Json(status);

    public static string Uuid(JsonNode node) => node["uuid"]!.GetValue<string>();

    public static async Task<JsonNode> GetAsync(HttpClient http, string uuid, int status = 200) =>
        await (await http.GetAsync($"/api/v1/volumes/{uuid}")).Json(status);

    /// <summary>Bytes that are random in places and zero in others (so sparse handling is exercised), with their SHA-1.</summary>
    public static (byte[] Data, string Sha1) DiskBytes(int mib, int seed = 1)
    {
        var data = new byte[mib * 1024 * 1024];
        var random = new Random(seed);
        for (var block = 0; block < data.Length / 65536; block++)
            if (block % 3 != 1) random.NextBytes(data.AsSpan(block * 65536, 65536));
        return (data, Convert.ToHexStringLower(SHA1.HashData(data)));
    }

    /// <summary>The files in a server's volumes directory (and its staging directory).</summary>
    public static IReadOnlyList<string> FilesOf(TestServer server)
    {
        var dir = Path.Combine(server.DataDir, "volumes");
        return Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order().ToList() : [];
    }

    public static async Task<long> StorageUsedAsync(HttpClient admin, string user) =>
        (await (await admin.GetAsync($"/api/v1/quotas/{user}")).Json(200))["usage"]!["storageGiB"]!.GetValue<long>();
}
