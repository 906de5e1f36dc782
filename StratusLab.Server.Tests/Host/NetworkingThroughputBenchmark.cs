using System.Globalization;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Figures for the note: TCP throughput between two appliance VMs on a bridge network, and between a VM and its host over
/// the bridge and over QEMU user-mode networking, all virtio-net (GuestThroughput: busybox dd | nc in the guests, socat
/// on the host, in the server's namespace). Not part of the suite: run scripts/bench/networking-throughput.sh.
/// </summary>
[Explicit("benchmark: run scripts/bench/networking-throughput.sh")]
[Category("Benchmark")]
[NonParallelizable]
public class NetworkingThroughputBenchmark
{
    [Test, CancelAfter(600_000)]
    public async Task Throughput_between_vms_and_between_vm_and_host()
    {
        HostTools.AppliancePath();
        if (await NetworkNamespace.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        await using var span = await SpanningSetup.StartAsync("slbw", new Dictionary<string, string>
        {
            ["Compute:Accelerator"] = Environment.GetEnvironmentVariable("NETWORKING_BENCH_ACCEL") ?? "tcg",
        }, nodes: 0);
        await span.NetworkAsync("lab", "10.78.0.0/24", "10.78.0.1", ["default"]);
        // vm-b's first NIC is user-mode (its PAT ports are QEMU's), its second on the bridge.
        var a = await span.RunOnAsync("vm-a", span.LocalName, "lab");
        var b = (await InstanceApiTests.CreateAsync(span.Http, new { name = "vm-b", networks = new[] { "default", "lab" }, sshKeys = new[] { span.PublicKey }, forwardPorts = new[] { 5005 } }))["id"]!.GetValue<long>();
        var (vmA, vmB) = (await span.ReadyAsync(a), await span.ReadyAsync(b));
        var bench = new GuestThroughput((vm, command) => span.SshAsync(vm, command, timeoutSeconds: 300), 64);
        var bBridgeIp = vmB["nics"]![1]!["ip"]!.GetValue<string>();
        string F(double rate) => rate.ToString("0.0", CultureInfo.InvariantCulture) + " MiB/s";

        GuestThroughput.Report($"VM to VM over the bridge (virtio-net, tap, TCG): {F(await bench.GuestToGuestAsync(vmA, vmB, bBridgeIp, 5001))}");
        GuestThroughput.Report($"VM to host over the bridge (to the gateway): {F(await bench.GuestToNamespaceAsync(vmA, span.FrontEnd, "10.78.0.1", 5002))}");
        GuestThroughput.Report($"VM to host over QEMU user-mode networking (slirp, to 10.0.2.2): {F(await bench.GuestToNamespaceAsync(vmB, span.FrontEnd, "10.0.2.2", 5004))}");
        GuestThroughput.Report($"host to VM over the bridge: {F(await bench.NamespaceToGuestAsync(span.FrontEnd, vmA, 5003, SpanningSetup.Ip(vmA), 5003))}");
        GuestThroughput.Report($"host to VM over QEMU user-mode networking (through its PAT port): {F(await bench.NamespaceToGuestAsync(span.FrontEnd, vmB, 5005, "127.0.0.1", SpanningSetup.Pat(vmB, 5005)))}");
        GuestThroughput.Report(bench.Describe(vmA));
        foreach (var id in new[] { a, b }) await span.TerminateAsync(id);
    }
}
