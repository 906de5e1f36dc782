using Microsoft.Data.Sqlite;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Platform.Host;

/// <summary>The free space of the data dir's filesystem as /health shows it.</summary>
public sealed record DiskSpaceReport(string DataDir, string Filesystem, long FreeBytes, long TotalBytes, long MinFreeBytes,
    DateTimeOffset? LastWriteFailedAt, string? LastWriteError);

/// <summary>
/// Measures the free space of the data dir's filesystem (statvfs through DriveInfo), refuses new work below the floor
/// (Disk:MinFreeMiB), recognizes lack-of-space failures (SQLite's SQLITE_FULL, ENOSPC/EDQUOT from the kernel or in a tool's
/// error output) and remembers the last one until a probe write in the data dir works again.
/// </summary>
public sealed class DiskSpace(ServerOptions options, TimeProvider clock, ILogger<DiskSpace> logger) : IFreeSpaceGuard
{
    const int SqliteFull = 13;
    const int Enospc = 28;
    const int Edquot = 122;
    static readonly string[] FullTexts = ["No space left on device", "Disk quota exceeded", "database or disk is full"];

    readonly Lock _lock = new();
    (DateTimeOffset At, string Error)? _lastFailure;

    public long MinFreeBytes => options.Disk.MinFreeMiB * 1024L * 1024L;

