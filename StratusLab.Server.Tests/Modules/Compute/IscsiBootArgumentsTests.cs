using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>Unit tier: a boot disk an SSH node opens over iSCSI, with its ORIGIN's export as the qcow2's backing.</summary>
public class IscsiBootArgumentsTests
{
    const string Clone = "iscsi://10.0.0.1:3260/iqn.2011-01.eu.stratuslab:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/1";
    const string Origin = "iscsi://10.0.0.1:3260/iqn.2011-01.eu.stratuslab:11111111-2222-3333-4444-555555555555/1";

    static VmSpec Spec(VmDisk disk) => new(7, "vm", "/data/instances/7", 1, 128, [disk], null, [], []);

    [Test]
    public void A_clone_opened_over_iscsi_gets_its_backing_as_a_read_only_iscsi_node_that_replaces_the_header_path()
    {
        var args = QemuDriver.BuildArguments(Spec(new VmDisk(Clone, "qcow2") { BackingPath = Origin, BackingFormat = "raw", BackingInitiator = "iqn.2011-01.eu.stratuslab.node:aa" }), "tcg", QemuPaths.For("/n/instances/7"));
        var line = string.Join(' ', args);
        Assert.That(line, Does.Contain("-blockdev driver=iscsi,node-name=disk0-backing-file,transport=tcp,portal=10.0.0.1:3260,target=iqn.2011-01.eu.stratuslab:11111111-2222-3333-4444-555555555555,lun=1,initiator-name=iqn.2011-01.eu.stratuslab.node:aa,read-only=on " +
            "-blockdev driver=raw,node-name=disk0-backing,file=disk0-backing-file,read-only=on"));
        Assert.That(line, Does.Contain($"-drive file={Clone},format=qcow2,if=none,id=disk0,cache=writeback,discard=unmap,backing=disk0-backing -device virtio-blk-pci,drive=disk0,id=vd0,bootindex=0"));
        Assert.That(line.IndexOf("node-name=disk0-backing,", StringComparison.Ordinal), Is.LessThan(line.IndexOf("id=disk0,", StringComparison.Ordinal)), "the backing node exists before the drive names it");
    }

    [Test]
    public void A_disk_without_backing_is_one_drive_as_before() =>
        Assert.That(string.Join(' ', QemuDriver.BuildArguments(Spec(new VmDisk(Clone, "qcow2")), "tcg", QemuPaths.For("/n/instances/7"))), Does.Not.Contain("-blockdev").And.Not.Contain("backing="));

    [TestCase("iscsi://10.0.0.1:3260/iqn.2011-01.eu.stratuslab:x/1", "10.0.0.1:3260", "iqn.2011-01.eu.stratuslab:x", 1)]
    [TestCase("iscsi://node.example/iqn.2011-01.eu.stratuslab:x/3", "node.example:3260", "iqn.2011-01.eu.stratuslab:x", 3)]
    [TestCase("iscsi://[fd00::1]:3261/iqn.2011-01.eu.stratuslab:x/1", "[fd00::1]:3261", "iqn.2011-01.eu.stratuslab:x", 1)]
    public void An_iscsi_url_is_read_as_portal_target_and_lun(string url, string portal, string target, int lun) =>
        Assert.That(IscsiTarget.Parse(url), Is.EqualTo(new IscsiTarget(portal, target, lun)));

    [TestCase("/data/volumes/x.qcow2")]
    [TestCase("iscsi://10.0.0.1/iqn.x")]
    [TestCase("iscsi://10.0.0.1/iqn.x/one")]
    [TestCase("iscsi://10.0.0.1/iqn,x/1")]
    public void Anything_else_is_not_an_iscsi_lun(string url) => Assert.Throws<FormatException>(() => IscsiTarget.Parse(url));
}
