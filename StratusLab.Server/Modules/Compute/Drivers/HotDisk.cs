using System.Globalization;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>A disk to hot-plug, with the QMP node and device names that identify it.</summary>
internal sealed record HotDisk(string DeviceId, string NodeName, JsonObject Blockdev);

/// <summary>Turns transport URLs into QMP blockdev-add arguments (pure).</summary>
internal static class HotDisks
{
    /// <summary>
    /// <c>file:///path</c> → a file node under a format node; <c>iscsi://host[:port]/target/lun</c> → an iscsi node
    /// (QEMU's own initiator) under a format node.
    /// </summary>
    public static HotDisk Describe(string deviceId, string turl, string format, bool readOnly)
    {
        if (format is not ("raw" or "qcow2")) throw new ArgumentException($"unsupported disk format '{format}'; use raw or qcow2");
        var uri = new Uri(turl);
        JsonObject file = uri.Scheme switch
        {
            // Block devices (LVM volumes) need QEMU's host_device driver; its file driver takes regular files only.
            "file" => new JsonObject { ["driver"] = uri.LocalPath.StartsWith("/dev/", StringComparison.Ordinal) ? "host_device" : "file", ["filename"] = uri.LocalPath },
            "iscsi" => Iscsi(uri),
            _ => throw new ArgumentException($"unsupported transport URL '{turl}'; use file:// or iscsi://"),
        };
        var node = "node-" + deviceId;
        var blockdev = new JsonObject
        {
            ["driver"] = format,
            ["node-name"] = node,
            ["read-only"] = readOnly,
            ["file"] = file,
        };
        return new HotDisk(deviceId, node, blockdev);
    }

    static JsonObject Iscsi(Uri uri)
    {
        var parts = uri.AbsolutePath.Trim('/').Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var lun))
            throw new ArgumentException($"'{uri}' is not iscsi://host[:port]/<target iqn>/<lun>");
        var port = uri.Port > 0 ? uri.Port : 3260;
        return new JsonObject
        {
            ["driver"] = "iscsi",
            ["transport"] = "tcp",
            ["portal"] = $"{uri.Host}:{port}",
            ["target"] = Uri.UnescapeDataString(parts[0]),
            ["lun"] = lun,
        };
    }
}
