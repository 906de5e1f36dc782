namespace StratusLab.Server.Platform.Configuration;

/// <summary>Where the bundled test appliance (built by scripts/appliance/build.sh) is found.</summary>
public static class Appliance
{
    public const string Name = "stratuslab-appliance";

    /// <summary>The appliance image: <paramref name="configured"/> (Compute:ApplianceImage), $STRATUSLAB_APPLIANCE_DIR, or ~/.cache/stratuslab/appliance; null when not built.</summary>
    public static string? ImagePath(string? configured)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(configured)) candidates.Add(configured);
        if (Environment.GetEnvironmentVariable("STRATUSLAB_APPLIANCE_DIR") is { Length: > 0 } dir)
            candidates.Add(Path.Combine(dir, Name + ".qcow2"));
        candidates.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "stratuslab", "appliance", Name + ".qcow2"));
        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>The appliance's kernel, built next to the image; the KVM probe boots it.</summary>
    public static string? KernelPath(string? configured) =>
        ImagePath(configured) is { } image && Path.ChangeExtension(image, ".vmlinuz") is var kernel && File.Exists(kernel) ? kernel : null;
}
