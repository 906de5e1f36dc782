using StratusLab.Server.Modules.Compute;
using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Tests.Modules.Compute;

public class QemuArgumentsTests
{
    static VmSpec Spec(IReadOnlyList<string>? raw = null) => new(
        42, "web", "/data/instances/42", 2, 512,
        [new VmDisk("/data/instances/42/disk.qcow2", "qcow2")], "/data/instances/42/context.iso",
        [new VmNic("52:54:00:00:00:2a", [new PortForward(22, "127.0.0.1", 15000), new PortForward(80, "127.0.0.1", 15001)])],
        raw ?? []);

    static string Line(IReadOnlyList<string> args) => string.Join(' ', args);

    [Test]
    public void A_tcg_vm_gets_virtio_disk_and_nic_qmp_pidfile_serial_log_and_daemonizes()
    {
        var args = QemuDriver.BuildArguments(Spec(), "tcg", QemuPaths.For("/data/instances/42", "/data/consoles/42.log"));
        var line = Line(args);
        Assert.Multiple(() =>
        {
            Assert.That(line, Does.StartWith("-name stratuslab-42,process=stratuslab-42 -machine pc -accel tcg -smp 2 -m 512"));
            Assert.That(line, Does.Not.Contain("-cpu host"));
            Assert.That(line, Does.Contain("-qmp unix:/data/instances/42/qmp.sock,server=on,wait=off"));
            Assert.That(line, Does.Contain("-pidfile /data/instances/42/qemu.pid"));
            Assert.That(line, Does.Contain("-chardev socket,id=serial0,path=/data/instances/42/console.sock,server=on,wait=off,logfile=/data/consoles/42.log,logappend=on -serial chardev:serial0"),
                "the serial port is a socket for the interactive console, logged outside the VM directory");
            Assert.That(line, Does.Contain("-qmp unix:/data/instances/42/events.sock,server=on,wait=off"), "a second monitor for events");
            Assert.That(line, Does.Contain("-device pvpanic -action panic=pause"));
            Assert.That(line, Does.Contain("-device virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=5"), "a balloon for the guest's memory statistics");
            Assert.That(args, Does.Contain("-daemonize"));
            Assert.That(line, Does.Contain("-drive file=/data/instances/42/disk.qcow2,format=qcow2,if=none,id=disk0,cache=writeback,discard=unmap -device virtio-blk-pci,drive=disk0,id=vd0,bootindex=0"));
            Assert.That(line, Does.Contain("id=context,media=cdrom,readonly=on -device ide-cd,drive=context"));
            Assert.That(line, Does.Contain("-netdev user,id=net0,hostfwd=tcp:127.0.0.1:15000-:22,hostfwd=tcp:127.0.0.1:15001-:80 -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:2a"));
        });
    }

    [Test]
    public void A_vm_has_a_standard_vga_screen_served_by_vnc_on_a_unix_socket_in_its_directory_and_no_window()
    {
        var args = QemuDriver.BuildArguments(Spec(), "tcg", QemuPaths.For("/data/instances/42"));
        var line = Line(args);
        Assert.That(line, Does.Contain("-display none -vga std -vnc unix:/data/instances/42/vnc.sock"));
        Assert.That(args.Count(a => a == "-vnc"), Is.EqualTo(1), "one VNC server, on the socket only (never a TCP port)");
        Assert.That(Line(QemuDriver.BuildArguments(Spec(), "tcg", QemuPaths.For("/data/a,b/42"))), Does.Contain("-vnc unix:/data/a,,b/42/vnc.sock"), "commas in the path are escaped");
    }

    [Test]
    public void A_kvm_vm_uses_the_host_cpu()
    {
        var line = Line(QemuDriver.BuildArguments(Spec(), "kvm", QemuPaths.For("/d")));
        Assert.That(line, Does.Contain("-accel kvm -cpu host"));
    }

    [Test]
    public void Commas_in_paths_are_escaped_for_qemu_option_syntax()
    {
        var spec = Spec() with { Disks = [new VmDisk("/data/a,b/disk.qcow2", "qcow2")] };
        Assert.That(Line(QemuDriver.BuildArguments(spec, "tcg", QemuPaths.For("/d"))), Does.Contain("file=/data/a,,b/disk.qcow2,format=qcow2"));
    }

    [Test]
    public void Raw_admin_arguments_come_last()
    {
        var args = QemuDriver.BuildArguments(Spec(["-rtc", "base=utc"]), "tcg", QemuPaths.For("/d"));
        Assert.That(args.TakeLast(2), Is.EqualTo(new[] { "-rtc", "base=utc" }));
    }

    [Test]
    public void A_deep_directory_gets_a_short_qmp_socket_path()
    {
        var deep = "/" + string.Join('/', Enumerable.Repeat("very-long-directory-name", 6));
        var paths = QemuPaths.For(deep);
        Assert.That(paths.QmpSocket.Length, Is.LessThan(108));
        Assert.That(paths.PidFile, Does.StartWith(deep));
        Assert.That(QemuPaths.For(deep).QmpSocket, Is.EqualTo(paths.QmpSocket), "the same directory always maps to the same socket");
    }

    [TestCase(1, 0, "52:54:00:00:00:01")]
    [TestCase(300, 0, "52:54:00:00:01:2c")]
    [TestCase(300, 1, "52:54:01:00:01:2c")]
    public void Macs_are_derived_from_the_instance_and_nic(long id, int nic, string mac) => Assert.That(QemuDriver.MacFor(id, nic), Is.EqualTo(mac));

    [Test]
    public void Only_qemu_processes_of_this_data_dir_are_recognised_as_ours()
    {
        string[] ours = ["qemu-system-x86_64", "-name", "stratuslab-7,process=stratuslab-7", "-pidfile", "/srv/sl/instances/7/qemu.pid"];
        string[] otherServer = ["qemu-system-x86_64", "-name", "stratuslab-7,process=stratuslab-7", "-pidfile", "/other/instances/7/qemu.pid"];
        string[] foreign = ["qemu-system-x86_64", "-name", "my-vm", "-pidfile", "/srv/sl/instances/7/qemu.pid"];
        Assert.That(QemuDriver.InstanceIdOf(ours, "/srv/sl/instances/"), Is.EqualTo(7));
        Assert.That(QemuDriver.InstanceIdOf(otherServer, "/srv/sl/instances/"), Is.Null);
        Assert.That(QemuDriver.InstanceIdOf(foreign, "/srv/sl/instances/"), Is.Null);
    }

    [Test]
    public void The_kvm_probe_boots_a_kernel_that_panics_and_does_not_reboot()
    {
        var line = Line(QemuDriver.KernelProbeArguments("kvm", "/k/vmlinuz", "/tmp/p/serial.log"));
        Assert.That(line, Does.Contain("-accel kvm -cpu host").And.Contain("-no-reboot").And.Contain("-kernel /k/vmlinuz -append console=ttyS0 panic=-1"));
    }
}
