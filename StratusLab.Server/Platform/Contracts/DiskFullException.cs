namespace StratusLab.Server.Platform.Contracts;

/// <summary>
/// The filesystem of the data dir is full, or below the configured free-space floor (Disk:MinFreeMiB): new work is refused
/// before it starts, and a write that failed for lack of space is reported as this (507 Insufficient Storage) with the
/// filesystem and its free space, never as an unexpected error.
/// </summary>
public sealed class DiskFullException : DomainException
{
    public DiskFullException(string detail, string filesystem, long freeBytes, long floorBytes) : base(Rejection.InsufficientStorage, detail)
    {
        Title = "Insufficient Storage";
        Filesystem = filesystem;
        FreeBytes = freeBytes;
        Extensions["filesystem"] = filesystem;
        Extensions["freeBytes"] = freeBytes;
        Extensions["minFreeBytes"] = floorBytes;
    }

    /// <summary>The mount point of the filesystem that is full.</summary>
    public string Filesystem { get; }

    /// <summary>Bytes free for the server on it when the rejection was made.</summary>
    public long FreeBytes { get; }
}

/// <summary>
/// Platform's free-space guard over the data dir's filesystem. Modules call <see cref="EnsureRoom"/> when they admit new
/// work that writes (a launch, an upload, a new volume, an image prefetch, a new user); deletions never ask, they free space.
/// </summary>
public interface IFreeSpaceGuard
{
    /// <summary>Throws <see cref="DiskFullException"/> (507) when the free space is below the floor; <paramref name="what"/> names the refused work ("Launching an instance").</summary>
    void EnsureRoom(string what);

    /// <summary>Whether <paramref name="error"/> (or an exception inside it) is a lack of space; if so, /health reports it until writing works again.</summary>
    bool ReportIfFull(Exception error);
}
