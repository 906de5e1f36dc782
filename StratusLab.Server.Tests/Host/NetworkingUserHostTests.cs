using System.Net.Http.Json;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>Host tier, user driver (no root, no host changes): an appliance with two user-mode NICs from their leases, SSH through its PAT port on 127.0.0.1.</summary>
public class NetworkingUserHostTests
{
    [Test, CancelAfter(240_000)]
    public async Task A_vm_on_its_own_user_network_gets_the_leased_addresses_and_is_reached_by_ssh_through_pat()
    {
        var keyDir = TempDir.Create("ssh");
        var server = await ApplianceHost.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:Accelerator"] = "tcg",
            ["Compute:BootTimeoutSeconds"] = "150",
            ["Compute:ShutdownTimeoutSeconds"] = "20",
        });
        try
        {
            using var admin = ApplianceHost.Client(server);
            var (key, publicKey) = await HostTools.SshKeyAsync(keyDir);
            await (await admin.PostAsJsonAsync("/api/v1/networks", new { name = "mine", cidr = "192.168.77.0/24", first = "192.168.77.20" })).Json(201);
            var id = (await InstanceApiTests.CreateAsync(admin, new { name = "two-nics", networks = new[] { "mine", "default" }, sshKeys = new[] { publicKey }, forwardPorts = new[] { 8080 } }))["id"]!.GetValue<long>();
            var ready = await InstanceApiTests.WaitAsync(admin, id, "ready", 200);
            Assert.That(ready["ready"]!.GetValue<bool>(), Is.True, "the guest reached the guest API at its first NIC's gateway: " + ready.ToJsonString());
            var nics = ready["nics"]!.AsArray();
            Assert.That(nics.Select(n => n!["ip"]!.GetValue<string>()), Is.EqualTo(new[] { "192.168.77.20", "10.0.2.15" }));
            Assert.That(ready["portForwards"]!.AsArray().Select(f => f!["guestPort"]!.GetValue<int>()), Is.EqualTo(new[] { 22, 80, 8080 }));

            var connect = new StringWriter();
            Assert.That(await ClientCli.RunAsync(["connect-instance", id.ToString(), "--identity", key, "--endpoint", server.BaseAddress.ToString(), "--token", server.AdminToken], connect, new StringWriter()), Is.Zero);
            var command = connect.ToString().Trim().Split(' ');
            Assert.That(command[0], Is.EqualTo("ssh"));
            var result = await HostTools.RunAsync("ssh", [.. command.Skip(1).SkipLast(1), "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", command[^1],
                "ip -4 -o addr show; ip route; . /mnt/context/context.sh; echo \"eth0 $ETH0_IP $ETH0_MASK $ETH0_GATEWAY $ETH0_DNS $ETH0_MAC\"; echo \"eth1 $ETH1_IP $ETH1_MAC\""], TimeSpan.FromSeconds(60));
            Assert.That(result.Exit, Is.Zero, result.Err);
            Assert.That(result.Out, Does.Contain("inet 192.168.77.20/24").And.Contain("inet 10.0.2.15/24").And.Contain("default via 192.168.77.2"));
            Assert.That(result.Out, Does.Contain("eth0 192.168.77.20 255.255.255.0 192.168.77.2 192.168.77.3 02:00:c0:a8:4d:14"));
            Assert.That(result.Out, Does.Contain("eth1 10.0.2.15 02:00:0a:00:02:0f"));

            await (await admin.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
            Assert.That((await InstanceApiTests.WaitAsync(admin, id, "DONE", 60))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
            Assert.That((await (await admin.GetAsync("/api/v1/networks/mine/leases?state=used")).Json(200)).AsArray(), Is.Empty);
        }
        finally
        {
            TempDir.Delete(keyDir);
            await ApplianceHost.StopAsync(server);
        }
    }
}
