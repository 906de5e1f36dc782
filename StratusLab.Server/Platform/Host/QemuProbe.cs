namespace StratusLab.Server.Platform.Host;

/// <summary>The boot-sector accelerator probe, the same on this machine and on SSH nodes: a guest that exits QEMU with a known code.</summary>
public static class QemuProbe
{
    // A 512-byte boot sector: writes 'K' to the debug console, then asks isa-debug-exit to end QEMU with code (0x10 << 1) | 1 = 33.
    static readonly byte[] Code = [0xB0, 0x4B, 0xE6, 0xE9, 0xB0, 0x10, 0xE6, 0xF4, 0xFA, 0xF4, 0xEB, 0xFD];

    public const int SuccessExitCode = 33;

    /// <summary>The probe image: the code, zeros, and the boot signature.</summary>
    public static byte[] BootSector()
    {
        var sector = new byte[512];
        Code.CopyTo(sector, 0);
        sector[510] = 0x55;
        sector[511] = 0xAA;
        return sector;
    }

    /// <summary>The probe's arguments: boot the sector with the given accelerator (pure).</summary>
    public static IReadOnlyList<string> Arguments(string accelerator, string image) =>
    [
        "-accel", accelerator, .. accelerator == "kvm" ? new[] { "-cpu", "host" } : [],
        "-machine", "pc", "-m", "16", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-drive", $"file={image.Replace(",", ",,", StringComparison.Ordinal)},format=raw,if=ide",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ];

    /// <summary>
    /// The kernel probe's arguments: boot a Linux kernel without a root fs, so it panics and QEMU exits (pure). On nested
    /// hosts KVM passes the boot sector and then hangs in a kernel, so a kernel is the honest test wherever one is at hand.
    /// </summary>
    public static IReadOnlyList<string> KernelArguments(string accelerator, string kernel, string serialLog) =>
    [
        "-accel", accelerator, .. accelerator == "kvm" ? new[] { "-cpu", "host" } : [],
        "-machine", "pc", "-m", "128", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-serial", "file:" + serialLog,
        "-kernel", kernel, "-append", "console=ttyS0 panic=-1 quiet",
    ];

    /// <summary>What the kernel probe's serial log shows when the kernel got through its boot (to its panic without a root fs).</summary>
    public const string KernelEndOfBoot = "Kernel panic";
}
