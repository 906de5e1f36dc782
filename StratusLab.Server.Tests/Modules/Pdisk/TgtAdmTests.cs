using StratusLab.Server.Modules.Pdisk.Sharing;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>tgtadm argument building and the parsing of 'tgtadm --op show --mode target', on outputs recorded from tgt 1.0.85.</summary>
public class TgtAdmTests
{
    // Two targets: 900 with a read-only qcow2 LUN and two ACL entries, 901 with no data LUN and no ACL.
    const string TwoTargets = """
        Target 900: iqn.2011-01.eu.stratuslab:test900
            System information:
                Driver: iscsi
                State: ready
            I_T nexus information:
            LUN information:
                LUN: 0
                    Type: controller
                    SCSI ID: IET     03840000
                    SCSI SN: beaf9000
                    Size: 0 MB, Block size: 1
                    Online: Yes
                    Removable media: No
                    Prevent removal: No
                    Readonly: No
                    SWP: No
                    Thin-provisioning: No
                    Backing store type: null
                    Backing store path: None
                    Backing store flags: 
                LUN: 1
                    Type: disk
                    SCSI ID: IET     03840001
                    SCSI SN: beaf9001
                    Size: 68 MB, Block size: 512
                    Online: Yes
                    Removable media: No
                    Prevent removal: No
                    Readonly: Yes
                    SWP: No
                    Thin-provisioning: No
                    Backing store type: rdwr
                    Backing store path: /tmp/pdt/live.qcow2
                    Backing store flags: 
            Account information:
            ACL information:
                127.0.0.1
                10.0.0.5
        Target 901: iqn.2011-01.eu.stratuslab:test901
            System information:
                Driver: iscsi
                State: ready
            I_T nexus information:
            LUN information:
                LUN: 0
                    Type: controller
                    SCSI ID: IET     03850000
                    SCSI SN: beaf9010
                    Size: 0 MB, Block size: 1
                    Online: Yes
                    Removable media: No
                    Prevent removal: No
                    Readonly: No
                    SWP: No
                    Thin-provisioning: No
                    Backing store type: null
                    Backing store path: None
                    Backing store flags: 
            Account information:
            ACL information:
        """;

    // Targets 900 and 901 while QEMU's initiator is logged in to 900.
    const string Connected = """
        Target 900: iqn.2011-01.eu.stratuslab:test900
            System information:
                Driver: iscsi
                State: ready
            I_T nexus information:
                I_T nexus: 5
                    Initiator: iqn.2008-11.org.linux-kvm alias: none
                    Connection: 0
                        IP Address: 127.0.0.1
            LUN information:
                LUN: 0
                    Type: controller
                    SCSI ID: IET     03840000
                    SCSI SN: beaf9000
                    Size: 0 MB, Block size: 1
                    Online: Yes
                    Removable media: No
                    Prevent removal: No
                    Readonly: No
                    SWP: No
                    Thin-provisioning: No
                    Backing store type: null
                    Backing store path: None
                    Backing store flags: 
                LUN: 1
                    Type: disk
                    SCSI ID: IET     03840001
                    SCSI SN: beaf9001
                    Size: 68 MB, Block size: 512
                    Online: Yes
                    Removable media: No
                    Prevent removal: No
                    Readonly: Yes
                    SWP: No
                    Thin-provisioning: No
                    Backing store type: rdwr
                    Backing store path: /tmp/pdt/live.qcow2
                    Backing store flags: 
            Account information:
            ACL information:
                127.0.0.1
                10.0.0.5
        Target 901: iqn.2011-01.eu.stratuslab:test901
            System information:
                Driver: iscsi
                State: ready
            I_T nexus information:
            LUN information:
                LUN: 0
                    Type: controller
                    SCSI ID: IET     03850000
                    SCSI SN: beaf9010
                    Size: 0 MB, Block size: 1
                    Online: Yes
                    Removable media: No
                    Prevent removal: No
                    Readonly: No
                    SWP: No
                    Thin-provisioning: No
                    Backing store type: null
                    Backing store path: None
                    Backing store flags: 
            Account information:
            ACL information:
        """;

