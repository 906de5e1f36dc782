using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: a stock-style Debian 12 guest configured by cloud-init (built from Debian packages by
/// scripts/appliance/build-cloud-guest.sh) boots for real under QEMU, 512 MiB, once per datasource. Each boot is shared by
/// every assertion: hostname, key and default user (ssh as 'debian'), user data that ran, the unique instance-id, the
/// address from the lease, ready with no manual call, and an ACPI power-off. The fixture runs alongside other fixtures
/// (its server holds one of ApplianceHost's QEMU slots); its own guests boot one after the other.
/// </summary>
public class CloudInitGuestHostTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _keyDir = "";
    string _privateKey = "";
    const string Image = "debian-cloudinit";

    [OneTimeSetUp]
    public async Task Start()
    {
        var path = HostTools.CloudGuestPath();
        _server = await ApplianceHost.StartAsync(ApplianceHost.Settings(new Dictionary<string, string?>
        {
            ["Compute:ShutdownTimeoutSeconds"] = "150",
            ["Compute:ReadyProbeIntervalSeconds"] = "1",
        }), requireAppliance: false);
        _admin = _server.Client();
        // Registering copies and checks the ~450 MB image: minutes on a loaded CI machine, more than the client's 60 s.
        using (var slow = _server.Client())
        {
            slow.Timeout = TimeSpan.FromMinutes(10);
            await (await slow.PostAsJsonAsync("/api/v1/images", new { name = Image, path })).Json(201);
        }
        _keyDir = TempDir.Create("ssh");
        (_privateKey, var publicKey) = await HostTools.SshKeyAsync(_keyDir);
        await (await _admin.PostAsJsonAsync("/api/v1/keys", new { name = "test", publicKey })).Json(201);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        TempDir.Delete(_keyDir);
        await ApplianceHost.StopAsync(_server);
    }

    [TestCase("nocloud"), CancelAfter(900_000)]
    [TestCase("opennebula")]
    public async Task A_Debian_cloud_init_guest_gets_hostname_key_user_data_instance_id_and_network_is_ready_without_an_agent_and_powers_off_by_ACPI(string method)
    {
        var marker = "MARKER-" + Guid.NewGuid().ToString("N")[..12];
        var hostname = "ci-" + method;
        var requested = DateTimeOffset.UtcNow;
        var created = await InstanceApiTests.CreateAsync(_admin, new
        {
            name = "cloud-" + method,
            image = Image,
            cpu = 1,
            memoryMiB = 512,
            hostname,
            keyName = "test",
            contextMethod = method,
            userData = $"#cloud-config\nruncmd:\n  - echo {marker} > /var/tmp/stratuslab-marker\n  - echo console-{marker} > /dev/ttyS0\n",
        });
        var id = created["id"]!.GetValue<long>();
        var vmDir = Path.Combine(_server.DataDir, "instances", id.ToString());
        try
        {
            // About 30 s after power-on on an idle machine (GUEST-NOTES); a shared CI runner under TCG can be ten times slower.
            var ready = await WaitLongAsync(id, "ready", TimeSpan.FromSeconds(600));
            Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, "ready with no call from the guest: " + ready.ToJsonString() + Serial(vmDir));
            var source = ready["readySource"]!.GetValue<string>();
            Assert.That(source, method == "nocloud" ? Is.AnyOf("ssh", "phone-home") : Is.EqualTo("ssh"));
            var readyAt = ready["readyAt"]!.GetValue<DateTimeOffset>();
            TestContext.Progress.WriteLine($"{method}: request -> ready ({source}) {(readyAt - requested).TotalSeconds:F1} s, accelerator {ready["accelerator"]}");

            var ssh = ready["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();
            // runcmd runs in cloud-init's last stage, a little after SSH answers: poll for its marker.
            (int Exit, string Out, string Err) result = default;
            for (var attempt = 0; attempt < 30; attempt++)
            {
                result = await ApplianceHost.SshAsync(_privateKey, ssh,
                    "echo user=$(id -un); echo host=$(hostname); echo iid=$(cat /var/lib/cloud/data/instance-id); ip -4 -o addr show scope global; " +
                    "echo marker=$(cat /var/tmp/stratuslab-marker 2>/dev/null); sudo -n true && echo sudo=ok", user: "debian");
                if (result.Exit == 0 && result.Out.Contains(marker)) break;
                await Task.Delay(3000);
            }
            Assert.That(result.Exit, Is.EqualTo(0), "ssh as the image's default user with the stored key: " + result.Err + Serial(vmDir));
            Assert.That(result.Out, Does.Contain("user=debian"));
            Assert.That(result.Out, Does.Contain("sudo=ok"));
            Assert.That(result.Out, Does.Contain($"host={hostname}\n"), "the requested hostname");
            if (method == "nocloud")
                Assert.That(result.Out, Does.Contain($"iid={created["instanceUid"]}\n"), "cloud-init's instance-id is the instance's unique id");
            else
                // cloud-init 22.4 (Debian 12) reads VMID but its OpenNebula datasource still answers the fixed
                // 'iid-dsopennebula'; newer cloud-init takes VMID. Measured 2026-11-29: use nocloud for a unique id there.
                Assert.That(result.Out, Does.Contain($"iid={created["instanceUid"]}\n").Or.Contain("iid=iid-dsopennebula\n"));
            Assert.That(result.Out, Does.Contain($"marker={marker}\n"), "the user data ran");
            var console = await (await _admin.GetAsync($"/api/v1/instances/{id}/console?tail=2000")).Content.ReadAsStringAsync();
            Assert.That(console, Does.Contain("console-" + marker), "the user data's output on the console API");
            var ip = ready["nics"]!.AsArray()[0]!["ip"]!.GetValue<string>();
            Assert.That(result.Out, Does.Contain($"inet {ip}/"), "the address from the lease");

            var shutdown = DateTime.UtcNow;
            await (await _admin.PostAsync($"/api/v1/instances/{id}/actions/shutdown", null)).Json(202);
            var done = await WaitLongAsync(id, "DONE", TimeSpan.FromSeconds(200));
            Assert.That(done["state"]!.GetValue<string>(), Is.EqualTo("DONE"), done.ToJsonString());
            Assert.That(DateTime.UtcNow - shutdown, Is.LessThan(TimeSpan.FromSeconds(140)), "the guest powered off on the ACPI request, before the kill timeout (150 s)");
            TestContext.Progress.WriteLine($"{method}: ACPI power-off took {(DateTime.UtcNow - shutdown).TotalSeconds:F1} s");
            Assert.That(HostTools.QemuProcesses(vmDir), Is.Empty);
        }
        finally
        {
            HostTools.KillQemu(vmDir);
        }
    }

    [Test, CancelAfter(600_000)]
    public async Task A_cloud_init_guest_with_too_little_memory_fails_with_the_kernel_panic_as_its_reason()
    {
        var created = await InstanceApiTests.CreateAsync(_admin, new { name = "too-small", image = Image, cpu = 1, memoryMiB = 128, keyName = "test" });
        var id = created["id"]!.GetValue<long>();
        try
        {
            var failed = await WaitLongAsync(id, "FAILED", TimeSpan.FromSeconds(300));
            Assert.That(failed["state"]!.GetValue<string>(), Is.EqualTo("FAILED"), failed.ToJsonString());
            var reason = failed["failureReason"]!.GetValue<string>();
            Assert.That(reason, Does.Contain("panic"), reason);
            Assert.That(reason, Does.Contain("Out of memory").Or.Contain("out of memory").Or.Contain("Kernel panic"), "the console's last lines say why: " + reason);
            Assert.That(HostTools.QemuProcesses(Path.Combine(_server.DataDir, "instances", id.ToString())), Is.Empty, "the panicked VM is gone");
        }
        finally
        {
            HostTools.KillQemu(Path.Combine(_server.DataDir, "instances", id.ToString()));
        }
    }

    [Test, CancelAfter(900_000)]
    public async Task Awscli_boots_the_cloud_init_guest_with_user_data_seen_on_its_console_and_terminates_it()
    {
        var key = await Ec2Key.CreateAsync(_admin);
        var marker = "EC2-" + Guid.NewGuid().ToString("N")[..12];
        var (exit, ami, err) = await Ec2Clients.AwsCliAsync(_server, key,
            ["describe-images", "--filters", $"Name=name,Values={Image}", "--query", "Images[0].ImageId", "--output", "text"]);
        Assert.That(exit, Is.EqualTo(0), err);
        (exit, var id, err) = await Ec2Clients.AwsCliAsync(_server, key, ["run-instances", "--image-id", ami.Trim(), "--count", "1",
            "--instance-type", "t1.micro", "--key-name", "test", "--user-data", $"#cloud-config\nruncmd:\n  - echo {marker} > /dev/ttyS0\n",
            "--query", "Instances[0].InstanceId", "--output", "text"]);
        Assert.That(exit, Is.EqualTo(0), err);
        id = id.Trim();
        try
        {
            (exit, _, err) = await Ec2Clients.AwsCliAsync(_server, key, ["wait", "instance-running", "--instance-ids", id], 600);
            Assert.That(exit, Is.EqualTo(0), err);
            var console = "";
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(600);
            while (!console.Contains(marker) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(5000);
                (exit, console, err) = await Ec2Clients.AwsCliAsync(_server, key, ["get-console-output", "--instance-id", id, "--output", "text"]);
                Assert.That(exit, Is.EqualTo(0), err);
            }
            Assert.That(console, Does.Contain(marker), "the user data's marker in GetConsoleOutput (base64-decoded by awscli)");
            (exit, _, err) = await Ec2Clients.AwsCliAsync(_server, key, ["terminate-instances", "--instance-ids", id]);
            Assert.That(exit, Is.EqualTo(0), err);
            (exit, _, err) = await Ec2Clients.AwsCliAsync(_server, key, ["wait", "instance-terminated", "--instance-ids", id], 600);
            Assert.That(exit, Is.EqualTo(0), err);
        }
        finally
        {
            await Ec2Clients.AwsCliAsync(_server, key, ["terminate-instances", "--instance-ids", id]);
        }
    }

    /// <summary>Long-polls in 45 s steps (the test client times out at 60 s) until the state, FAILED, or the deadline.</summary>
    async Task<JsonNode> WaitLongAsync(long id, string state, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var node = await InstanceApiTests.WaitAsync(_admin, id, state, 45);
            var reached = state == "ready" ? node["ready"]!.GetValue<bool>() : node["state"]!.GetValue<string>() == state;
            if (reached || node["state"]!.GetValue<string>() is "FAILED" or "DONE" || DateTime.UtcNow > deadline) return node;
        }
    }

    string Serial(string vmDir)
    {
        // The console log lives in <data-dir>/consoles/ID.log (it outlives the VM directory).
        var log = Path.Combine(_server.DataDir, "consoles", Path.GetFileName(vmDir) + ".log");
        if (!File.Exists(log)) return "";
        var lines = File.ReadAllLines(log);
        return "\nserial log (last lines):\n" + string.Join('\n', lines.TakeLast(40));
    }
}
