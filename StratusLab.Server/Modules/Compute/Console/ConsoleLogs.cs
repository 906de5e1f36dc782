using System.Globalization;
using System.Text;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Compute.Console;

/// <summary>
/// Each instance's serial console log, kept outside its VM directory (&lt;data-dir&gt;/consoles/ID.log) so it outlives the
/// VM: bounded to Compute:ConsoleLogMaxKiB (the older part is dropped) and deleted with the instance record.
/// </summary>
internal sealed partial class ConsoleLogs(ServerOptions options, ComputeOptions compute)
{
    public string Directory => Path.Combine(options.DataDir, "consoles");

    public string PathOf(long instanceId) => Path.Combine(Directory, instanceId.ToString(CultureInfo.InvariantCulture) + ".log");

    long MaxBytes => compute.ConsoleLogMaxKiB * 1024L;

    /// <summary>A fresh log for a VM that starts now (a restart after stop keeps appending to the old one).</summary>
    public string Prepare(long instanceId)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var path = PathOf(instanceId);
        if (!File.Exists(path)) File.WriteAllBytes(path, []);
        return path;
    }

    /// <summary>Appends lines (the simulated driver's own boot log).</summary>
    public void Append(long instanceId, string text)
    {
        System.IO.Directory.CreateDirectory(Directory);
        File.AppendAllText(PathOf(instanceId), text);
    }

    /// <summary>The last <paramref name="lines"/> lines (all, when null), read from at most the bounded size.</summary>
    public string Tail(long instanceId, int? lines)
    {
        var text = ReadFrom(instanceId, Math.Max(0, Length(instanceId) - MaxBytes), out _);
        if (lines is not { } n) return text;
        var all = SplitLines(text);
        return string.Join("", all.Skip(Math.Max(0, all.Count - n)));
    }

    /// <summary>The log's size in bytes (0 when there is none).</summary>
    public long Length(long instanceId)
    {
        var info = new FileInfo(PathOf(instanceId));
        return info.Exists ? info.Length : 0;
    }

    /// <summary>The bytes from <paramref name="offset"/> to the end as text; <paramref name="end"/> is where the next read starts.</summary>
    public string ReadFrom(long instanceId, long offset, out long end)
    {
        var path = PathOf(instanceId);
        end = offset;
        if (!File.Exists(path)) return "";
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        // A log cut shorter (bounded) since the last read: start again at its beginning.
        if (offset > file.Length) offset = 0;
        file.Seek(offset, SeekOrigin.Begin);
        var buffer = new byte[Math.Min(file.Length - offset, MaxBytes + 4096)];
        var read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        end = offset + read;
        return Clean(Encoding.UTF8.GetString(buffer, 0, read));
    }

    /// <summary>Cuts a log past its bound down to its newest half (QEMU appends with O_APPEND, so it goes on writing at the new end).</summary>
    public void Bound(long instanceId)
    {
        var path = PathOf(instanceId);
        var length = Length(instanceId);
        if (length <= MaxBytes) return;
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        var keep = new byte[MaxBytes / 2];
        file.Seek(file.Length - keep.Length, SeekOrigin.Begin);
        var read = file.ReadAtLeast(keep, keep.Length, throwOnEndOfStream: false);
        var start = Array.IndexOf(keep, (byte)'\n', 0, read) + 1;
        var marker = Encoding.UTF8.GetBytes("[stratuslab: older console output dropped, the log is kept under " + compute.ConsoleLogMaxKiB + " KiB]\n");
        file.SetLength(0);
        file.Write(marker);
        file.Write(keep, start, read - start);
    }

    /// <summary>The last <paramref name="count"/> non-empty lines, for failure reasons.</summary>
    public IReadOnlyList<string> LastLines(long instanceId, int count)
    {
        var text = ReadFrom(instanceId, Math.Max(0, Length(instanceId) - 64 * 1024), out _);
        var lines = SplitLines(text).Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToList();
        return lines.Skip(Math.Max(0, lines.Count - count)).ToList();
    }

    public void Delete(long instanceId) => File.Delete(PathOf(instanceId));

    /// <summary>
    /// Why a guest died, from its console: "guest kernel panicked: REASON" when the kernel says so, and the last lines;
    /// null when the console shows no panic.
    /// </summary>
    public string? PanicReason(long instanceId, bool panicked)
    {
        var lines = LastLines(instanceId, 200);
        var panic = lines.LastOrDefault(l => l.Contains("Kernel panic - not syncing:", StringComparison.Ordinal));
        if (panic is null && !panicked) return null;
        var cause = panic is null ? "no panic message on the serial console"
            : panic[(panic.IndexOf("Kernel panic - not syncing:", StringComparison.Ordinal) + "Kernel panic - not syncing:".Length)..].Trim(' ', ']', '-').Trim();
        return $"guest kernel panicked: {Short(cause, 300)}; last console lines: {Quote(lines.Skip(Math.Max(0, lines.Count - 5)))}";
    }

    /// <summary>
    /// Whether the console's newest lines hold the kernel's own panic line ("[ 1.4] Kernel panic - not syncing: ..."): a
    /// guest that panics before it has loaded its pvpanic driver (early boot, in the initramfs) says so only there.
    /// </summary>
    public bool ShowsKernelPanic(long instanceId) =>
        SplitLines(ReadFrom(instanceId, Math.Max(0, Length(instanceId) - 16 * 1024), out _))
            .Any(l => KernelPanicLine().IsMatch(l));

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*(\[\s*\d+\.\d+\]\s*)?Kernel panic - not syncing:")]
    private static partial System.Text.RegularExpressions.Regex KernelPanicLine();

    /// <summary>The last lines as a reason's tail: "… | … | …".</summary>
    public string Quote(IEnumerable<string> lines) => Short(string.Join(" | ", lines.Select(StripTimestamp)), 1200);

    static string StripTimestamp(string line) => line.StartsWith('[') && line.IndexOf(']') is > 0 and < 20 and var close ? line[(close + 1)..].Trim() : line;

    static string Short(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    static List<string> SplitLines(string text)
    {
        var list = new List<string>();
        var start = 0;
        for (var i = 0; i < text.Length; i++)
            if (text[i] == '\n') { list.Add(text[start..(i + 1)]); start = i + 1; }
        if (start < text.Length) list.Add(text[start..]);
        return list;
    }

    // Serial output is terminal bytes: carriage returns and NULs are noise in a text log.
    static string Clean(string text) => text.Replace("\r\n", "\n").Replace("\0", "");
}
