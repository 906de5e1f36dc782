using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// One-stream TCP throughput for the networking benchmarks: appliance guests send with busybox dd | nc, timed by the
/// sender's /proc/uptime (dd ends when the last block is handed to nc; nc itself lingers after its input ends, so timing it
/// would add its timeout); the receiver (a guest's nc -e counter, or socat in a namespace) counts what arrived, so a
/// transfer that did not happen cannot pass for a fast one. Commands reach guests through <paramref name="ssh"/>.
/// Size from NETWORKING_BENCH_MIB, figures to NETWORKING_BENCH_OUT as well as the test's output.
/// </summary>
public sealed partial class GuestThroughput(Func<JsonNode, string, Task<string>> ssh, int defaultMiB)
{
    const int BlockKiB = 64;

    public int MiB { get; } = int.Parse(Environment.GetEnvironmentVariable("NETWORKING_BENCH_MIB") ?? defaultMiB.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    int Blocks => MiB * 1024 / BlockKiB;
    long Bytes => Blocks * BlockKiB * 1024L;

    public static void Report(string line)
    {
        TestContext.Progress.WriteLine(line);
        if (Environment.GetEnvironmentVariable("NETWORKING_BENCH_OUT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    /// <summary>MiB/s from <paramref name="from"/> to <paramref name="ip"/>:<paramref name="port"/> where <paramref name="to"/> listens.</summary>
    public async Task<double> GuestToGuestAsync(JsonNode from, JsonNode to, string ip, int port) =>
        Rate(await TransferAsync(GuestReceivesAsync(to, port), () => ssh(from, Send(ip, port))));

    /// <summary>MiB/s from a guest to a socat listening on <paramref name="port"/> in <paramref name="ns"/>.</summary>
    public async Task<double> GuestToNamespaceAsync(JsonNode from, NetworkNamespace ns, string ip, int port) =>
        Rate(await TransferAsync(ns.RunAsync("sh", ["-c", $"socat -u TCP-LISTEN:{port},reuseaddr - | wc -c"], TimeSpan.FromSeconds(300)), () => ssh(from, Send(ip, port))));

    /// <summary>MiB/s from socat in <paramref name="ns"/> (wall clock) to <paramref name="to"/>, reached at <paramref name="ip"/>:<paramref name="port"/>.</summary>
    public async Task<double> NamespaceToGuestAsync(NetworkNamespace ns, JsonNode to, int guestPort, string ip, int port)
    {
        var seconds = 0.0;
        await TransferAsync(GuestReceivesAsync(to, guestPort), async () =>
        {
            var sw = Stopwatch.StartNew();
            var (exit, _, error) = await HostTools.RunAsync("sh", ["-c", $"head -c {Bytes} /dev/zero | ip netns exec {ns.Name} socat -u - TCP:{ip}:{port}"], TimeSpan.FromSeconds(300));
            Assert.That(exit, Is.Zero, error);
            seconds = sw.Elapsed.TotalSeconds;
            return "";
        });
        return MiB / seconds;
    }

    public string Describe(JsonNode vm, string extra = "") =>
        $"({MiB} MiB each, one TCP stream{extra}, accelerator {vm["accelerator"]}, {Environment.ProcessorCount} host CPUs; under TCG the guests' CPU, not the network, sets these rates)";

    string Send(string ip, int port) =>
        $"s=$(cut -d' ' -f1 /proc/uptime); (dd if=/dev/zero bs={BlockKiB}k count={Blocks} 2>/dev/null; cut -d' ' -f1 /proc/uptime >/tmp/end) | nc -w 3 {ip} {port}; echo \"sent {Bytes} bytes from $s to $(cat /tmp/end)\"";

    // nc -e: the counter reads the connection itself, so the end of the SSH session's input does not end the transfer.
    Task<string> GuestReceivesAsync(JsonNode vm, int port) =>
        ssh(vm, $"printf '#!/bin/sh\\nwc -c >/tmp/count\\n' >/tmp/count.sh; chmod +x /tmp/count.sh; nc -l -p {port} -e /tmp/count.sh; cat /tmp/count");

    async Task<string> TransferAsync(Task<string> receiving, Func<Task<string>> send)
    {
        await Task.Delay(5000);
        var sent = await send();
        Assert.That(long.Parse((await receiving).Trim(), CultureInfo.InvariantCulture), Is.EqualTo(Bytes), "every byte arrived");
        return sent;
    }

    /// <summary>MiB/s from the guest's "sent N bytes from T0 to T1" line (its /proc/uptime).</summary>
    static double Rate(string output)
    {
        var m = Sent().Match(output);
        Assert.That(m.Success, Is.True, "the guest said: [" + output + "]");
        var seconds = double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) - double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) / seconds / (1 << 20);
    }

    [GeneratedRegex(@"sent (\d+) bytes from ([\d.]+) to ([\d.]+)")]
    private static partial Regex Sent();
}
