using StratusLab.Server.Modules.Scheduling;
using StratusLab.Server.Modules.Scheduling.Expressions;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Tests.Modules.Scheduling;

/// <summary>Unit tier: the SSH node probe's parser and verdict, ssh's failure classes and remote quoting, and placement around ERROR hosts.</summary>
public class SshNodeProbeTests
{
    const string Healthy = """
        root=ok
        cpus=8
        memtotalkib=16384000
        memavailablekib=8192000
        loadavg=2.00
        diskfreekib=10485760
        tool.qemu-system-x86_64=/usr/bin/qemu-system-x86_64
        tool.qemu-img=/usr/bin/qemu-img
        tool.ip=/usr/sbin/ip
        tool.bridge=/usr/sbin/bridge
        tool.nft=/usr/sbin/nft
        tool.dnsmasq=/usr/sbin/dnsmasq
        tool.socat=
        qemuversion=QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)
        qemuimgformats=Supported formats: blkdebug file host_device iscsi iser luks nbd qcow2 raw
        kvmdevice=/dev/kvm does not exist
        """;

    [Test]
    public void A_healthy_probe_gives_the_capacity_the_tools_and_tcg_without_kvm()
    {
        var facts = NodeProbe.Parse(Healthy);
        Assert.That(facts.Cpus, Is.EqualTo(8));
        Assert.That(facts.MemoryMiB, Is.EqualTo(16000));
        Assert.That(facts.MemoryAvailableMiB, Is.EqualTo(8000));
        Assert.That(facts.DiskFreeMiB, Is.EqualTo(10240));
        Assert.That(facts.LoadAverage, Is.EqualTo(2.0));
        Assert.That(facts.IscsiDriver, Is.True);
        Assert.That(facts.QemuVersion, Does.StartWith("QEMU emulator version 7.2"));
        Assert.That((facts.Accelerator, facts.AcceleratorReason), Is.EqualTo(("tcg", "/dev/kvm does not exist")));
        Assert.That(facts.Missing(), Is.Empty, "socat is reported but not required");
    }

    [TestCase("kvmdevice=ok\nkvmprobe=33", "kvm")]
    [TestCase("kvmdevice=ok\nkvmprobe=124", "tcg")]
    [TestCase("kvmdevice=ok", "tcg")]
    public void The_accelerator_is_kvm_only_when_the_probe_guest_booted_under_kvm(string lines, string accelerator)
    {
        var facts = NodeProbe.Parse(Healthy.Replace("kvmdevice=/dev/kvm does not exist", lines));
        Assert.That(facts.Accelerator, Is.EqualTo(accelerator), facts.AcceleratorReason);
    }

    [TestCase("kvmkernel=ok\n", "kvm", "a Linux kernel booted under KVM on the node")]
    [TestCase("kvmkernel=hang\n", "tcg", "a Linux kernel hangs under it")]
    [TestCase("", "tcg", "a Linux kernel hangs under it")]
    public void A_boot_sector_under_kvm_is_not_enough_the_appliance_kernel_must_boot_there_too(string kernelProbe, string accelerator, string reason)
    {
        var sectorPassed = NodeProbe.Parse(Healthy.Replace("kvmdevice=/dev/kvm does not exist", "kvmdevice=ok\nkvmprobe=33"));
        Assert.That(sectorPassed.Accelerator, Is.EqualTo("kvm"));
        var facts = NodeProbe.ParseKernelProbe(sectorPassed, kernelProbe);
        Assert.That(facts.Accelerator, Is.EqualTo(accelerator));
        Assert.That(facts.AcceleratorReason, Does.Contain(reason));
    }

    [Test]
    public void The_kernel_probe_script_boots_the_copied_kernel_under_kvm_with_every_path_quoted()
    {
        var script = NodeProbe.KernelProbeScript("/srv/node root's/kvm-probe.vmlinuz", "/srv/node root's/kvm-probe.serial");
        Assert.That(script, Does.Contain("timeout -k 2 10 qemu-system-x86_64 -accel kvm -cpu host"));
        Assert.That(script, Does.Contain("-kernel '/srv/node root'\\''s/kvm-probe.vmlinuz'"));
        Assert.That(script, Does.Contain("'file:/srv/node root'\\''s/kvm-probe.serial'"));
        Assert.That(script, Does.Contain("rm -f '/srv/node root'\\''s/kvm-probe.vmlinuz'"), "nothing of the probe stays on the node");
    }

