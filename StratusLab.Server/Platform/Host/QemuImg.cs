using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Platform.Host;

/// <summary>What <c>qemu-img info --output=json</c> says about an image.</summary>
public sealed record ImageInfo(string Format, long VirtualSize, long ActualSize, string? BackingFile, string? BackingFormat);

/// <summary>
/// What <c>qemu-img check</c> found: <see cref="Corruptions"/> and <see cref="CheckErrors"/> make an image unusable; leaked
/// clusters only waste space. <see cref="Supported"/> is false for formats without checks (raw). <see cref="Messages"/> are
/// the tool's own lines (ERROR ..., Leaked cluster ...), for the user.
/// </summary>
public sealed record ImageCheck(bool Supported, long Corruptions, long Leaks, long CheckErrors, IReadOnlyList<string> Messages)
{
    public bool IsCorrupt => Corruptions > 0 || CheckErrors > 0;

    /// <summary>One sentence for users: the counts and the first few of qemu-img's own lines.</summary>
    public string Describe(int maxLines = 3)
    {
        var counts = new List<string>();
        if (Corruptions > 0) counts.Add($"{Corruptions} corruption(s)");
        if (CheckErrors > 0) counts.Add($"{CheckErrors} check error(s)");
        if (Leaks > 0) counts.Add($"{Leaks} leaked cluster(s)");
        var text = counts.Count == 0 ? "no errors" : string.Join(", ", counts);
        var lines = Messages.Take(maxLines).ToList();
        if (lines.Count > 0) text += ": " + string.Join("; ", lines) + (Messages.Count > lines.Count ? $" (and {Messages.Count - lines.Count} more)" : "");
        return text;
    }
}

/// <summary>
/// The one qemu-img wrapper: runs it through the command runner (argument arrays, exit code checked, stderr in the error).
/// The argument arrays and the output parsing are pure static functions, table-tested.
/// </summary>
public sealed class QemuImg(ICommandRunner runner)
{
    public const string Tool = "qemu-img";

    /// <summary>Image facts; a file qemu-img cannot read is a <see cref="ToolFailedException"/>, unreadable output a <see cref="FormatException"/>.</summary>
    public async Task<ImageInfo> InfoAsync(string path, CancellationToken ct, string? format = null) =>
        ParseInfo((await runner.RunAsync(new ToolCommand(Tool, Info(path, format)), ct)).StandardOutput);

    /// <summary>
    /// Checks an image's metadata (qcow2: every cluster reference within the file; see <see cref="Check"/>). Corruptions
    /// (exit code 2) and leaks (3) come back as counts; a format without checks (63) as not supported; a check that could not
    /// complete (1) is a <see cref="ToolFailedException"/> with qemu-img's message.
    /// </summary>
    public async Task<ImageCheck> CheckAsync(string path, string format, CancellationToken ct)
    {
        var result = await runner.RunAsync(new ToolCommand(Tool, Check(path, format)) { Timeout = TimeSpan.FromHours(1), AcceptedExitCodes = [2, 3, 63] }, ct);
        return ParseCheck(result.ExitCode, result.StandardOutput, result.StandardError);
    }

    /// <summary>A new empty image (see <see cref="Create"/>).</summary>
    public Task CreateAsync(string path, string format, long sizeBytes, CancellationToken ct) =>
        runner.RunAsync(new ToolCommand(Tool, Create(path, format, sizeBytes)), ct);

    /// <summary>A copy-on-write overlay (see <see cref="Overlay"/>).</summary>
    public Task OverlayAsync(string path, string backing, string backingFormat, CancellationToken ct) =>
        runner.RunAsync(new ToolCommand(Tool, Overlay(path, backing, backingFormat)), ct);

    /// <summary>Makes an overlay independent (see <see cref="Flatten"/>); as slow as copying the data.</summary>
    public Task FlattenAsync(string path, CancellationToken ct) =>
        runner.RunAsync(new ToolCommand(Tool, Flatten(path)) { Timeout = TimeSpan.FromHours(6) }, ct);

    /// <summary>
    /// Copies an image, reading through any backing chain (see <see cref="Convert"/>). Into a new file, zero
    /// areas stay holes: the copy takes only the disk space of the data.
    /// </summary>
    public Task ConvertAsync(string source, string sourceFormat, string target, string targetFormat, bool intoExisting, CancellationToken ct) =>
        runner.RunAsync(new ToolCommand(Tool, Convert(source, sourceFormat, target, targetFormat, intoExisting)) { Timeout = TimeSpan.FromHours(6) }, ct);

    /// <summary>Formats a volume may have; anything else qemu-img reports is refused on import.</summary>
    public static readonly IReadOnlyList<string> Formats = ["raw", "qcow2"];

    static string Bytes(long bytes) => bytes.ToString(CultureInfo.InvariantCulture);

