using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>Host tier: a real appliance under QEMU panics (pvpanic), shows its boot live on the console API, and answers on its serial console.</summary>
public class GuestConsoleHostTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        var appliance = HostTools.AppliancePath();
        var inputs = Path.ChangeExtension(appliance, ".inputs");
        Assert.That(File.Exists(inputs) && File.ReadAllText(inputs).Contains("pvpanic_mmio"), Is.True,
            "the test appliance predates pvpanic: rebuild it with scripts/appliance/build.sh");
        _server = await ApplianceHost.StartAsync();
        _admin = ApplianceHost.Client(_server);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        await ApplianceHost.StopAsync(_server);
    }

    [Test, CancelAfter(240_000)]
    public async Task A_guest_kernel_panic_fails_the_instance_with_the_consoles_last_lines_and_frees_its_capacity()
    {
        var created = await InstanceApiTests.CreateAsync(_admin, new
        {
            name = "panicky",
            context = new Dictionary<string, string> { ["STRATUSLAB_TEST_PANIC"] = "yes" },
        });
        var id = created["id"]!.GetValue<long>();
        // The wait ends on FAILED too; the appliance panics right after its boot steps, before it could report ready.
        var failed = await InstanceApiTests.WaitAsync(_admin, id, "DONE", 180);
        TestContext.Progress.WriteLine($"panic reason: {failed["failureReason"]}");
        Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
        Assert.That(failed["failedStep"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        var reason = failed["failureReason"]!.GetValue<string>();
        Assert.That(reason, Does.StartWith("guest kernel panicked: sysrq triggered crash"), "the reason quotes the kernel's panic message");
        Assert.That(reason, Does.Contain("last console lines:"));

        var vmDir = Path.Combine(_server.DataDir, "instances", id.ToString());
        Assert.That(HostTools.QemuProcesses(vmDir), Is.Empty, "the halted VM is gone");
        var hosts = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray();
        Assert.That(hosts.Sum(h => h!["allocatedMemoryMiB"]!.GetValue<long>()), Is.EqualTo(0), "its capacity is free again: " + hosts.ToJsonString());
        var log = await _admin.GetStringAsync($"/api/v1/instances/{id}/console");
        Assert.That(log, Does.Contain("panicking on request").And.Contain("Kernel panic - not syncing: sysrq triggered crash"),
            "the whole console log stays readable after the failure");
    }

    [Test, CancelAfter(240_000)]
    public async Task Following_the_console_shows_the_boot_live_and_the_serial_console_answers_over_a_WebSocket()
    {
        var id = (await InstanceApiTests.CreateAsync(_admin, new { name = "talker" }))["id"]!.GetValue<long>();
        try
        {
            using (var follow = _server.Client())
            {
                follow.Timeout = Timeout.InfiniteTimeSpan;
                using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(180));
                using var response = await follow.GetAsync($"/api/v1/instances/{id}/console?follow=true", HttpCompletionOption.ResponseHeadersRead, cancel.Token);
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
                DateTime? firstLine = null, bootComplete = null;
                while (bootComplete is null && await reader.ReadLineAsync(cancel.Token) is { } line)
                {
                    if (firstLine is null && line.Contains("stratuslab: mounted proc")) firstLine = DateTime.UtcNow;
                    if (line.Contains("stratuslab: boot complete")) bootComplete = DateTime.UtcNow;
                }
                Assert.That(firstLine, Is.Not.Null, "the appliance's first boot line came through the stream");
                Assert.That(bootComplete, Is.Not.Null, "and its last one");
                TestContext.Progress.WriteLine($"first boot line to boot complete on the stream: {(bootComplete - firstLine)!.Value.TotalSeconds:F1} s");
                Assert.That(bootComplete - firstLine, Is.GreaterThan(TimeSpan.FromMilliseconds(300)), "lines arrived as the guest wrote them, not in one dump at the end");
            }

            // The shell may still be starting: the command is typed again until its answer shows.
            var received = await SerialConsole.RunAsync(_server, _server.AdminToken, id, "echo answer-$((6*7))", "answer-42", TimeSpan.FromSeconds(60));
            Assert.That(received, Does.Contain("answer-42"), "the guest's serial shell ran what was typed: " + received);
            var uri = SerialConsole.Uri(_server, id);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

            // The same console from the command line: connect-instance --console with piped input (the shell is up by now).
            var cli = await HostTools.RunAsync("bash", ["-c",
                $"printf 'echo cli-$((6*7))\\n' | dotnet {Platform.ServerProcessTests.BinaryPath()} connect-instance {id} --console --endpoint {_server.BaseAddress} --token {_server.AdminToken}"],
                TimeSpan.FromSeconds(60));
            Assert.That(cli.Exit, Is.EqualTo(0), cli.Err);
            Assert.That(cli.Out, Does.Contain("cli-42"), "connect-instance --console typed into the guest's shell and printed its answer: " + cli.Out + cli.Err);

            var other = await _server.CreateUserAsync("peeker" + Guid.NewGuid().ToString("N")[..6]);
            using var stranger = new ClientWebSocket();
            stranger.Options.SetRequestHeader("Authorization", "Bearer " + other);
            stranger.Options.CollectHttpResponseDetails = true;
            Assert.ThrowsAsync<WebSocketException>(() => stranger.ConnectAsync(uri, timeout.Token));
            Assert.That((int)stranger.HttpStatusCode, Is.EqualTo(404), "another user's console does not exist for them");
        }
        finally
        {
            await _admin.DeleteAsync($"/api/v1/instances/{id}");
            await InstanceApiTests.WaitAsync(_admin, id, "DONE", 60);
        }
    }
}
