using System.Globalization;
using System.Text;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Modules.Scheduling;

/// <summary>What one probe of an SSH node found.</summary>
internal sealed record NodeFacts(
    int Cpus, long MemoryMiB, long MemoryAvailableMiB, double LoadAverage, long DiskFreeMiB, bool RootWritable,
    IReadOnlyDictionary<string, string> Tools, string? QemuVersion, bool IscsiDriver, string KvmDevice, string Accelerator, string AcceleratorReason)
{
    /// <summary>The tools a node needs, with the Debian package that provides each.</summary>
    public static readonly IReadOnlyList<(string Tool, string Package)> RequiredTools =
    [
        ("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"), ("ip", "iproute2"), ("bridge", "iproute2"),
        ("nft", "nftables"), ("dnsmasq", "dnsmasq-base"),
    ];

    /// <summary>Everything the node lacks, each with how to fix it; empty when it can run VMs (pure).</summary>
    public IReadOnlyList<string> Missing()
    {
        var missing = new List<string>();
        foreach (var (tool, package) in RequiredTools)
            if (!Tools.TryGetValue(tool, out var path) || path.Length == 0)
                missing.Add($"{tool} (Debian package {package})");
        if (Tools.GetValueOrDefault("qemu-img") is { Length: > 0 } && !IscsiDriver)
            missing.Add("QEMU's iSCSI block driver (Debian package qemu-block-extra)");
        if (!RootWritable) missing.Add("a writable node directory");
        if (Cpus <= 0) missing.Add("a CPU count (nproc)");
        if (MemoryMiB <= 0) missing.Add("a memory size (/proc/meminfo)");
        return missing;
    }
}

/// <summary>Probes a node over SSH: one remote sh run that prints key=value lines, parsed by a pure function.</summary>
internal static class NodeProbe
{
    // Fixed text: the only input is the node directory, passed as a quoted positional argument ($1).
    const string Script = """
        root="$1"
        if mkdir -p "$root" 2>/dev/null && [ -w "$root" ]; then echo "root=ok"; else echo "root=no"; fi
        echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
        while read -r k v _; do case "$k" in MemTotal:) echo "memtotalkib=$v";; MemAvailable:) echo "memavailablekib=$v";; esac; done < /proc/meminfo
        read -r load _ < /proc/loadavg; echo "loadavg=$load"
        df -Pk "$root" 2>/dev/null | { read -r _; read -r _ _ _ avail _; echo "diskfreekib=$avail"; }
        for t in qemu-system-x86_64 qemu-img ip bridge nft dnsmasq socat; do echo "tool.$t=$(command -v "$t" 2>/dev/null)"; done
        if command -v qemu-system-x86_64 >/dev/null 2>&1; then echo "qemuversion=$(qemu-system-x86_64 --version 2>/dev/null | head -n 1)"; fi
        if command -v qemu-img >/dev/null 2>&1; then echo "qemuimgformats=$(qemu-img --help 2>/dev/null | grep 'Supported formats:')"; fi
        if command -v qemu-img >/dev/null 2>&1; then echo "qemuiscsiopen=$(timeout 10 qemu-img info --image-opts driver=iscsi 2>&1 | tr '\n' ' ' | head -c 400)"; fi
        if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo "kvmdevice=ok"; elif [ -e /dev/kvm ]; then echo "kvmdevice=/dev/kvm is not readable and writable"; else echo "kvmdevice=/dev/kvm does not exist"; fi
        """;

    /// <summary>The remote script: the facts, then (when /dev/kvm is usable) the same boot-sector KVM probe as on this machine.</summary>
    public static string BuildScript(string nodeRoot, bool bootProbe = true)
    {
        if (!bootProbe) return Script + "\n";
        var image = nodeRoot.TrimEnd('/') + "/kvm-probe.img";
        var sector = QemuProbe.BootSector();
        var octal = new StringBuilder();
        foreach (var b in sector.Take(12)) octal.Append('\\').Append(Convert.ToString(b, 8).PadLeft(3, '0'));
        // 5 s as on this machine (a boot sector needs far less under KVM); -k: a QEMU stuck in KVM_RUN may ignore SIGTERM.
        var qemu = SshTransport.RemoteCommandLine(["timeout", "-k", "2", "5", "qemu-system-x86_64", .. QemuProbe.Arguments("kvm", image)]);
        return Script + "\n" + $$"""
            if [ -r /dev/kvm ] && [ -w /dev/kvm ] && command -v qemu-system-x86_64 >/dev/null 2>&1; then
              { printf '{{octal}}'; head -c 498 /dev/zero; printf '\125\252'; } > {{SshTransport.Quote(image)}}
              {{qemu}} </dev/null >/dev/null 2>&1; echo "kvmprobe=$?"
              rm -f {{SshTransport.Quote(image)}}
            fi
            """ + "\n";
    }

