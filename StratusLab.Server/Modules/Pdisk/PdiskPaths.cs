using System.Security.Cryptography;
using System.Text;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Pdisk;

/// <summary>Where this server keeps volume files and staged transfers, and the mark that tells its LVs from others'.</summary>
internal sealed class PdiskPaths(ServerOptions options, PdiskOptions pdisk)
{
    /// <summary>Pdisk:VolumesDir, else &lt;data-dir&gt;/volumes.</summary>
    public string VolumesDir { get; } = Path.GetFullPath(string.IsNullOrEmpty(pdisk.VolumesDir)
        ? Path.Combine(options.DataDir, "volumes")
        : pdisk.VolumesDir);

    /// <summary>Downloads, uploads and conversions in progress; emptied on start (nothing can be in progress then).</summary>
    public string StagingDir => Path.Combine(VolumesDir, ".staging");

    /// <summary>An LVM tag unique to this data dir, so two servers sharing a volume group never touch each other's LVs.</summary>
    public string LvmTag { get; } = "stratuslab_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(options.DataDir)))[..12];

    /// <summary>A fresh file name in the staging directory.</summary>
    public string NewStagingFile(string suffix)
    {
        Directory.CreateDirectory(StagingDir);
        return Path.Combine(StagingDir, Guid.NewGuid().ToString("N") + suffix);
    }
}
