using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Tests.Modules.Compute;

public class HotDiskTests
{
    [Test]
    public void A_local_path_becomes_a_file_node_under_the_format_node()
    {
        var disk = HotDisks.Describe("vol1", "file:///var/lib/stratuslab/volumes/abc.qcow2", "qcow2", readOnly: false);
        Assert.That(disk.NodeName, Is.EqualTo("node-vol1"));
        Assert.That(disk.Blockdev.ToJsonString(), Is.EqualTo(
            """{"driver":"qcow2","node-name":"node-vol1","read-only":false,"file":{"driver":"file","filename":"/var/lib/stratuslab/volumes/abc.qcow2"}}"""));
    }

    [Test]
    public void An_iscsi_url_uses_qemus_own_initiator()
    {
        var disk = HotDisks.Describe("vol2", "iscsi://127.0.0.1:3260/iqn.2011-01.eu.stratuslab:0f1e/1", "raw", readOnly: true);
        Assert.That(disk.Blockdev["file"]!.ToJsonString(), Is.EqualTo(
            """{"driver":"iscsi","transport":"tcp","portal":"127.0.0.1:3260","target":"iqn.2011-01.eu.stratuslab:0f1e","lun":1}"""));
        Assert.That(disk.Blockdev["read-only"]!.GetValue<bool>(), Is.True);
    }

    [Test]
    public void The_iscsi_port_defaults_to_3260() =>
        Assert.That(HotDisks.Describe("v", "iscsi://host/iqn.x:y/0", "raw", false).Blockdev["file"]!["portal"]!.GetValue<string>(), Is.EqualTo("host:3260"));

    [TestCase("http://x/disk", "raw")]
    [TestCase("iscsi://host/iqn-without-lun", "raw")]
    [TestCase("file:///x", "vmdk")]
    public void Unsupported_urls_and_formats_are_refused(string turl, string format) =>
        Assert.Throws<ArgumentException>(() => HotDisks.Describe("v", turl, format, false));

    [Test]
    public void A_block_device_uses_the_host_device_driver() =>
        Assert.That(HotDisks.Describe("v", "file:///dev/vg0/vol", "raw", false).Blockdev["file"]!["driver"]!.GetValue<string>(), Is.EqualTo("host_device"));
}
