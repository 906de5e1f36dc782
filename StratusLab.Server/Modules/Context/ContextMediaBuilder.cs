using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Context;

/// <summary>
/// Writes the context files into a staging folder and makes an ISO with genisoimage: label CONTEXT with context.sh
/// (OpenNebula), or label cidata with meta-data, user-data, vendor-data and network-config (NoCloud).
/// </summary>
internal sealed class ContextMediaBuilder(ICommandRunner runner) : IContextMedia
{
    public async Task<ContextMedia> BuildAsync(ContextRequest request, CancellationToken ct = default)
    {
        var staging = Path.Combine(request.Directory, "context.d");
        var iso = Path.Combine(request.Directory, "context.iso");
        Directory.CreateDirectory(staging);
        try
        {
            foreach (var (name, content) in Files(request))
                await File.WriteAllTextAsync(Path.Combine(staging, name), content, ct);
            await runner.RunAsync(new ToolCommand("genisoimage", Arguments(iso, staging, Label(request.Method))) { Timeout = TimeSpan.FromSeconds(60) }, ct);
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
        return new ContextMedia(iso, new FileInfo(iso).Length);
    }

    /// <summary>The files on the medium, by method.</summary>
    public static IReadOnlyList<(string Name, string Content)> Files(ContextRequest request) => request.Method switch
    {
        ContextMethod.NoCloud => NoCloudSeed.Files(request),
        _ => [("context.sh", ContextScript.Render(ContextScript.OpenNebulaVariables(request)))],
    };

    public static string Label(ContextMethod method) => method == ContextMethod.NoCloud ? "cidata" : "CONTEXT";

    public static IReadOnlyList<string> Arguments(string iso, string staging, string label = "CONTEXT") =>
        ["-quiet", "-o", iso, "-V", label, "-J", "-R", "-input-charset", "utf-8", staging];

    public Task RemoveAsync(string isoPath, CancellationToken ct = default)
    {
        File.Delete(isoPath);
        return Task.CompletedTask;
    }
}