    /// <summary>An empty image (sparse raw or thin qcow2) of exactly <paramref name="sizeBytes"/>.</summary>
    public static IReadOnlyList<string> Create(string path, string format, long sizeBytes) =>
        ["create", "-q", "-f", format, path, Bytes(sizeBytes)];

    /// <summary>A qcow2 overlay on <paramref name="backing"/>: copy-on-write, constant time whatever the origin's size.</summary>
    public static IReadOnlyList<string> Overlay(string path, string backing, string backingFormat) =>
        ["create", "-q", "-f", "qcow2", "-F", backingFormat, "-b", backing, path];

    /// <summary>
    /// Image facts as JSON. <c>-U</c> (force share) lets us read the header of an image a VM has open
    /// (an ORIGIN mounted read-only); we never act on data read this way while it is written.
    /// </summary>
    public static IReadOnlyList<string> Info(string path, string? format = null) =>
        format is null ? ["info", "--output=json", "-U", path] : ["info", "--output=json", "-U", "-f", format, path];

    /// <summary>A read-only consistency check with machine-readable counts (messages go to stderr).</summary>
    public static IReadOnlyList<string> Check(string path, string format) => ["check", "--output=json", "-f", format, path];

    /// <summary>Parses <c>qemu-img check --output=json</c> (stdout) with its messages (stderr) and exit code.</summary>
    public static ImageCheck ParseCheck(int exitCode, string json, string stderr)
    {
        var messages = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.StartsWith("qemu-img: ", StringComparison.Ordinal) ? l[10..] : l).Distinct().ToList();
        if (exitCode == 63) return new ImageCheck(false, 0, 0, 0, messages);
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException e) { throw new FormatException($"qemu-img check printed something that is not JSON: {e.Message}"); }
        if (node is not JsonObject o) throw new FormatException("qemu-img check printed JSON that is not an object");
        long Count(string name) => o[name]?.GetValue<long>() ?? 0;
        var check = new ImageCheck(true, Count("corruptions"), Count("leaks"), Count("check-errors"), messages);
        // The exit code is the tool's verdict; counts missing from the JSON do not turn a failed check into a pass.
        if (exitCode == 2 && !check.IsCorrupt) check = check with { Corruptions = 1 };
        return check;
    }

    /// <summary>Copies every backing-file cluster into the overlay and drops the backing file: the image becomes independent.</summary>
    public static IReadOnlyList<string> Flatten(string path) => ["rebase", "-q", "-f", "qcow2", "-b", "", path];

    /// <summary>
    /// Copies an image with large parallel writes (<c>-W -m 16</c>), which is what makes copies into LVs and
    /// iSCSI LUNs fast. Into an existing block device (<paramref name="intoExisting"/>) zeros are written too
    /// (<c>-S 0 -n</c>), since its old content is not known to be zero.
    /// </summary>
    public static IReadOnlyList<string> Convert(string source, string sourceFormat, string target, string targetFormat, bool intoExisting)
    {
        var args = new List<string> { "convert", "-q" };
        // Out-of-order writes fragment a qcow2 target; raw targets (files, LVs, LUNs) only gain from them.
        if (targetFormat == "raw") args.Add("-W");
        args.AddRange(["-m", "16", "-f", sourceFormat, "-O", targetFormat]);
        if (intoExisting) args.AddRange(["-n", "-S", "0"]);
        args.AddRange([source, target]);
        return args;
    }

    /// <summary>Parses <c>qemu-img info --output=json</c>.</summary>
    public static ImageInfo ParseInfo(string json)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException e) { throw new FormatException($"qemu-img info printed something that is not JSON: {e.Message}"); }
        if (node is not JsonObject o || o["format"] is null || o["virtual-size"] is null)
            throw new FormatException("qemu-img info printed JSON without 'format' and 'virtual-size'");
        return new ImageInfo(
            o["format"]!.GetValue<string>(),
            o["virtual-size"]!.GetValue<long>(),
            o["actual-size"]?.GetValue<long>() ?? 0,
            o["full-backing-filename"]?.GetValue<string>() ?? o["backing-filename"]?.GetValue<string>(),
            o["backing-filename-format"]?.GetValue<string>());
    }

    /// <summary>
    /// The length a qcow2 file must have to be exported as a fixed-size block device (an iSCSI LUN) and still
    /// take every write: its current length plus the virtual size plus an upper bound of the metadata
    /// (L2 tables: 8 bytes per 64 KiB cluster; refcounts: 2 bytes per cluster; headers), rounded up to 1 MiB.
    /// The extra length is a sparse tail, so it costs no disk space until written.
    /// </summary>
    public static long BlockExportLength(long currentLength, long virtualSize)
    {
        const long mib = 1024 * 1024;
        var bound = currentLength + virtualSize + virtualSize / 4096 + 4 * mib;
        return (bound + mib - 1) / mib * mib;
    }
}