    /// <summary>
    /// Runs the probe; throws <see cref="SshFailure"/> when the node cannot be reached. When the boot sector booted under
    /// KVM and <paramref name="probeKernel"/> (the appliance's kernel) is at hand, that kernel is copied to the node and
    /// booted there under KVM too, as on this machine: on nested hosts KVM passes the boot sector and then hangs in a
    /// kernel, and a node that says "kvm" then runs every VM as a guest that never prints a line.
    /// </summary>
    public static async Task<NodeFacts> RunAsync(SshTransport ssh, SshTarget target, string nodeRoot, bool bootProbe, CancellationToken ct,
        string? probeKernel = null)
    {
        // Generous: a busy node answers slowly, and a missed probe must mean "not answering", not "slow".
        var result = await ssh.RunAsync(target, ["sh", "-s", "--", nodeRoot], TimeSpan.FromSeconds(bootProbe ? 90 : 60), ct, standardInput: BuildScript(nodeRoot, bootProbe));
        var facts = Parse(result.StandardOutput);
        if (!bootProbe || facts.Accelerator != "kvm" || !facts.RootWritable) return facts;
        if (probeKernel is null)
            return facts with { AcceleratorReason = facts.AcceleratorReason + " (no appliance kernel on the server to boot there as well)" };
        return ParseKernelProbe(facts, await KernelProbeAsync(ssh, target, nodeRoot, probeKernel, ct));
    }

    /// <summary>Copies <paramref name="probeKernel"/> to the node, boots it there under KVM and removes it; returns the script's output (kvmkernel=ok|hang).</summary>
    public static async Task<string> KernelProbeAsync(SshTransport ssh, SshTarget target, string nodeRoot, string probeKernel, CancellationToken ct)
    {
        var root = nodeRoot.TrimEnd('/');
        var kernel = root + "/kvm-probe.vmlinuz";
        await ssh.CopyToAsync(target, probeKernel, kernel, TimeSpan.FromSeconds(60), ct);
        var outcome = await ssh.RunAsync(target, ["sh", "-s"], TimeSpan.FromSeconds(60), ct, standardInput: KernelProbeScript(kernel, root + "/kvm-probe.serial"));
        return outcome.StandardOutput;
    }

    /// <summary>The remote kernel probe: boots the kernel under KVM with its serial port in a file; prints kvmkernel=ok|hang (every path quoted).</summary>
    public static string KernelProbeScript(string kernel, string serial)
    {
        // 10 s as on this machine (a kernel reaches its panic in about 1 s under KVM); -k: a QEMU stuck in KVM_RUN may ignore SIGTERM.
        var qemu = SshTransport.RemoteCommandLine(["timeout", "-k", "2", "10", "qemu-system-x86_64", .. QemuProbe.KernelArguments("kvm", kernel, serial)]);
        return $$"""
            rm -f {{SshTransport.Quote(serial)}}
            {{qemu}} </dev/null >/dev/null 2>&1
            if grep -q {{SshTransport.Quote(QemuProbe.KernelEndOfBoot)}} {{SshTransport.Quote(serial)}} 2>/dev/null; then echo "kvmkernel=ok"; else echo "kvmkernel=hang"; fi
            rm -f {{SshTransport.Quote(kernel)}} {{SshTransport.Quote(serial)}}
            """ + "\n";
    }

    /// <summary>The facts with the kernel probe's verdict on KVM (pure).</summary>
    public static NodeFacts ParseKernelProbe(NodeFacts facts, string output) =>
        output.Contains("kvmkernel=ok", StringComparison.Ordinal)
            ? facts with { AcceleratorReason = "a Linux kernel booted under KVM on the node" }
            : facts with { Accelerator = "tcg", AcceleratorReason = "KVM boots a boot sector on the node but a Linux kernel hangs under it (nested virtualization?); VMs there run under TCG" };

    /// <summary>Parses the probe's key=value lines (pure).</summary>
    public static NodeFacts Parse(string output)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) continue;
            values[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        long Long(string key) => long.TryParse(values.GetValueOrDefault(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
        var tools = values.Where(kv => kv.Key.StartsWith("tool.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key[5..], kv => kv.Value, StringComparer.Ordinal);
        var formats = values.GetValueOrDefault("qemuimgformats") ?? "";
        // qemu-img lists module drivers whether or not their module is installed: opening one says "Unknown driver" when it is not.
        var iscsiOpen = values.GetValueOrDefault("qemuiscsiopen") ?? "";
        var iscsi = formats.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("iscsi", StringComparer.Ordinal) &&
            !iscsiOpen.Contains("Unknown driver", StringComparison.Ordinal) && !iscsiOpen.Contains("Unknown protocol", StringComparison.Ordinal);
        var kvmDevice = values.GetValueOrDefault("kvmdevice") ?? "not probed";
        var kvmProbe = values.GetValueOrDefault("kvmprobe");
        var (accelerator, why) = kvmProbe == QemuProbe.SuccessExitCode.ToString(CultureInfo.InvariantCulture)
            ? ("kvm", "a probe guest booted under KVM on the node")
            : kvmDevice != "ok" ? ("tcg", kvmDevice)
            : kvmProbe is null ? ("tcg", "the KVM probe did not run") : ("tcg", $"the KVM probe guest did not boot (exit code {kvmProbe})");
        double.TryParse(values.GetValueOrDefault("loadavg"), NumberStyles.Float, CultureInfo.InvariantCulture, out var load);
        return new NodeFacts(
            (int)Long("cpus"), Long("memtotalkib") / 1024, Long("memavailablekib") / 1024, load, Long("diskfreekib") / 1024,
            values.GetValueOrDefault("root") == "ok", tools, values.GetValueOrDefault("qemuversion") is { Length: > 0 } v ? v : null, iscsi,
            kvmDevice, accelerator, why);
    }
}
