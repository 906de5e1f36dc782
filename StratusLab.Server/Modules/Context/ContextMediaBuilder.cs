using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Context;

/// <summary>Writes context.sh (and user-data) into a staging folder and makes an ISO labelled CONTEXT with genisoimage.</summary>
internal sealed class ContextMediaBuilder(ICommandRunner runner) : IContextMedia
{
    public async Task<ContextMedia> BuildAsync(ContextRequest request, CancellationToken ct = default)
    {
        var staging = Path.Combine(request.Directory, "context.d");
        var iso = Path.Combine(request.Directory, "context.iso");
        Directory.CreateDirectory(staging);
        try
        {
            await File.WriteAllTextAsync(Path.Combine(staging, "context.sh"), ContextScript.Render(request.Variables), ct);
            if (request.UserData is not null) await File.WriteAllTextAsync(Path.Combine(staging, "user-data"), request.UserData, ct);
            await runner.RunAsync(new ToolCommand("genisoimage", Arguments(iso, staging)) { Timeout = TimeSpan.FromSeconds(60) }, ct);
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
        return new ContextMedia(iso, new FileInfo(iso).Length);
    }

    public static IReadOnlyList<string> Arguments(string iso, string staging) =>
        ["-quiet", "-o", iso, "-V", "CONTEXT", "-J", "-R", "-input-charset", "utf-8", staging];

    public Task RemoveAsync(string isoPath, CancellationToken ct = default)
    {
        File.Delete(isoPath);
        return Task.CompletedTask;
    }
}
