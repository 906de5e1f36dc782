namespace StratusLab.Server.Modules.Marketplace.Contracts;

/// <summary>Where an entry stands now: usable, past its dcterms:valid date, deprecated, or waiting for its endorser's confirmation.</summary>
public enum EntryStatus { Valid, Expired, Deprecated, Pending }

/// <summary>One checksum of the image (slreq:checksum): algorithm as StratusLab writes it (SHA-1, SHA-256, MD5...) and lower-case hex value.</summary>
public sealed record ImageChecksum(string Algorithm, string Value);

/// <summary>Who endorsed an entry (slreq:endorser), as the signing certificate proves it.</summary>
public sealed record Endorser(string Email, string? Subject, string? Issuer);

/// <summary>
/// How an image describes itself (the dcterms/slterms fields), the same in a draft (<see cref="MetadataDraft"/>) and in a
/// signed entry (<see cref="MetadataEntry"/>).
/// </summary>
public abstract record ImageDescription
{
    public string? Title { get; init; }
    public string? Description { get; init; }
    public string? Creator { get; init; }
    public string? Publisher { get; init; }
    /// <summary>dcterms:format: raw, qcow2...</summary>
    public string? Format { get; init; }
    /// <summary>dcterms:compression: gz, bz2... or null.</summary>
    public string? Compression { get; init; }
    /// <summary>dcterms:alternative: the tags.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>slterms:location: where the image can be downloaded (http(s) or file URLs).</summary>
    public IReadOnlyList<string> Locations { get; init; } = [];
    public string? Version { get; init; }
    public string? Hypervisor { get; init; }
    public string? Os { get; init; }
    public string? OsVersion { get; init; }
    public string? OsArch { get; init; }
    public string? Kind { get; init; }
    public string? DisksBus { get; init; }
    public IReadOnlyList<int> InboundPorts { get; init; } = [];
    public IReadOnlyList<int> OutboundPorts { get; init; } = [];
    public string? IsReplacedBy { get; init; }
    public string? Replaces { get; init; }
    /// <summary>slterms:min-memory: the least memory (MiB) the image boots with; admission refuses smaller instance types.</summary>
    public long? MinMemoryMiB { get; init; }
    /// <summary>slterms:min-cpu: the least number of CPUs the image needs.</summary>
    public int? MinCpu { get; init; }
    /// <summary>slterms:min-disk: the disk (GiB) the image needs; shown to users (root disks are the image's own size).</summary>
    public long? MinDiskGiB { get; init; }
    /// <summary>slterms:default-user: the user to log in as (cloud-init images refuse root), e.g. debian.</summary>
    public string? DefaultUser { get; init; }
    /// <summary>slterms:context-method: how the image reads its context (opennebula or nocloud); null: the server's default.</summary>
    public string? ContextMethod { get; init; }
}

/// <summary>What an image needs and how to log in to it, as its entry declares (every field optional).</summary>
public sealed record ImageRequirements(long? MinMemoryMiB, int? MinCpu, long? MinDiskGiB, string? DefaultUser, string? ContextMethod, string? Os)
{
    /// <summary>The accepted context methods.</summary>
    public static readonly IReadOnlyList<string> ContextMethods = ["opennebula", "nocloud"];

    /// <summary>The requirements an entry or draft declares.</summary>
    public static ImageRequirements Of(ImageDescription d) => new(d.MinMemoryMiB, d.MinCpu, d.MinDiskGiB, d.DefaultUser, d.ContextMethod, d.Os);
}

/// <summary>
/// A Marketplace metadata entry: the signed StratusLab RDF/XML description of one image by one endorser at one time.
/// Identifier is the image's SHA-1 in StratusLab's 27-character form; Sha1 is the same value as hex.
/// </summary>
public sealed record MetadataEntry : ImageDescription
{
    /// <summary>dcterms:identifier, e.g. MMZu9WvwKIro-rtBQfDk4PsKO7_.</summary>
    public required string Identifier { get; init; }
    /// <summary>SHA-1 of the image, 40 lower-case hex digits.</summary>
    public required string Sha1 { get; init; }
    /// <summary>slreq:bytes: size of the image file as downloaded (compressed if Compression is set).</summary>
    public long? Bytes { get; init; }
    /// <summary>Every slreq:checksum, SHA-1 included.</summary>
    public IReadOnlyList<ImageChecksum> Checksums { get; init; } = [];
    public required Endorser Endorser { get; init; }
    /// <summary>dcterms:created of the endorsement: with Identifier and Endorser.Email it names the entry.</summary>
    public required DateTimeOffset Created { get; init; }
    /// <summary>dcterms:valid: the entry expires after this time (null: never).</summary>
    public DateTimeOffset? Valid { get; init; }
    /// <summary>dcterms:type: machine or disk.</summary>
    public required string Type { get; init; }
    public EntryStatus Status { get; init; }
    /// <summary>Why the entry is deprecated (slterms:deprecated, or an admin's override), else null.</summary>
    public string? Deprecated { get; init; }
    /// <summary>"endorser" when the signed entry says so, "admin:NAME" for an administrator's override, else null.</summary>
    public string? DeprecatedBy { get; init; }
}

/// <summary>What the site says about one of its own images when the server registers it (see <see cref="IMarketplaceCatalog.RegisterSiteImageAsync"/>).</summary>
public sealed record SiteImageInfo
{
    public required string Title { get; init; }
    public string? Description { get; init; }
    /// <summary>Image format as qemu-img names it: qcow2 or raw.</summary>
    public string Format { get; init; } = "qcow2";
    public string? Os { get; init; }
    public string? OsVersion { get; init; }
    public string? OsArch { get; init; } = "x86_64";
    public string? Version { get; init; }
    public string Hypervisor { get; init; } = "kvm";
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>Download location; null: a file:// URL of the image path.</summary>
    public string? Location { get; init; }
    /// <summary>How long the entry stays valid; null: Marketplace:SiteEntryValidDays.</summary>
    public TimeSpan? ValidFor { get; init; }
    /// <summary>What the image needs (minimum memory, CPUs, disk) and its default login user and context method.</summary>
    public long? MinMemoryMiB { get; init; }
    public int? MinCpu { get; init; }
    public long? MinDiskGiB { get; init; }
    public string? DefaultUser { get; init; }
    public string? ContextMethod { get; init; }
}
