using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Compute.Drivers;
using StratusLab.Server.Modules.Monitoring;
using StratusLab.Server.Modules.Monitoring.Contracts;

namespace StratusLab.Server.Tests.Modules.Monitoring;

/// <summary>The pure parsers and rules behind the counters and KPIs.</summary>
public class InstanceCountersTests
{
    [TestCase("1234 (qemu-system-x86) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 130 0 0 20 0 3 0 100 0 0", 3.80)]
    [TestCase("99 (odd) name) with spaces) R 1 99 99 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0", 0.02)]
    public void CPU_seconds_are_user_plus_system_ticks_counted_after_the_command_name(string stat, double seconds) =>
        Assert.That(QemuDriver.ParseCpuSeconds(stat), Is.EqualTo(seconds).Within(1e-9));

    [TestCase("Name:\tqemu\nVmPeak:\t  900 kB\nVmRSS:\t  204800 kB\nThreads:\t5\n", 204800L * 1024)]
    [TestCase("Name:\tzombie\nState:\tZ (zombie)\n", null)]
    public void RSS_is_read_from_VmRSS_in_bytes(string status, long? bytes) =>
        Assert.That(QemuDriver.ParseRssBytes(status), Is.EqualTo(bytes));

    [Test]
    public void Taps_are_the_ifnames_of_tap_netdevs_only()
    {
        string[] args = ["-netdev", "tap,id=net0,ifname=sltap-7-0,script=no,downscript=no", "-netdev", "user,id=net1,hostfwd=tcp:127.0.0.1:1-:22",
            "-netdev", "tap,id=net2,ifname=sltap-7-2,script=no"];
        Assert.That(QemuDriver.TapsOf(args), Is.EqualTo(new[] { "sltap-7-0", "sltap-7-2" }));
    }

    [Test]
    public void Block_stats_are_summed_over_devices_and_devices_without_stats_are_skipped()
    {
        var reply = JsonNode.Parse("""
            [{"device": "", "node-name": "boot", "stats": {"rd_bytes": 100, "wr_bytes": 4096, "rd_operations": 2, "wr_operations": 1}},
             {"device": "", "node-name": "vdb", "stats": {"rd_bytes": 50, "wr_bytes": 8192, "rd_operations": 1, "wr_operations": 2}},
             {"device": "cd"}]
            """);
        Assert.That(QemuDriver.BlockTotals.Of(reply), Is.EqualTo(new QemuDriver.BlockTotals(150, 12288, 3, 3)));
    }

    [TestCase("""{"stats": {"stat-total-memory": 97062912, "stat-available-memory": 65970176, "stat-free-memory": 1}, "last-update": 1795948514}""", 97062912L, 65970176L)]
    [TestCase("""{"stats": {"stat-total-memory": 18446744073709551615, "stat-available-memory": 18446744073709551615}, "last-update": 0}""", null, null)]
    [TestCase("""{"stats": {"stat-total-memory": 97062912, "stat-available-memory": 18446744073709551615}, "last-update": 5}""", 97062912L, null)]
    [TestCase("""{"last-update": 5}""", null, null)]
    public void Guest_memory_statistics_ignore_what_the_guest_never_reported(string reply, long? total, long? available) =>
        Assert.That(QemuDriver.ParseGuestStats(JsonNode.Parse(reply)), Is.EqualTo((total, available)));

    [Test]
    public void Disk_capacity_sums_the_disks_and_leaves_out_cd_roms_and_empty_drives()
    {
        var reply = JsonNode.Parse("""
            [{"device": "", "removable": false, "inserted": {"image": {"virtual-size": 67108864}}},
             {"device": "", "removable": false, "inserted": {"image": {"virtual-size": 1073741824}}},
             {"device": "cd", "removable": true, "inserted": {"image": {"virtual-size": 372736}}},
             {"device": "empty", "removable": true}]
            """);
        Assert.That(QemuDriver.DiskCapacity(reply), Is.EqualTo(67108864L + 1073741824L));
        Assert.That(QemuDriver.DiskCapacity(JsonNode.Parse("[]")), Is.Null);
    }

    [Test]
    public void Simulated_counters_are_marked_deterministic_in_time_and_only_grow()
    {
        var start = DateTimeOffset.Parse("2026-01-01T00:00:00Z");
        var request = new VmStatsRequest(2, 1024, start);
        var a = SimulatedDriver.CountersAt(request, start.AddMinutes(7));
        Assert.That(SimulatedDriver.CountersAt(request, start.AddMinutes(7)), Is.EqualTo(a), "the same time gives the same numbers");
        Assert.That(a.Simulated, Is.True);
        var previous = SimulatedDriver.CountersAt(request, start);
        for (var t = 7; t <= 3600; t += 7)
        {
            var c = SimulatedDriver.CountersAt(request, start.AddSeconds(t));
            Assert.That(c.CpuSeconds, Is.GreaterThan(previous.CpuSeconds), $"t={t}");
            Assert.That(c.DiskWriteBytes!.Value, Is.GreaterThan(previous.DiskWriteBytes!.Value));
            Assert.That((c.CpuSeconds - previous.CpuSeconds) / 7, Is.InRange(0.1 * 2 - 0.01, 0.4 * 2 + 0.01), "10-40% of each of 2 CPUs (CPU seconds are rounded to 0.01)");
            Assert.That(c.MemoryRssBytes, Is.InRange(0.55 * 1024 * 1024 * 1024, 0.65 * 1024 * 1024 * 1024));
            previous = c;
        }
    }

    [TestCase("http_requests", true)]
    [TestCase("queue.depth-p95", true)]
    [TestCase("", false)]
    [TestCase("9lives", false)]
    [TestCase("has space", false)]
    [TestCase("ünicode", false)]
    public void KPI_names_are_a_letter_then_letters_digits_and_separators(string name, bool valid) =>
        Assert.That(KpiNames.IsValid(name), Is.EqualTo(valid));

    [Test]
    public void KPI_names_longer_than_64_characters_are_refused() =>
        Assert.That(KpiNames.IsValid(new string('a', 65)), Is.False);

    [TestCase("30s", 30)]
    [TestCase("15m", 900)]
    [TestCase("2h", 7200)]
    [TestCase("7d", 604800)]
    public void Metric_windows_take_ages(string text, int seconds)
    {
        var now = DateTimeOffset.Parse("2026-11-29T12:00:00Z");
        Assert.That(MonitoringEndpoints.ParseTime(text, "since", now), Is.EqualTo(now.AddSeconds(-seconds)));
    }

    [Test]
    public void Metric_windows_take_ISO_times_and_refuse_anything_else()
    {
        var now = DateTimeOffset.UtcNow;
        Assert.That(MonitoringEndpoints.ParseTime("2026-11-29T10:00:00Z", "since", now), Is.EqualTo(DateTimeOffset.Parse("2026-11-29T10:00:00Z")));
        var error = Assert.Throws<StratusLab.Server.Platform.Contracts.InvalidInputException>(() => MonitoringEndpoints.ParseTime("soon", "since", now));
        Assert.That(error!.Field, Is.EqualTo("since"));
    }
}
