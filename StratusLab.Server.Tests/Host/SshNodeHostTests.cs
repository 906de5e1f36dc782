using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: SSH nodes are network namespaces made here, each with its own sshd on a veth address. The server reaches
/// them with the real OpenSSH client; every problem (no answer, a refused key, no qemu, a changed host key) leaves the
/// host in ERROR with the reason, and nothing is placed there.
/// </summary>
[NonParallelizable]
public class SshNodeHostTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _keyDir = "";
    string _key = "";
    string _publicKey = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        if (await SshNode.WhyUnavailableAsync() is { } why) Assert.Ignore(why);
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Scheduling:NodeProbeIntervalSeconds"] = "1",
            ["Scheduling:NodeMissedProbes"] = "2",
            ["Scheduling:PendingTimeoutSeconds"] = "0",
            ["Compute:MonitorIntervalSeconds"] = "1",
            ["Compute:ShutdownTimeoutSeconds"] = "20",
        });
        _admin = _server.Client();
        _keyDir = TempDir.Create("sshkeys");
        (_key, _publicKey) = await HostTools.SshKeyAsync(_keyDir);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
        TempDir.Delete(_keyDir);
    }

    async Task<JsonNode> AddAsync(string name, SshNode node, string? key = null, int port = 22) =>
        await (await _admin.PostAsJsonAsync("/api/v1/hosts", new { name, driver = "ssh", ssh = "root@" + node.Address, port, keyFile = key ?? _key, root = node.Root })).Json(201);

    string ControlDirectory => _server.App.Services.GetRequiredService<StratusLab.Server.Platform.Host.SshTransport>().ControlDirectory;

    async Task<JsonNode> HostAsync(string name) => await (await _admin.GetAsync($"/api/v1/hosts/{name}")).Json(200);

    async Task RemoveAsync(string name) => await (await _admin.DeleteAsync($"/api/v1/hosts/{name}")).Json(204);

    /// <summary>With the local host disabled, a new instance can only go to the node: it stays PENDING and says why the node was rejected.</summary>
    async Task AssertNothingIsPlacedOnAsync(string name, string reasonPart)
    {
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().First(h => h!["local"]!.GetValue<bool>())!["name"]!.GetValue<string>();
        await (await _admin.PostAsync($"/api/v1/hosts/{local}/disable", null)).Json(200);
        try
        {
            var created = await InstanceApiTests.CreateAsync(_admin, new { name = "nowhere" });
            var id = created["id"]!.GetValue<long>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            JsonNode instance;
            do
            {
                await Task.Delay(300);
                instance = await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200);
            }
            while (instance["schedulingMessage"] is null && DateTime.UtcNow < deadline);
            Assert.That(instance["state"]!.GetValue<string>(), Is.EqualTo("PENDING"), instance.ToJsonString());
            Assert.That(instance["host"]?.GetValue<string>(), Is.Null.Or.Not.EqualTo(name), "nothing is placed on a host in ERROR");
            Assert.That(instance["schedulingMessage"]?.GetValue<string>(), Does.Contain($"{name}: in state ERROR").And.Contain(reasonPart), instance.ToJsonString());
            await (await _admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        }
        finally
        {
            await (await _admin.PostAsync($"/api/v1/hosts/{local}/enable", null)).Json(200);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task An_ssh_node_is_probed_on_add_pins_its_host_key_and_shows_its_capacity_tools_and_accelerator()
    {
        await using var node = await SshNode.StartAsync(_publicKey);
        var host = await AddAsync("node-ok", node);
        try
        {
            Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("OK"), host.ToJsonString());
            Assert.That(host["driver"]!.GetValue<string>(), Is.EqualTo("ssh"));
            Assert.That(host["ssh"]!.GetValue<string>(), Is.EqualTo($"root@{node.Address}:22"));
            Assert.That(host["root"]!.GetValue<string>(), Is.EqualTo(node.Root));
            Assert.That(host["cpus"]!.GetValue<long>(), Is.EqualTo(Environment.ProcessorCount * 4), "probed nproc times Scheduling:CpuOvercommit");
            var memTotal = long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
            Assert.That(host["memoryMiB"]!.GetValue<long>(), Is.EqualTo(memTotal), "the node's MemTotal");
            var probe = host["probe"]!;
            // KVM is claimed only once a Linux kernel booted under it on the node: on nested hosts (these machines) a boot
            // sector passes under KVM and the appliance then hangs there without printing a line.
            var accelerator = host["accelerator"]!.GetValue<string>();
            var acceleratorReason = probe["AcceleratorReason"]!.GetValue<string>();
            TestContext.Progress.WriteLine($"node accelerator: {accelerator} ({acceleratorReason})");
            if (!File.Exists("/dev/kvm")) Assert.That(accelerator, Is.EqualTo("tcg"));
            if (accelerator == "kvm") Assert.That(acceleratorReason, Is.EqualTo("a Linux kernel booted under KVM on the node"));
            Assert.That(probe["Tools"]!["qemu-system-x86_64"]!.GetValue<string>(), Does.EndWith("/qemu-system-x86_64"));
            Assert.That(probe["IscsiDriver"]!.GetValue<bool>(), Is.True, "qemu-block-extra is installed here");
            Assert.That(probe["QemuVersion"]!.GetValue<string>(), Does.StartWith("QEMU emulator version"));
            Assert.That(probe["DiskFreeMiB"]!.GetValue<long>(), Is.GreaterThan(0));
            var knownHosts = await File.ReadAllTextAsync(Path.Combine(_server.DataDir, "ssh", "known_hosts"));
            var hostKey = (await File.ReadAllTextAsync(node.HostKeyFile + ".pub")).Split(' ')[1];
            Assert.That(knownHosts, Does.Contain(hostKey), "first contact pinned the node's host key in the server's known_hosts");
            Assert.That(Directory.GetFileSystemEntries(ControlDirectory), Has.Length.EqualTo(1), "one control master for the node");
            var listed = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray();
            Assert.That(listed.Any(h => h!["name"]!.GetValue<string>() == "node-ok" && h["state"]!.GetValue<string>() == "OK"), Is.True);
        }
        finally
        {
            await RemoveAsync("node-ok");
        }
        Assert.That(Directory.GetFileSystemEntries(ControlDirectory), Is.Empty, "removing the node closed its control master");
        Assert.That(await File.ReadAllTextAsync(Path.Combine(_server.DataDir, "ssh", "known_hosts")), Does.Not.Contain(node.Address), "and forgot its key");
    }

    [Test, CancelAfter(120_000)]
    public async Task The_kernel_probe_boots_the_appliance_kernel_on_the_node_gives_this_machines_own_verdict_and_leaves_nothing_there()
    {
        var kernel = StratusLab.Server.Platform.Configuration.Appliance.KernelPath(null);
        if (kernel is null) Assert.Ignore("the test appliance's kernel is not built (scripts/appliance/build.sh)");
        if (!File.Exists("/dev/kvm")) Assert.Ignore("no /dev/kvm here: nodes and this machine both run TCG without a probe");
        await using var node = await SshNode.StartAsync(_publicKey);
        var ssh = _server.App.Services.GetRequiredService<StratusLab.Server.Platform.Host.SshTransport>();
        var target = new StratusLab.Server.Platform.Host.SshTarget("root", node.Address, 22, _key);
        Directory.CreateDirectory(node.Root); // made by the probe's first script in the server's own flow
        // The node is this machine: booting the same kernel under KVM here, directly, must give the same answer.
        var local = Task.Run(async () =>
        {
            var serial = Path.Combine(_keyDir, "local-probe.serial");
            await HostTools.RunAsync("timeout", ["-k", "2", "10", "qemu-system-x86_64", .. StratusLab.Server.Platform.Host.QemuProbe.KernelArguments("kvm", kernel!, serial)], TimeSpan.FromSeconds(30));
            return File.Exists(serial) && (await File.ReadAllTextAsync(serial)).Contains(StratusLab.Server.Platform.Host.QemuProbe.KernelEndOfBoot);
        });
        try
        {
            var output = await StratusLab.Server.Modules.Scheduling.NodeProbe.KernelProbeAsync(ssh, target, node.Root, kernel!, CancellationToken.None);
            var booted = await local;
            TestContext.Progress.WriteLine($"kernel under KVM: on the node '{output.Trim()}', here {(booted ? "booted" : "hung")}");
            Assert.That(output.Trim(), Is.EqualTo(booted ? "kvmkernel=ok" : "kvmkernel=hang"));
            Assert.That(Directory.GetFiles(node.Root, "kvm-probe*"), Is.Empty, "the probe's kernel and serial log are removed from the node");
        }
        finally
        {
            await ssh.CloseAsync(target);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task An_address_where_no_sshd_answers_gives_a_host_in_ERROR_with_the_reason_and_nothing_is_placed_there()
    {
        await using var node = await SshNode.StartAsync(_publicKey);
        var host = await AddAsync("node-unreachable", node, port: 2222);
        try
        {
            Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("ERROR"));
            Assert.That(host["stateReason"]!.GetValue<string>(), Does.Contain($"cannot reach root@{node.Address}:2222 over SSH").And.Contain("Connection refused"));
            await AssertNothingIsPlacedOnAsync("node-unreachable", "cannot reach");
        }
        finally
        {
            await RemoveAsync("node-unreachable");
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task A_key_the_node_does_not_accept_gives_a_host_in_ERROR_that_names_the_key()
    {
        await using var node = await SshNode.StartAsync(_publicKey);
        var otherDir = TempDir.Create("sshother");
        try
        {
            var (otherKey, _) = await HostTools.SshKeyAsync(otherDir);
            var host = await AddAsync("node-wrong-key", node, key: otherKey);
            try
            {
                Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("ERROR"));
                Assert.That(host["stateReason"]!.GetValue<string>(), Does.Contain($"refused the key {otherKey}").And.Contain("Permission denied"));
                await AssertNothingIsPlacedOnAsync("node-wrong-key", "refused the key");
            }
            finally
            {
                await RemoveAsync("node-wrong-key");
            }
        }
        finally
        {
            TempDir.Delete(otherDir);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task A_node_without_qemu_is_in_ERROR_naming_what_is_missing_and_the_package_to_install()
    {
        // The node's PATH holds every tool of /usr/bin but QEMU's.
        var bin = TempDir.Create("noqemu");
        try
        {
            foreach (var tool in Directory.EnumerateFiles("/usr/bin").Where(f => !Path.GetFileName(f).StartsWith("qemu", StringComparison.Ordinal)))
                File.CreateSymbolicLink(Path.Combine(bin, Path.GetFileName(tool)), tool);
            await using var node = await SshNode.StartAsync(_publicKey, path: bin + ":/usr/sbin");
            var host = await AddAsync("node-no-qemu", node);
            try
            {
                Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("ERROR"), host.ToJsonString());
                var reason = host["stateReason"]!.GetValue<string>();
                Assert.That(reason, Does.StartWith("missing on the node: qemu-system-x86_64 (Debian package qemu-system-x86), qemu-img (Debian package qemu-utils)"));
                Assert.That(reason, Does.Not.Contain("nft").And.Not.Contain("dnsmasq"), "only what is really missing");
                await AssertNothingIsPlacedOnAsync("node-no-qemu", "missing on the node: qemu-system-x86_64");
            }
            finally
            {
                await RemoveAsync("node-no-qemu");
            }
        }
        finally
        {
            TempDir.Delete(bin);
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task A_node_whose_host_key_changed_is_refused_until_an_admin_forgets_the_old_key()
    {
        await using var node = await SshNode.StartAsync(_publicKey);
        var host = await AddAsync("node-rekeyed", node);
        try
        {
            Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("OK"), host.ToJsonString());
            await node.ChangeHostKeyAsync();
            var probed = await (await _admin.PostAsync("/api/v1/hosts/node-rekeyed/probe", null)).Json(200);
            Assert.That(probed["state"]!.GetValue<string>(), Is.EqualTo("ERROR"), probed.ToJsonString());
            Assert.That(probed["stateReason"]!.GetValue<string>(), Does.Contain("host key").And.Contain("not the one pinned").And.Contain("forget-host-key"));
            await AssertNothingIsPlacedOnAsync("node-rekeyed", "not the one pinned");
            var forgotten = await (await _admin.PostAsync("/api/v1/hosts/node-rekeyed/forget-host-key", null)).Json(200);
            Assert.That(forgotten["state"]!.GetValue<string>(), Is.EqualTo("OK"), forgotten.ToJsonString());
            var newKey = (await File.ReadAllTextAsync(node.HostKeyFile + ".pub")).Split(' ')[1];
            Assert.That(await File.ReadAllTextAsync(Path.Combine(_server.DataDir, "ssh", "known_hosts")), Does.Contain(newKey), "the new key is pinned now");
        }
        finally
        {
            await RemoveAsync("node-rekeyed");
        }
    }

    [Test, CancelAfter(120_000)]
    public async Task A_node_that_stops_answering_goes_to_ERROR_after_the_configured_missed_probes_and_back_to_OK_when_it_answers()
    {
        await using var node = await SshNode.StartAsync(_publicKey);
        var host = await AddAsync("node-flaky", node);
        try
        {
            Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("OK"));
            await node.StopSshdAsync();
            var stopped = Stopwatch.StartNew();
            while (true)
            {
                host = await HostAsync("node-flaky");
                if (host["state"]!.GetValue<string>() == "ERROR") break;
                Assert.That(stopped.Elapsed, Is.LessThan(TimeSpan.FromSeconds(40)), host.ToJsonString());
                await Task.Delay(100);
            }
            var detected = stopped.Elapsed;
            TestContext.Progress.WriteLine($"dead node detected in {detected.TotalSeconds:0.0} s (probe interval 1 s, 2 missed probes)");
            Assert.That(host["missedProbes"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(2), "one missed probe does not make the host ERROR: " + host.ToJsonString());
            Assert.That(host["stateReason"]!.GetValue<string>(), Does.Contain("over SSH"));
            await node.StartSshdAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while ((host = await HostAsync("node-flaky"))["state"]!.GetValue<string>() != "OK")
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), host.ToJsonString());
                await Task.Delay(200);
            }
            Assert.That(host["missedProbes"]!.GetValue<long>(), Is.Zero);
            Assert.That(host["stateReason"]?.GetValue<string>(), Is.Null);
        }
        finally
        {
            await RemoveAsync("node-flaky");
        }
    }

    async Task<string> DisableLocalAsync()
    {
        var local = (await (await _admin.GetAsync("/api/v1/hosts")).Json(200)).AsArray().First(h => h!["local"]!.GetValue<bool>())!["name"]!.GetValue<string>();
        await (await _admin.PostAsync($"/api/v1/hosts/{local}/disable", null)).Json(200);
        return local;
    }

    async Task<JsonNode> InstanceAsync(long id) => await (await _admin.GetAsync($"/api/v1/instances/{id}")).Json(200);

    async Task<JsonNode> UntilAsync(long id, Func<JsonNode, bool> done, int seconds, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (true)
        {
            var instance = await InstanceAsync(id);
            if (done(instance)) return instance;
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{what}: {instance.ToJsonString()}");
            await Task.Delay(200);
        }
    }

    static string CpuTimeOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return $"pid {pid} state {fields[0]} cpu {(long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0:0.0} s";
        }
        catch (IOException) { return $"pid {pid} gone"; }
    }

    /// <summary>The front-end file of the instance's boot disk (its vda mount in Pdisk).</summary>
    async Task<string> BootDiskPathAsync(long instance)
    {
        var volumes = (await (await _admin.GetAsync("/api/v1/volumes")).Json(200)).AsArray();
        var boot = volumes.Single(v => v!["mounts"]!.AsArray().Any(m => m!["instanceId"]!.GetValue<long>() == instance && m["device"]!.GetValue<string>() == "vda"))!;
        return new Uri(boot["turl"]!.GetValue<string>()).LocalPath;
    }

    /// <summary>Whether the disk image (any format: read through qemu-img, backing chain included) holds <paramref name="marker"/>.</summary>
    static async Task<bool> DiskHoldsAsync(string image, string marker)
    {
        var raw = Path.Combine(Path.GetTempPath(), $"sl-disk-{Guid.NewGuid():N}.raw");
        try
        {
            var convert = await HostTools.RunAsync("qemu-img", ["convert", "-U", "-O", "raw", image, raw], TimeSpan.FromSeconds(120));
            Assert.That(convert.Exit, Is.EqualTo(0), convert.Err);
            var bytes = await File.ReadAllBytesAsync(raw);
            return bytes.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(marker)) >= 0;
        }
        finally { File.Delete(raw); }
    }

    static async Task<IReadOnlyList<int>> QemuInAsync(SshNode node) =>
        (await node.Namespace.PidsAsync()).Where(pid =>
        {
            // VMs only: the node probe's short KVM test guest is not one.
            try { return File.ReadAllText($"/proc/{pid}/cmdline").StartsWith("qemu-system-x86_64\0-name\0stratuslab-", StringComparison.Ordinal); }
            catch (IOException) { return false; }
        }).ToList();

    [Test, CancelAfter(600_000)]

    public async Task The_appliance_runs_on_an_ssh_node_from_its_cache_goes_UNKNOWN_while_the_node_is_down_is_reattached_and_leaves_nothing_behind()
    {
        await using var node = await SshNode.StartAsync(_publicKey);
        var host = await AddAsync("node-a", node);
        Assert.That(host["state"]!.GetValue<string>(), Is.EqualTo("OK"), host.ToJsonString());
        var local = await DisableLocalAsync();
        try
        {
            // First boot: the image is not cached on the node yet.
            var clock = Stopwatch.StartNew();
            var first = (await InstanceApiTests.CreateAsync(_admin, new { name = "on-node" }))["id"]!.GetValue<long>();
            var running = await InstanceApiTests.WaitAsync(_admin, first, "RUNNING", 240);
            var uncached = clock.Elapsed;
            Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), running.ToJsonString());
            Assert.That(running["host"]!.GetValue<string>(), Is.EqualTo("node-a"));
            var qemu = await QemuInAsync(node);
            Assert.That(qemu, Has.Count.EqualTo(1), "QEMU runs inside the node: " + string.Join("\n", qemu.Select(p => $"{p} {File.ReadAllText($"/proc/{p}/status").Split('\n')[2]} {File.ReadAllText($"/proc/{p}/cmdline").Replace('\0', ' ')}")));
            var cmdline = File.ReadAllText($"/proc/{qemu[0]}/cmdline").Replace('\0', ' ');
            Assert.That(cmdline, Does.Contain(node.Root + "/instances/" + first).And.Not.Contain(_server.DataDir), "node-side paths only");
            Assert.That(Directory.GetFiles(Path.Combine(node.Root, "cache")), Has.Length.EqualTo(1), "the image is cached on the node once");

            // Second boot, from the node's cache; suspended at once (it costs no CPU while the first boots), it dies later.
            clock.Restart();
            var second = (await InstanceApiTests.CreateAsync(_admin, new { name = "on-node-2" }))["id"]!.GetValue<long>();
            Assert.That((await InstanceApiTests.WaitAsync(_admin, second, "RUNNING", 240))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
            var cached = clock.Elapsed;
            TestContext.Progress.WriteLine($"request -> RUNNING on an SSH node: uncached image {uncached.TotalSeconds:0.0} s, cached {cached.TotalSeconds:0.0} s");
            Assert.That(await QemuInAsync(node), Has.Count.EqualTo(2));
            await (await _admin.PostAsync($"/api/v1/instances/{second}/actions/suspend", null)).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(_admin, second, "SUSPENDED", 60))["state"]!.GetValue<string>(), Is.EqualTo("SUSPENDED"));

            // The serial console comes back from the node. Two clocks: how long the guest takes to print its boot line (TCG on
            // a loaded machine: minutes; the node-side log is read directly, as the node shares this file system), and how long
            // the copy-back then takes to bring it to the console API (a few monitor passes).
            var nodeLog = Path.Combine(node.Root, "instances", first.ToString(), "serial.log");
            var guestDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(300);
            while (!(File.Exists(nodeLog) && (await File.ReadAllTextAsync(nodeLog)).Contains("stratuslab: mounted proc", StringComparison.Ordinal)))
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(guestDeadline),
                    $"the guest printed its boot line on the node within 300 s; node-side log ({(File.Exists(nodeLog) ? new FileInfo(nodeLog).Length : -1)} bytes): " +
                    (File.Exists(nodeLog) ? await File.ReadAllTextAsync(nodeLog) : "missing") + "; QEMU on the node: " + string.Join(", ", (await QemuInAsync(node)).Select(CpuTimeOf)));
                await Task.Delay(500);
            }
            var copied = Stopwatch.StartNew();
            string console;
            while (!(console = await _admin.GetStringAsync($"/api/v1/instances/{first}/console")).Contains("stratuslab: mounted proc", StringComparison.Ordinal))
            {
                Assert.That(copied.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)),
                    $"the node's boot line reaches the console API within 60 s (monitor every 1 s); API console: '{console}'; node-side log: {new FileInfo(nodeLog).Length} bytes");
                await Task.Delay(500);
            }
            TestContext.Progress.WriteLine($"console line copied back {copied.Elapsed.TotalSeconds:0.0} s after the guest printed it on the node");

            // The screen comes from the node: its VNC socket forwarded over the control master, proxied to the WebSocket.
            using (var screen = new System.Net.WebSockets.ClientWebSocket())
            {
                using var screenTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                screen.Options.SetRequestHeader("Authorization", "Bearer " + _server.AdminToken);
                await screen.ConnectAsync(new UriBuilder(new Uri(_server.BaseAddress, $"/api/v1/instances/{first}/vnc")) { Scheme = "ws" }.Uri, screenTimeout.Token);
                var init = await RfbOverWebSocket.HandshakeAsync(screen, screenTimeout.Token);
                Assert.That(init.Width * init.Height, Is.GreaterThan(0), init.ToString());
                Assert.That(init.Name, Does.Contain($"stratuslab-{first}"));
                await screen.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "done", screenTimeout.Token);
            }

            // QMP reaches the node's QEMU through the forwarded socket.
            await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/suspend", null)).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(_admin, first, "SUSPENDED", 60))["state"]!.GetValue<string>(), Is.EqualTo("SUSPENDED"));
            await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/resume", null)).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(_admin, first, "RUNNING", 60))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));

            // The serial console of the node's VM is interactive (its socket forwarded like the screen's): the guest writes a
            // marker onto its boot disk, in the unused gap between the MBR and the first partition.
            var marker = "slmark-" + Guid.NewGuid().ToString("N");
            var typed = await SerialConsole.RunAsync(_server, _server.AdminToken, first,
                $"echo {marker} | dd of=/dev/vda bs=512 seek=1024 conv=notrunc,fsync 2>/dev/null && sync && echo written-$((6*7))", "written-42", TimeSpan.FromSeconds(120));
            Assert.That(typed, Does.Contain("written-42"), "the node VM's serial shell ran what was typed: " + typed);

            // Stop: the VM powers off (or is killed after Compute:ShutdownTimeoutSeconds), its disk comes back with what the guest
            // wrote, nothing stays on the node; start boots it there again.
            await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/stop", null)).Json(202);
            var stoppedVm = await InstanceApiTests.WaitAsync(_admin, first, "STOPPED", 90);
            Assert.That(stoppedVm["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"));
            Assert.That(await QemuInAsync(node), Has.Count.EqualTo(1), "only the suspended second VM runs on the node");
            Assert.That(Directory.Exists(Path.Combine(node.Root, "instances", first.ToString())), Is.False, "a stopped VM leaves nothing on the node");
            Assert.That(await DiskHoldsAsync(await BootDiskPathAsync(first), marker), Is.True, "the guest's write came back from the node into its boot disk on the front-end");
            await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/start", null)).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(_admin, first, "RUNNING", 120))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
            Assert.That(await QemuInAsync(node), Has.Count.EqualTo(2), "started again on the node");

            // The node stops answering: host ERROR, the VMs' state UNKNOWN with the reason; back: re-attached, each in its state.
            await node.StopSshdAsync();
            var down = Stopwatch.StartNew();
            var unknown = await UntilAsync(first, i => i["state"]!.GetValue<string>() == "UNKNOWN", 60, "UNKNOWN while the node is down");
            await UntilAsync(second, i => i["state"]!.GetValue<string>() == "UNKNOWN", 60, "the suspended VM is UNKNOWN too");
            TestContext.Progress.WriteLine($"VM shown UNKNOWN {down.Elapsed.TotalSeconds:0.0} s after the node's sshd stopped");
            Assert.That(unknown["failureReason"]!.GetValue<string>(), Does.Contain("node node-a is in ERROR"), "the reason names the node and its state");
            Assert.That(unknown["allowedActions"]!.AsArray().Select(a => a!.GetValue<string>()), Is.EqualTo(new[] { "terminate" }));
            Assert.That((await HostAsync("node-a"))["state"]!.GetValue<string>(), Is.EqualTo("ERROR"));
            Assert.That((await HostAsync("node-a"))["allocatedCpus"]!.GetValue<long>(), Is.GreaterThan(0), "an UNKNOWN VM keeps its capacity");
            await node.StartSshdAsync();
            var back = await UntilAsync(first, i => i["failureReason"] is null && i["state"]!.GetValue<string>() == "RUNNING", 60, "re-attached when the node is back");
            Assert.That(back["host"]!.GetValue<string>(), Is.EqualTo("node-a"));
            await UntilAsync(second, i => i["failureReason"] is null && i["state"]!.GetValue<string>() == "SUSPENDED", 60, "the suspended VM is re-attached SUSPENDED");
            await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/suspend", null)).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(_admin, first, "SUSPENDED", 60))["state"]!.GetValue<string>(), Is.EqualTo("SUSPENDED"), "QMP works again");
            await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/resume", null)).Json(202);
            await InstanceApiTests.WaitAsync(_admin, first, "RUNNING", 60);

            // Save as image: a shutdown with save brings the disk back from the node and makes it a new signed image holding
            // what the guest wrote; nothing of the VM stays on the node.
            await (await _admin.PostAsync($"/api/v1/instances/{first}/actions/shutdown?save=true", null)).Json(202);
            var done = await InstanceApiTests.WaitAsync(_admin, first, "DONE", 120);
            var saved = done["savedImage"]?.GetValue<string>();
            Assert.That(saved, Has.Length.EqualTo(27), "saved as an image: " + done.ToJsonString());
            var savedVolume = (await (await _admin.GetAsync("/api/v1/volumes")).Json(200)).AsArray().Single(v => v!["identifier"]?.GetValue<string>() == saved)!;
            Assert.That(await DiskHoldsAsync(new Uri(savedVolume["turl"]!.GetValue<string>()).LocalPath, marker), Is.True, "the saved image holds what the guest wrote on the node");
            var check = await (await _admin.PostAsJsonAsync("/api/v1/policy/check", new { identifier = saved })).Json(200);
            Assert.That(check["accepted"]!.GetValue<bool>(), Is.True, "the saved image is a signed entry the site policy accepts");
            Assert.That(Directory.Exists(Path.Combine(node.Root, "instances", first.ToString())), Is.False, "the saved VM leaves nothing on the node");
            Assert.That(await QemuInAsync(node), Has.Count.EqualTo(1));

            // Down again, and the other VM dies meanwhile: FAILED with a reason when the node answers.
            await node.StopSshdAsync();
            await UntilAsync(second, i => i["state"]!.GetValue<string>() == "UNKNOWN", 60, "UNKNOWN again");
            foreach (var pid in await QemuInAsync(node)) Process.GetProcessById(pid).Kill();
            await node.StartSshdAsync();
            var failed = await UntilAsync(second, i => i["state"]!.GetValue<string>() == "FAILED", 60, "FAILED once the node shows the VM is gone");
            Assert.That(failed["failureReason"]!.GetValue<string>(), Does.Contain("stopped running"));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (Directory.Exists(Path.Combine(node.Root, "instances", second.ToString())) && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.That(Directory.Exists(Path.Combine(node.Root, "instances", second.ToString())), Is.False, "the failed VM's node directory is removed");
            Assert.That(await QemuInAsync(node), Is.Empty);
            await (await _admin.DeleteAsync($"/api/v1/instances/{second}")).Json(202);
        }
        finally
        {
            await (await _admin.PostAsync($"/api/v1/hosts/{local}/enable", null)).Json(200);
            foreach (var i in (await (await _admin.GetAsync("/api/v1/instances")).Json(200)).AsArray())
                if (i!["host"]?.GetValue<string>() == "node-a" && i["state"]!.GetValue<string>() is not ("DONE" or "FAILED"))
                    await _admin.DeleteAsync($"/api/v1/instances/{i["id"]}");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (DateTime.UtcNow < deadline && (await (await _admin.GetAsync("/api/v1/hosts/node-a")).Json(200))["runningVms"]!.GetValue<long>() > 0) await Task.Delay(500);
            await _admin.DeleteAsync("/api/v1/hosts/node-a");
        }
    }

    [Test]
    public async Task Adding_an_ssh_node_checks_its_input_before_anything_is_written()
    {
        async Task<string> Rejected(object body, string field)
        {
            var problem = await (await _admin.PostAsJsonAsync("/api/v1/hosts", body)).Problem(400);
            Assert.That(problem["field"]?.GetValue<string>() ?? problem.ToJsonString(), Does.Contain(field));
            return problem["detail"]!.GetValue<string>();
        }
        Assert.That(await Rejected(new { name = "n1", driver = "ssh" }, "ssh"), Does.Contain("root@"));
        Assert.That(await Rejected(new { name = "n1", driver = "ssh", ssh = "root@-oProxyCommand=x" }, "ssh"), Does.Contain("not a host name"));
        Assert.That(await Rejected(new { name = "n1", driver = "ssh", ssh = "-x@node" }, "ssh"), Does.Contain("login name"));
        Assert.That(await Rejected(new { name = "n1", driver = "ssh", ssh = "root@node", port = 70000 }, "port"), Does.Contain("1..65535"));
        Assert.That(await Rejected(new { name = "n1", driver = "ssh", ssh = "root@node", keyFile = "/nonexistent/key" }, "keyFile"), Does.Contain("does not exist"));
        Assert.That(await Rejected(new { name = "n1", driver = "ssh", ssh = "root@node", root = _server.DataDir + "/node" }, "root"), Does.Contain("data dir"));
        Assert.That(await Rejected(new { name = "n1", driver = "simulated", cpus = 1, memoryMiB = 128, ssh = "root@node" }, "ssh"), Does.Contain("driver 'ssh' only"));
        Assert.That((await (await _admin.GetAsync("/api/v1/hosts/n1")).Content.ReadAsStringAsync()), Does.Contain("does not exist"));
    }
}
