using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Images.Contracts;

/// <summary>What an instance's <c>image</c> names: a registered name, a Marketplace identifier, an http(s) URL, or a volume uuid.</summary>
public enum ImageSourceKind { Name, Marketplace, Url, Volume }

/// <summary>A parsed image reference.</summary>
public sealed record ImageReference(ImageSourceKind Kind, string Value);

/// <summary>The disk an instance boots from: a LIVE copy-on-write snapshot of a cached ORIGIN, or a persistent volume.</summary>
/// <param name="VolumeUuid">The Pdisk volume to mount as the boot disk.</param>
/// <param name="QuarantineWhenReleased">True for LIVE snapshots made for this instance; false for a user's own volume.</param>
/// <param name="Identifier">The Marketplace identifier of the image, when it has one.</param>
/// <param name="CacheHit">True when no byte was downloaded for this launch.</param>
public sealed record BootDisk(Guid VolumeUuid, bool QuarantineWhenReleased, string? Identifier, bool CacheHit);

/// <summary>A download in progress.</summary>
public sealed record TransferProgress(long BytesDone, long? BytesTotal);

/// <summary>The image cache: one ORIGIN per image, downloaded and verified once, and a copy-on-write clone per VM.</summary>
public interface IImageCache
{
    /// <summary>Parses and checks a reference at admission (400/422 when malformed or unknown); returns the Marketplace identifier when it resolves to one.</summary>
    Task<(ImageReference Reference, string? Identifier)> ResolveAsync(string? image, CancellationToken ct = default);

    /// <summary>
    /// Makes the boot disk for one instance: finds or downloads (once, however many instances ask at the same time)
    /// and verifies the image, keeps it as an ORIGIN, and returns a LIVE snapshot of it owned by <paramref name="ownerId"/>.
    /// Failures are <see cref="ImageUnavailableException"/> with the reason; nothing is cached then. The snapshot is
    /// shared <paramref name="sharing"/>: local (opened here, or copied to a node's cache) or iscsi (an SSH node opens it).
    /// </summary>
    Task<BootDisk> PrepareBootDiskAsync(ImageReference reference, long ownerId, CancellationToken ct = default, string sharing = "local");

    /// <summary>
    /// True when the image's download was cut short by a server stop (its partial file is kept): a launch that waited for
    /// it can run its PROLOG again after a restart, and the download resumes with a Range request.
    /// </summary>
    Task<bool> DownloadInterruptedAsync(ImageReference reference, CancellationToken ct = default);

    /// <summary>The transfer in progress for this reference, if any.</summary>
    TransferProgress? ProgressOf(string image);

    /// <summary>
    /// Saves a powered-off instance's disk as a new signed Marketplace image and returns its identifier; a disk whose
    /// content is already kept as an image (saved unchanged before) gives that image's identifier.
    /// </summary>
    Task<string> SaveAsync(Guid liveVolume, string? originalIdentifier, string userName, long instanceId, CancellationToken ct = default);
}

/// <summary>An image could not be made available (unreachable, wrong checksum, too large, not an image...); 422 at the HTTP edge.</summary>
public sealed class ImageUnavailableException(string message) : DomainException(Rejection.Unprocessable, message, "image");
