using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Networking;

/// <summary>A modelled site on the defaults: the default user network and the PAT range do not cap simulated instances.</summary>
public class SimulatedSiteTests
{
    [Test, CancelAfter(300_000)]
    public async Task Three_hundred_simulated_instances_on_the_default_network_all_run_each_with_its_private_address_and_no_host_port()
    {
        await using var server = await TestServer.StartAsync();
        using var admin = server.Client();
        // What an admin modelling a site does: room on a simulated host, and no quota for itself. The network and ports stay as they are.
        await (await admin.PostAsJsonAsync("/api/v1/quotas/admin", new { vms = -1, cpus = -1, memoryMiB = -1, storageGiB = -1 })).Json(200);
        await (await admin.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-site", driver = "simulated", cpus = 4096, memoryMiB = 4 << 20 })).Json(201);

        // 300 > the 240 addresses of the default /24 range.
        var created = (await InstanceApiTests.CreateAsync(admin, new { count = 300, cpu = 1, memoryMiB = 64 })).AsArray();
        Assert.That(created, Has.Count.EqualTo(300));
        var deadline = DateTime.UtcNow.AddMinutes(4);
        JsonArray running;
        do
        {
            await Task.Delay(500);
            running = (await (await admin.GetAsync("/api/v1/instances?state=RUNNING&limit=1000")).Json(200)).AsArray();
        } while (running.Count < 300 && DateTime.UtcNow < deadline);
        var failed = (await (await admin.GetAsync("/api/v1/instances?state=FAILED&limit=5")).Json(200)).AsArray();
        Assert.That(running, Has.Count.EqualTo(300), failed.ToJsonString());

        Assert.That(running.Select(i => i!["nics"]![0]!["ip"]!.GetValue<string>()).Distinct(), Is.EqualTo(new[] { "10.0.2.15" }),
            "a user-mode NIC is private to its VM: every one gets the range's first address");
        Assert.That(running.SelectMany(i => i!["portForwards"]!.AsArray()), Is.Empty, "simulated VMs hold no port of this machine");

        var network = await (await admin.GetAsync("/api/v1/networks/default")).Json(200);
        var leases = (await (await admin.GetAsync("/api/v1/networks/default/leases?state=used&limit=1000")).Json(200)).AsArray();
        Assert.That(leases.Select(l => l!["instanceId"]!.GetValue<long>()).Distinct().Count(), Is.EqualTo(300), network.ToJsonString());

        // Terminating gives the private leases back like any other.
        var first = created[0]!["id"]!.GetValue<long>();
        await (await admin.DeleteAsync($"/api/v1/instances/{first}")).Json(202);
        await InstanceApiTests.WaitAsync(admin, first, "DONE");
        leases = (await (await admin.GetAsync("/api/v1/networks/default/leases?state=used&limit=1000")).Json(200)).AsArray();
        Assert.That(leases.Any(l => l!["instanceId"]!.GetValue<long>() == first), Is.False);
    }
}