    /// <summary>The mount point that holds the data dir, and the bytes free for unprivileged writers and in all.</summary>
    public (string Filesystem, long FreeBytes, long TotalBytes) Measure()
    {
        var dir = ExistingAncestor(options.DataDir);
        string[] mounts;
        try { mounts = DriveInfo.GetDrives().Select(d => d.Name).ToArray(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { mounts = ["/"]; }
        var filesystem = MountPointOf(dir, mounts);
        try
        {
            var drive = new DriveInfo(dir);
            return (filesystem, drive.AvailableFreeSpace, drive.TotalSize);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            logger.LogWarning("Cannot measure the free space of {Dir}: {Error}", dir, e.Message);
            return (filesystem, long.MaxValue, 0);
        }
    }

    public void EnsureRoom(string what)
    {
        var (filesystem, free, _) = Measure();
        if (free >= MinFreeBytes) return;
        throw new DiskFullException(
            $"{what} is refused: the filesystem {filesystem} holding the data dir has {Mebibytes(free)} free, below the floor of " +
            $"{Mebibytes(MinFreeBytes)} (Disk:MinFreeMiB). Free space there (delete volumes, instances or images no longer needed, " +
            "or purge the volume quarantine), or grow the filesystem, then try again.",
            filesystem, free, MinFreeBytes);
    }

    public bool ReportIfFull(Exception error)
    {
        if (!IsFull(error)) return false;
        var first = FirstFullMessage(error);
        lock (_lock) _lastFailure = (clock.GetUtcNow(), first);
        return true;
    }

    /// <summary>The 507 for a write that failed for lack of space, naming the filesystem and its free space now.</summary>
    public DiskFullException Describe(Exception error)
    {
        if (error is DiskFullException full) return full;
        var (filesystem, free, _) = Measure();
        return new DiskFullException(
            $"The filesystem {filesystem} holding the data dir is full ({Mebibytes(free)} free): {FirstFullMessage(error)}. " +
            "Nothing of the request was kept. Free space there (delete volumes, instances or images no longer needed, or purge " +
            "the volume quarantine), or grow the filesystem, then try again.",
            filesystem, free, MinFreeBytes);
    }

    /// <summary>What /health shows, and its problems: free space below the floor, or a write that failed for lack of space and still would.</summary>
    public (DiskSpaceReport Report, IReadOnlyList<string> Problems) Check()
    {
        var (filesystem, free, total) = Measure();
        var problems = new List<string>();
        if (free == 0)
            problems.Add($"disk: the filesystem {filesystem} holding the data dir is full (0 MiB free); writes fail");
        else if (free < MinFreeBytes)
            problems.Add($"disk: the filesystem {filesystem} holding the data dir has {Mebibytes(free)} free, below the floor of {Mebibytes(MinFreeBytes)} (Disk:MinFreeMiB); new work is refused");
        (DateTimeOffset At, string Error)? last;
        lock (_lock) last = _lastFailure;
        if (last is { } failure)
        {
            if (problems.Count == 0 && ProbeWrite())
            {
                lock (_lock) if (_lastFailure == last) _lastFailure = null;
                logger.LogInformation("The data dir's filesystem {Filesystem} takes writes again ({Free} free)", filesystem, Mebibytes(free));
                last = null;
            }
            else
                problems.Add($"disk: a write failed for lack of space at {DapperTypesFormat(failure.At)} on {filesystem}: {failure.Error}");
        }
        return (new DiskSpaceReport(options.DataDir, filesystem, free, total, MinFreeBytes, last?.At, last?.Error), problems);
    }

    /// <summary>Writes and syncs a small file in the data dir: the proof that a lack of space is over.</summary>
    bool ProbeWrite()
    {
        var path = Path.Combine(options.DataDir, ".space-probe");
        try
        {
            using (var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                stream.Write(new byte[64 * 1024]);
                stream.Flush(flushToDisk: true);
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        finally
        {
            try { File.Delete(path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    static string DapperTypesFormat(DateTimeOffset t) => Data.DapperTypes.Format(t);

    /// <summary>Whether the failure (or one inside it) is a lack of space.</summary>
    public static bool IsFull(Exception error) => FullCause(error) is not null;

    static string FirstFullMessage(Exception error)
    {
        var cause = FullCause(error);
        var text = cause switch
        {
            SqliteException => "SQLite: database or disk is full",
            ToolFailedException tool => FullLine(tool.StandardError) ?? tool.Message,
            null => error.Message,
            _ => FullLine(cause.Message) ?? cause.Message,
        };
        return text.Trim().TrimEnd('.');
    }

    static string? FullLine(string text) =>
        text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => FullTexts.Any(f => l.Contains(f, StringComparison.OrdinalIgnoreCase)));

    static Exception? FullCause(Exception error)
    {
        foreach (var e in Flatten(error))
        {
            switch (e)
            {
                case SqliteException sqlite when sqlite.SqliteErrorCode == SqliteFull:
                    return e;
                case IOException io when io.HResult is Enospc or Edquot:
                    return e;
                case ToolFailedException tool when FullLine(tool.StandardError) is not null:
                    return e;
            }
            // Modules wrap a failure's message into their own "unavailable" rejection (a backend that "could not make the volume: No space
            // left on device"); other rejections may quote an old failure (an instance's failure reason) and stay what they are.
            var wrapped = e is not DomainException || e is DomainException { Kind: Rejection.Unavailable };
            if (wrapped && FullLine(e.Message) is not null) return e;
        }
        return null;
    }

    static IEnumerable<Exception> Flatten(Exception error)
    {
        var queue = new Queue<Exception>([error]);
        var seen = 0;
        while (queue.TryDequeue(out var e) && seen++ < 32)
        {
            yield return e;
            if (e is AggregateException aggregate) foreach (var inner in aggregate.InnerExceptions) queue.Enqueue(inner);
            else if (e.InnerException is { } inner) queue.Enqueue(inner);
        }
    }

    /// <summary>The longest mount point that holds <paramref name="path"/> ("/" when none does).</summary>
    public static string MountPointOf(string path, IEnumerable<string> mountPoints)
    {
        var full = path.TrimEnd('/');
        if (full.Length == 0) full = "/";
        var best = "/";
        foreach (var raw in mountPoints)
        {
            var mount = raw.Length > 1 ? raw.TrimEnd('/') : raw;
            var holds = mount == "/" || full == mount || full.StartsWith(mount + "/", StringComparison.Ordinal);
            if (holds && mount.Length > best.Length) best = mount;
        }
        return best;
    }

    static string ExistingAncestor(string path)
    {
        var dir = Path.GetFullPath(path);
        while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { } parent) dir = parent;
        return dir;
    }

    /// <summary>Bytes as MiB for people ("12.5 MiB").</summary>
    public static string Mebibytes(long bytes) =>
        bytes == long.MaxValue ? "an unknown amount" : (bytes / 1048576.0).ToString(bytes < 10L * 1048576 ? "0.0" : "0", System.Globalization.CultureInfo.InvariantCulture) + " MiB";
}