    [TestCase("tool.qemu-system-x86_64=/usr/bin/qemu-system-x86_64", "tool.qemu-system-x86_64=", "qemu-system-x86_64 (Debian package qemu-system-x86)")]
    [TestCase("tool.dnsmasq=/usr/sbin/dnsmasq", "tool.dnsmasq=", "dnsmasq (Debian package dnsmasq-base)")]
    [TestCase("tool.nft=/usr/sbin/nft", "", "nft (Debian package nftables)")]
    [TestCase(" iscsi iser", " iser", "QEMU's iSCSI block driver (Debian package qemu-block-extra)")]
    // qemu-img --help lists iscsi even when qemu-block-extra (its module) is missing; opening it tells.
    [TestCase("root=ok", "root=ok\nqemuiscsiopen=qemu-img: Could not open 'driver=iscsi': Unknown driver 'iscsi'", "QEMU's iSCSI block driver (Debian package qemu-block-extra)")]
    [TestCase("root=ok", "root=no", "a writable node directory")]
    public void What_a_node_lacks_is_named_with_its_package(string from, string to, string missing)
    {
        var facts = NodeProbe.Parse(Healthy.Replace(from, to));
        Assert.That(facts.Missing(), Is.EqualTo(new[] { missing }));
    }

    [Test]
    public void The_probe_script_takes_the_node_directory_only_quoted()
    {
        var script = NodeProbe.BuildScript("/srv/node root's");
        Assert.That(script, Does.Contain("'/srv/node root'\\''s/kvm-probe.img'"));
        Assert.That(script, Does.Contain("qemu-system-x86_64 -accel kvm -cpu host"));
    }

    [TestCase("ssh: connect to host 198.18.0.2 port 2222: Connection refused", SshFailureKind.Unreachable)]
    [TestCase("ssh: connect to host 198.18.0.2 port 22: Connection timed out", SshFailureKind.Timeout)]
    [TestCase("root@198.18.0.2: Permission denied (publickey).", SshFailureKind.AuthenticationFailed)]
    [TestCase("@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.", SshFailureKind.HostKeyChanged)]
    [TestCase("bash: line 1: qemu-img: command not found", null)]
    public void Ssh_failures_are_told_apart_by_what_ssh_says(string stderr, SshFailureKind? kind) =>
        Assert.That(SshTransport.Classify(stderr), Is.EqualTo(kind));

    [TestCase(new[] { "mkdir", "-p", "/srv/a b" }, "mkdir -p '/srv/a b'")]
    [TestCase(new[] { "echo", "$(reboot)", "a;b", "it's" }, "echo '$(reboot)' 'a;b' 'it'\\''s'")]
    [TestCase(new[] { "test", "" }, "test ''")]
    public void Remote_arguments_reach_the_node_shell_as_single_words(string[] args, string line) =>
        Assert.That(SshTransport.RemoteCommandLine(args), Is.EqualTo(line));

    [Test]
    public void A_host_in_ERROR_is_never_chosen_and_says_why()
    {
        var request = new PlacementRequest(1, 1, 128, null, null, Policy.Parse("packing"));
        HostState Host(string name, string state) => new(name, "ssh", true, 8, 8192, 0, 0, 0, 0, 0, state, state == "ERROR" ? "missing on the node: qemu-img" : null);
        var onlyError = Placement.Choose(request, [Host("node1", "ERROR")]);
        Assert.That(onlyError.Host, Is.Null);
        Assert.That(onlyError.Message, Is.EqualTo("node1: in state ERROR (missing on the node: qemu-img)"));
        Assert.That(Placement.Choose(request, [Host("node1", "ERROR"), Host("node2", "OK")]).Host, Is.EqualTo("node2"));
    }
}
