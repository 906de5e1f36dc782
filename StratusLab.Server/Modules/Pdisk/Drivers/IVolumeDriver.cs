using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Pdisk.Drivers;

/// <summary>Where a volume's data lives on the storage host: a file or a block device, and its format.</summary>
internal sealed record VolumeLocation(string Path, string Format, long SizeBytes);

/// <summary>Something of this server's a driver finds on the host; <see cref="Uuid"/> is null for leftovers (temp files).</summary>
internal sealed record StoredItem(string Path, Guid? Uuid);

/// <summary>A storage backend: makes, copies, snapshots and removes volumes. Every call is idempotent-safe to undo with <see cref="RemoveAsync"/>.</summary>
internal interface IVolumeDriver
{
    /// <summary>The configuration name: file or lvm.</summary>
    string Name { get; }

    /// <summary>The location a new volume of this uuid will get (known before it exists, so the store can record it first).</summary>
    VolumeLocation LocationOf(Guid uuid, long sizeBytes, string? format = null);

    /// <summary>A new, empty volume.</summary>
    Task<VolumeLocation> CreateAsync(Guid uuid, long sizeBytes, CancellationToken ct);

    /// <summary>Takes over a staged image file (raw or qcow2, no backing file): moved into place or copied into a new LV.</summary>
    Task<VolumeLocation> ImportAsync(Guid uuid, string stagedFile, ImageInfo info, CancellationToken ct);

    /// <summary>A copy-on-write snapshot of <paramref name="origin"/>, in constant time.</summary>
    Task<VolumeLocation> SnapshotAsync(Guid uuid, VolumeLocation origin, CancellationToken ct);

    /// <summary>Makes a snapshot independent of its origin (the data it shares is copied in).</summary>
    Task<VolumeLocation> FlattenAsync(Guid uuid, VolumeLocation live, CancellationToken ct);

    /// <summary>
    /// Makes the volume safe to export as a fixed-size block device (an iSCSI LUN): a qcow2 file is given a
    /// sparse tail to grow into, since a LUN's size is fixed when it is made.
    /// </summary>
    Task PrepareBlockExportAsync(VolumeLocation location, CancellationToken ct);

    /// <summary>Removes the volume's data; a missing one is not an error.</summary>
    Task RemoveAsync(VolumeLocation location, CancellationToken ct);

    bool Exists(VolumeLocation location);

    /// <summary>Every volume and leftover of this server's that the driver finds on the host (for reconciliation).</summary>
    Task<IReadOnlyList<StoredItem>> ListAsync(CancellationToken ct);

    /// <summary>Whether a path (e.g. an iSCSI backing store) is one of this server's volumes.</summary>
    bool Owns(string path);
}