    [Test]
    public void Targets_luns_acls_and_backing_paths_are_read()
    {
        var targets = TgtAdm.ParseTargets(TwoTargets);
        Assert.That(targets.Select(t => (t.Tid, t.Name)), Is.EqualTo(new[] { (900, "iqn.2011-01.eu.stratuslab:test900"), (901, "iqn.2011-01.eu.stratuslab:test901") }));
        var first = targets[0];
        Assert.That(first.Luns.Select(l => l.Lun), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(first.Luns[0].BackingPath, Is.Null, "LUN 0 is tgt's controller");
        Assert.That(first.BackingPath, Is.EqualTo("/tmp/pdt/live.qcow2"));
        Assert.That(first.Luns[1].ReadOnly, Is.True);
        Assert.That(first.Luns[1].Size, Is.EqualTo("68 MB, Block size: 512"));
        Assert.That(first.Acl, Is.EqualTo(new[] { "127.0.0.1", "10.0.0.5" }));
        Assert.That(first.ConnectedAddresses, Is.Empty);
        Assert.That(targets[1].BackingPath, Is.Null);
        Assert.That(targets[1].Acl, Is.Empty);
    }

    [Test]
    public void Connected_initiators_are_read_from_the_nexus_section()
    {
        var target = TgtAdm.ParseTargets(Connected).First(t => t.Tid == 900);
        Assert.That(target.ConnectedAddresses, Is.EqualTo(new[] { "127.0.0.1" }));
        Assert.That(target.Luns.Select(l => l.Lun), Is.EqualTo(new[] { 0, 1 }), "the nexus lines do not confuse the LUN section");
    }

    [Test]
    public void No_targets_is_an_empty_list() => Assert.That(TgtAdm.ParseTargets(""), Is.Empty);

    [Test]
    public void A_broken_target_line_is_a_format_error() => Assert.Throws<FormatException>(() => TgtAdm.ParseTargets("Target x: iqn"));

    [TestCase(new int[0], 1)]
    [TestCase(new[] { 1, 2, 3 }, 4)]
    [TestCase(new[] { 1, 3 }, 2)]
    [TestCase(new[] { 2, 900 }, 1)]
    public void The_lowest_free_target_id_is_taken(int[] taken, int expected) =>
        Assert.That(TgtAdm.LowestFreeTid(taken.Select(t => new TgtTarget(t, "x", [], [], []))), Is.EqualTo(expected));

    [Test]
    public void Ids_tried_in_vain_are_skipped() =>
        Assert.That(TgtAdm.LowestFreeTid([new TgtTarget(1, "x", [], [], [])], [2, 3]), Is.EqualTo(4));

    [Test]
    public void Target_names_carry_the_volume_uuid()
    {
        var uuid = Guid.Parse("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b");
        Assert.That(TgtAdm.IqnOf(uuid), Is.EqualTo("iqn.2011-01.eu.stratuslab:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"));
        Assert.That(TgtAdm.UuidOf(TgtAdm.IqnOf(uuid)), Is.EqualTo(uuid));
        Assert.That(TgtAdm.UuidOf("iqn.2011-01.eu.stratuslab:test900"), Is.Null);
        Assert.That(TgtAdm.UuidOf("iqn.2003-01.org.other:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"), Is.Null);
    }

    [TestCase("127.0.0.1", 3260, "iscsi://127.0.0.1:3260/iqn.2011-01.eu.stratuslab:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/1")]
    [TestCase("::1", 3261, "iscsi://[::1]:3261/iqn.2011-01.eu.stratuslab:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/1")]
    public void The_transport_url_names_portal_target_and_lun(string portal, int port, string expected) =>
        Assert.That(TgtAdm.Turl(portal, port, Guid.Parse("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")), Is.EqualTo(expected));

    [Test]
    public void Every_command_addresses_the_iscsi_driver_by_target_id()
    {
        Assert.That(TgtAdm.NewTarget(7, "iqn.x:y"), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", "7", "-T", "iqn.x:y" }));
        Assert.That(TgtAdm.NewLun(7, "/v/a.raw"), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", "7", "--lun", "1", "-b", "/v/a.raw" }));
        Assert.That(TgtAdm.SetReadOnly(7, true), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "update", "--mode", "logicalunit", "--tid", "7", "--lun", "1", "--params", "readonly=1" }));
        Assert.That(TgtAdm.Bind(7, "127.0.0.1"), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "7", "-I", "127.0.0.1" }));
        Assert.That(TgtAdm.SetParameter(7, "MaxBurstLength", "16776192"), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "update", "--mode", "target", "--tid", "7", "-n", "MaxBurstLength", "-v", "16776192" }));
        Assert.That(TgtAdm.DeleteTarget(7), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", "7", "--force" }));
        Assert.That(TgtAdm.StartDaemon("127.0.0.1", 3260), Is.EqualTo(new[] { "--iscsi", "portal=127.0.0.1:3260" }));
    }

    [TestCase("tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected", true)]
    [TestCase("tgtadm: can't connect to the tgt daemon, Connection refused", true)]
    [TestCase("tgtadm: this target already exists", false)]
    public void A_missing_daemon_is_recognised(string stderr, bool down) => Assert.That(TgtAdm.IsDaemonDown(stderr), Is.EqualTo(down));

    [Test]
    public void Collisions_and_missing_targets_are_recognised()
    {
        Assert.That(TgtAdm.IsAlreadyExists("tgtadm: this target already exists"), Is.True);
        Assert.That(TgtAdm.IsNotFound("tgtadm: can't find the target"), Is.True);
    }

    [Test]
    public void Node_initiators_and_portals_have_their_own_commands()
    {
        Assert.That(TgtAdm.BindInitiatorName(7, "iqn.2011-01.eu.stratuslab.node:ab12"),
            Is.EqualTo(new[] { "--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "7", "--initiator-name", "iqn.2011-01.eu.stratuslab.node:ab12" }));
        Assert.That(TgtAdm.UnbindInitiatorName(7, "iqn.2011-01.eu.stratuslab.node:ab12"),
            Is.EqualTo(new[] { "--lld", "iscsi", "--op", "unbind", "--mode", "target", "--tid", "7", "--initiator-name", "iqn.2011-01.eu.stratuslab.node:ab12" }));
        Assert.That(TgtAdm.NewPortal("198.18.0.1", 3260), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "new", "--mode", "portal", "--param", "portal=198.18.0.1:3260" }));
        Assert.That(TgtAdm.NewPortal("fd00::1", 3260)[^1], Is.EqualTo("portal=[fd00::1]:3260"));
    }

    [Test]
    public void Portals_are_read_from_tgtadm_show_portal()
    {
        // Recorded from tgt 1.0.85 with one portal added at run time.
        const string shown = "Portal: 127.0.0.1:3260,1\nPortal: 198.18.4.1:3260,1\n";
        Assert.That(TgtAdm.ParsePortals(shown), Is.EqualTo(new[] { "127.0.0.1:3260", "198.18.4.1:3260" }));
        Assert.That(TgtAdm.ParsePortals(""), Is.Empty);
    }

    [TestCase("127.0.0.1", false)]
    [TestCase("10.0.0.0/24", false)]
    [TestCase("ALL", false)]
    [TestCase("iqn.2011-01.eu.stratuslab.node:ab12", true)]
    public void Acl_entries_that_name_initiators_are_told_from_addresses(string entry, bool isName) => Assert.That(TgtAdm.IsInitiatorName(entry), Is.EqualTo(isName));

    [TestCase("[{\"dst\":\"198.18.0.2\",\"dev\":\"sln1\",\"prefsrc\":\"198.18.0.1\",\"flags\":[],\"uid\":0,\"cache\":[]}]", "198.18.0.1")]
    [TestCase("[{\"type\":\"local\",\"dst\":\"127.0.0.1\",\"dev\":\"lo\",\"prefsrc\":\"127.0.0.1\"}]", "127.0.0.1")]
    [TestCase("[{\"dst\":\"10.0.0.2\",\"dev\":\"eth0\"}]", null)]
    public void The_address_a_node_reaches_this_machine_at_is_the_source_of_the_route_to_it(string json, string? expected) =>
        Assert.That(NodeAccess.ParseRouteSource(json), Is.EqualTo(expected));

    [Test]
    public void Connections_are_read_with_their_session_connection_initiator_and_address()
    {
        const string text = """
            Session: 2
                Connection: 0
                    Initiator: iqn.2011-01.eu.stratuslab.node:aa alias: none
                    IP Address: 10.0.0.2
            Session: 5
                Connection: 1
                    Initiator: iqn.2011-01.eu.stratuslab.node:bb
                    IP Address: 10.0.1.2
            """;
        Assert.That(TgtAdm.ParseConnections(text), Is.EqualTo(new[]
        {
            new TgtConnection(2, 0, "iqn.2011-01.eu.stratuslab.node:aa", "10.0.0.2"),
            new TgtConnection(5, 1, "iqn.2011-01.eu.stratuslab.node:bb", "10.0.1.2"),
        }));
        Assert.That(TgtAdm.ParseConnections(""), Is.Empty);
    }

    [Test]
    public void A_connection_is_shown_and_closed_by_target_session_and_connection_id()
    {
        Assert.That(TgtAdm.ShowConnections(3), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "show", "--mode", "conn", "--tid", "3" }));
        Assert.That(TgtAdm.DeleteConnection(3, 2, 0), Is.EqualTo(new[] { "--lld", "iscsi", "--op", "delete", "--mode", "conn", "--tid", "3", "--sid", "2", "--cid", "0" }));
    }
}
