using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: EGI's probe sequence through OCCI against a real QEMU guest (the bundled appliance): query interface, create
/// from os_tpl + resource_tpl, active, a new storage linked and seen in the guest under the device id OCCI reports, stop,
/// delete, 404.
/// </summary>
public class OcciHostTests
{
    const string Infra = "http://schemas.ogf.org/occi/infrastructure#";
    TestServer _server = null!;
    HttpClient _admin = null!;
    string _keyDir = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        _keyDir = TempDir.Create("ssh");
        _server = await ApplianceHost.StartAsync();
        _admin = ApplianceHost.Client(_server);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin?.Dispose();
        TempDir.Delete(_keyDir);
        await ApplianceHost.StopAsync(_server);
    }

    [Test, CancelAfter(420_000)]
    public async Task The_probe_sequence_boots_a_guest_that_sees_the_linked_storage_then_stops_and_deletes_it()
    {
        var (privateKey, publicKey) = await HostTools.SshKeyAsync(_keyDir);
        var occi = new OcciClient(_admin, OcciRenderingKind.Occi);
        var query = await occi.GetAsync("/-/");
        Assert.That(query.Status, Is.EqualTo(200), query.Body);
        var site = _server.BaseAddress.ToString().TrimEnd('/');
        var osTpl = query.Categories.First(c => c.Contains($"scheme=\"{site}/occi/os_tpl#\"") && c.Contains("the site default"));
        var osTerm = osTpl.Split(';')[0];

        var marker = "occi-user-data-" + Guid.NewGuid().ToString("N")[..12];
        var userData = $"#!/bin/sh\necho {marker}\n";
        var created = await occi.PostAsync("/compute/",
            $"Category: compute; scheme=\"{Infra}\"; class=\"kind\"",
            $"Category: {osTerm}; scheme=\"{site}/occi/os_tpl#\"; class=\"mixin\"",
            $"Category: t1_tiny; scheme=\"{site}/occi/resource_tpl#\"; class=\"mixin\"",
            "Category: public_key; scheme=\"http://schemas.openstack.org/instance/credentials#\"; class=\"mixin\"",
            "Category: user_data; scheme=\"http://schemas.openstack.org/compute/instance#\"; class=\"mixin\"",
            $"X-OCCI-Attribute: occi.core.title=\"occi-probe\", org.openstack.credentials.publickey.data=\"{publicKey.Trim()}\"",
            $"X-OCCI-Attribute: org.openstack.compute.user_data=\"{Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(userData))}\"",
            "X-OCCI-Attribute: org.stratuslab.context.greeting=\"hello-from-occi\"");
        Assert.That(created.Status, Is.EqualTo(201), created.Body);
        var compute = OcciClient.PathOf(created.Location!);
        await occi.WaitStateAsync(compute, "active", TimeSpan.FromSeconds(180));

        // SSH through the port REST shows (OCCI has no port-forward attribute); the guest is the same instance.
        var id = long.Parse(compute.Split('/').Last());
        var ready = await InstanceApiTests.WaitAsync(_admin, id, "ready", 180);
        Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, ready.ToJsonString());
        var sshPort = ready["portForwards"]!.AsArray().First(f => f!["guestPort"]!.GetValue<int>() == 22)!["hostPort"]!.GetValue<int>();

        // What OCCI's public_key, user_data and context attributes gave reaches the guest: the key in root's authorized_keys
        // (the login above used it), the user data and the variable in the context.sh the guest read from its CONTEXT CD.
        var context = await SshAsync(privateKey, sshPort,
            "cat /root/.ssh/authorized_keys; . /mnt/context/context.sh; echo \"greeting=$GREETING\"; echo \"$USER_DATA\" | base64 -d");
        Assert.That(context.Exit, Is.Zero, $"{context.Err}\n{context.Out}");
        Assert.That(context.Out, Does.Contain(publicKey.Trim()), "the OCCI public key is in root's authorized_keys");
        Assert.That(context.Out, Does.Contain("greeting=hello-from-occi"));
        Assert.That(context.Out, Does.Contain($"echo {marker}"), "the OCCI user data reached the guest");

        var storage = await occi.PostAsync("/storage/", $"Category: storage; scheme=\"{Infra}\"; class=\"kind\"", "X-OCCI-Attribute: occi.storage.size=1");
        Assert.That(storage.Status, Is.EqualTo(201), storage.Body);
        var storagePath = OcciClient.PathOf(storage.Location!);
        var link = await occi.PostAsync("/link/storagelink/", $"Category: storagelink; scheme=\"{Infra}\"; class=\"kind\"",
            $"X-OCCI-Attribute: occi.core.source=\"{compute}\", occi.core.target=\"{storagePath}\"");
        Assert.That(link.Status, Is.EqualTo(201), link.Body);
        var deviceId = (await occi.GetAsync(OcciClient.PathOf(link.Location!))).Attribute("occi.storagelink.deviceid")!.Trim('"');
        Assert.That(deviceId, Does.StartWith("/dev/disk/by-id/virtio-"));
        var serial = deviceId["/dev/disk/by-id/virtio-".Length..];

        // The guest finds a new virtio disk whose serial is the device id OCCI reported, of the storage's size.
        var seen = await SshAsync(privateKey, sshPort,
            "i=0; while [ $i -lt 200 ]; do for d in /sys/block/vd*; do [ \"$(cat $d/serial 2>/dev/null)\" = '" + serial + "' ] && { echo \"${d##*/} $(cat $d/size)\"; exit 0; }; done; " +
            "sleep 0.1; i=$((i+1)); done; echo 'no disk with serial " + serial + "' >&2; exit 1", timeoutSeconds: 90);
        Assert.That(seen.Exit, Is.Zero, $"{seen.Err}\n{seen.Out}");
        var parts = seen.Out.Trim().Split(' ');
        Assert.That(parts[0], Does.Match("^vd[b-z]$"));
        Assert.That(long.Parse(parts[1]), Is.EqualTo((1L << 30) / 512), "the guest sees the 1 GB storage");

        Assert.That((await occi.DeleteAsync(OcciClient.PathOf(link.Location!))).Status, Is.EqualTo(200));
        var stop = await occi.PostAsync(compute + "?action=stop", "Category: stop; scheme=\"http://schemas.ogf.org/occi/infrastructure/compute/action#\"; class=\"action\"");
        Assert.That(stop.Status, Is.EqualTo(200), stop.Body);
        var inactive = await occi.WaitStateAsync(compute, "inactive", TimeSpan.FromSeconds(120));
        Assert.That(inactive.Attribute("org.stratuslab.state"), Is.EqualTo("\"STOPPED\""));
        const string powerButton = "stratuslab: power button pressed, powering off";
        Assert.That(Count(await ConsoleAsync(id), powerButton), Is.EqualTo(1), "the graceful stop pressed the ACPI power button");

        // Started again, then stop method=poweroff: QEMU is switched off at once; the guest never sees the power button.
        Assert.That((await occi.PostAsync(compute + "?action=start")).Status, Is.EqualTo(200));
        await occi.WaitStateAsync(compute, "active", TimeSpan.FromSeconds(180));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var poweroff = await occi.PostAsync(compute + "?action=stop", "X-OCCI-Attribute: method=\"poweroff\"");
        Assert.That(poweroff.Status, Is.EqualTo(200), poweroff.Body);
        await occi.WaitStateAsync(compute, "inactive", TimeSpan.FromSeconds(30));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "a power cut does not wait for the guest (graceful stops wait up to 30 s here)");
        Assert.That(HostTools.QemuProcesses(_server.DataDir), Is.Empty, "QEMU is gone");
        Assert.That(Count(await ConsoleAsync(id), powerButton), Is.EqualTo(1), "the guest was not asked");
        Assert.That((await occi.DeleteAsync(compute)).Status, Is.EqualTo(200));
        await occi.WaitGoneAsync(compute, TimeSpan.FromSeconds(120));
        Assert.That((await occi.DeleteAsync(storagePath)).Status, Is.EqualTo(200));
        Assert.That(HostTools.QemuProcesses(_server.DataDir), Is.Empty, "no QEMU left behind");
    }

    static int Count(string text, string what) => text.Split('\n').Count(l => l.Contains(what, StringComparison.Ordinal));

    async Task<string> ConsoleAsync(long id) => await _admin.GetStringAsync($"/api/v1/instances/{id}/console");

    static Task<(int Exit, string Out, string Err)> SshAsync(string privateKey, int port, string command, int timeoutSeconds = 60) =>
        ApplianceHost.SshAsync(privateKey, port, command, timeoutSeconds: timeoutSeconds);
}
