using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// What host fixtures that boot the test appliance under real QEMU share: an in-process server with the QEMU driver and
/// short monitor and shutdown timeouts, PAT ports of its own (so several such fixtures can run at once in this test
/// process without two QEMUs racing for one host port), its clean-up (the server, then any QEMU of its data dir), a boot
/// that waits for the guest's ready report, and SSH into the guest through its forwarded port.
/// </summary>
public static class ApplianceHost
{
    static int _ranges;

    // At most this many QEMU test servers at once in this process (STRATUSLAB_TEST_QEMU_SERVERS, default 2): their
    // fixtures run alongside the simulated ones, but TCG guests and accelerator probes need CPU, and CI has 2 cores.
    static readonly SemaphoreSlim Slots = new(
        int.TryParse(Environment.GetEnvironmentVariable("STRATUSLAB_TEST_QEMU_SERVERS"), out var n) && n > 0 ? n : 2);
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<TestServer, IAsyncDisposable> Held = new();

    /// <summary>Waits for one of the QEMU server slots; disposing it gives the slot back (once).</summary>
    public static async Task<IAsyncDisposable> SlotAsync()
    {
        if (!await Slots.WaitAsync(TimeSpan.FromMinutes(60)))
            Assert.Fail("no QEMU test server slot freed within 60 min: a fixture did not call ApplianceHost.StopAsync");
        return new Slot();
    }

    sealed class Slot : IAsyncDisposable
    {
        int _released;

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) Slots.Release();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// A PAT port range no other server of this test process gets: 100 ports from 20000 on, below the kernel's ephemeral
    /// range (32768-) and away from the default (15000-17000). (Ports taken by other processes are skipped by the server.)
    /// </summary>
    public static (int First, int Last) PatPorts()
    {
        var range = Interlocked.Increment(ref _ranges) % 120;
        return (20000 + range * 100, 20000 + range * 100 + 99);
    }

    /// <summary>The settings of a QEMU test server; <paramref name="extra"/> adds to or overrides them.</summary>
    public static Dictionary<string, string?> Settings(IDictionary<string, string?>? extra = null)
    {
        var (first, last) = PatPorts();
        var settings = new Dictionary<string, string?>
        {
            ["Compute:Driver"] = "qemu",
            ["Compute:Accelerator"] = "auto",
            ["Compute:ShutdownTimeoutSeconds"] = "30",
            ["Compute:BootTimeoutSeconds"] = "120",
            ["Compute:MonitorIntervalSeconds"] = "2",
            ["Networking:PatPortFirst"] = first.ToString(),
            ["Networking:PatPortLast"] = last.ToString(),
        };
        foreach (var (k, v) in extra ?? new Dictionary<string, string?>()) settings[k] = v;
        return settings;
    }

    /// <summary>Starts a QEMU test server once a slot is free (the appliance must be built); StopAsync frees the slot.</summary>
    public static async Task<TestServer> StartAsync(IDictionary<string, string?>? extra = null) =>
        await StartAsync(Settings(extra), requireAppliance: true);

    /// <summary>Starts a test server with these settings once a QEMU slot is free; StopAsync frees the slot.</summary>
    public static async Task<TestServer> StartAsync(Dictionary<string, string?> settings, bool requireAppliance)
    {
        if (requireAppliance) HostTools.AppliancePath();
        var slot = await SlotAsync();
        try
        {
            var server = await TestServer.StartAsync(settings);
            Held.Add(server, slot);
            return server;
        }
        catch
        {
            await slot.DisposeAsync();
            throw;
        }
    }

    /// <summary>A client whose timeout outlasts the long waits of a boot under TCG on a loaded machine.</summary>
    public static HttpClient Client(TestServer server, string? token = "admin")
    {
        var http = server.Client(token);
        http.Timeout = TimeSpan.FromSeconds(240);
        return http;
    }

    /// <summary>Stops the server and kills any QEMU left in its data dir, even when the server did not stop cleanly.</summary>
    public static async Task StopAsync(TestServer? server)
    {
        if (server is null) return;
        var dataDir = server.DataDir;
        try { await server.DisposeAsync(); }
        finally
        {
            HostTools.KillQemu(dataDir);
            if (Held.TryGetValue(server, out var slot))
            {
                Held.Remove(server);
                await slot.DisposeAsync();
            }
        }
    }

    /// <summary>Launches an instance and waits until the guest reported ready; fails the test otherwise.</summary>
    public static async Task<JsonNode> BootAsync(HttpClient http, object request, int timeoutSeconds = 180)
    {
        var id = (await InstanceApiTests.CreateAsync(http, request))["id"]!.GetValue<long>();
        var ready = await InstanceApiTests.WaitAsync(http, id, "ready", timeoutSeconds);
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, "the guest reported ready: " + ready.ToJsonString());
        return ready;
    }

    /// <summary>The host port forwarded to a guest port of an instance (its portForwards).</summary>
    public static int ForwardedPort(JsonNode instance, int guestPort) =>
        instance["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == guestPort)!["hostPort"]!.GetValue<int>();

    /// <summary>Runs a command in the guest over SSH through its forwarded port on 127.0.0.1.</summary>
    public static Task<(int Exit, string Out, string Err)> SshAsync(string privateKey, int port, string command, string user = "root", int timeoutSeconds = 60) =>
        HostTools.RunAsync("ssh", [
            "-i", privateKey, "-p", port.ToString(), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", $"{user}@127.0.0.1", command], TimeSpan.FromSeconds(timeoutSeconds));
}
