using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Modules.Pdisk.Drivers;

/// <summary>One logical volume as <c>lvs --reportformat json</c> reports it.</summary>
internal sealed record LogicalVolume(string Name, string VolumeGroup, long SizeBytes, string Attributes, string? Origin, string? Pool, string Path, IReadOnlyList<string> Tags)
{
    /// <summary>lv_attr's first character: 's' for a classic snapshot, 'V' for a thin volume, '-' for a plain one.</summary>
    public bool IsSnapshot => Attributes.Length > 0 && Attributes[0] is 's' or 'S' || Origin is { Length: > 0 };
}

/// <summary>lvm2 argument arrays and <c>lvs</c> JSON parsing (pure, table-tested).</summary>
internal static class LvmCommands
{
    public const string LvCreate = "lvcreate";
    public const string LvRemove = "lvremove";
    public const string LvRename = "lvrename";
    public const string Lvs = "lvs";

    /// <summary>lvm warns on every file descriptor it inherits; that noise is not an error.</summary>
    public static readonly IReadOnlyDictionary<string, string?> Environment = new Dictionary<string, string?> { ["LVM_SUPPRESS_FD_WARNINGS"] = "1" };

    static string Size(long bytes) => bytes.ToString(CultureInfo.InvariantCulture) + "b";

    /// <summary>A new LV: classic (<c>-L</c>, first 4 KiB zeroed, signatures wiped) or thin in <paramref name="thinPool"/> (<c>-V -T</c>, reads as zeros).</summary>
    public static IReadOnlyList<string> Create(string volumeGroup, string name, long sizeBytes, string tag, string? thinPool) =>
        string.IsNullOrEmpty(thinPool)
            ? ["--yes", "-n", name, "-L", Size(sizeBytes), "-W", "y", "-Z", "y", "--addtag", tag, volumeGroup]
            : ["--yes", "-n", name, "-V", Size(sizeBytes), "-T", $"{volumeGroup}/{thinPool}", "--addtag", tag];

    /// <summary>
    /// A snapshot of <paramref name="origin"/>: classic snapshots get copy-on-write space as large as the origin
    /// (so they can never overflow and become invalid); thin snapshots need none and are activated at once.
    /// </summary>
    public static IReadOnlyList<string> Snapshot(string volumeGroup, string origin, string name, long originSizeBytes, string tag, string? thinPool) =>
        string.IsNullOrEmpty(thinPool)
            ? ["--yes", "-s", "-n", name, "-L", Size(originSizeBytes), "--addtag", tag, $"{volumeGroup}/{origin}"]
            : ["--yes", "-s", "-n", name, "--setactivationskip", "n", "-a", "y", "--addtag", tag, $"{volumeGroup}/{origin}"];

    public static IReadOnlyList<string> Remove(string volumeGroup, string name) => ["--yes", $"{volumeGroup}/{name}"];

    public static IReadOnlyList<string> Rename(string volumeGroup, string from, string to) => [volumeGroup, from, to];

    /// <summary>The LVs of a volume group, sizes in bytes without unit.</summary>
    public static IReadOnlyList<string> List(string volumeGroup) =>
        ["--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,vg_name,lv_size,lv_attr,origin,pool_lv,lv_path,lv_tags", volumeGroup];

    /// <summary>Parses <c>lvs --reportformat json</c> as built by <see cref="List"/>.</summary>
    public static IReadOnlyList<LogicalVolume> ParseList(string json)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (JsonException e) { throw new FormatException($"lvs printed something that is not JSON: {e.Message}"); }
        var list = new List<LogicalVolume>();
        foreach (var report in root?["report"]?.AsArray() ?? [])
        {
            foreach (var lv in report?["lv"]?.AsArray() ?? [])
            {
                if (lv is null) continue;
                string S(string key) => lv[key]?.GetValue<string>() ?? "";
                var size = S("lv_size");
                list.Add(new LogicalVolume(
                    S("lv_name"), S("vg_name"),
                    long.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) ? bytes : throw new FormatException($"lvs: lv_size '{size}' is not a number of bytes"),
                    S("lv_attr"),
                    S("origin") is { Length: > 0 } o ? o : null,
                    S("pool_lv") is { Length: > 0 } p ? p : null,
                    S("lv_path") is { Length: > 0 } path ? path : $"/dev/{S("vg_name")}/{S("lv_name")}",
                    S("lv_tags").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
            }
        }
        return list;
    }

    /// <summary>True when an lvm error says the kernel lacks device-mapper (containers, some CI kernels).</summary>
    public static bool IsDeviceMapperMissing(string stderr) =>
        stderr.Contains("device-mapper", StringComparison.OrdinalIgnoreCase) &&
        (stderr.Contains("not detected", StringComparison.OrdinalIgnoreCase) || stderr.Contains("Failure to communicate", StringComparison.OrdinalIgnoreCase));
}
