using StratusLab.Server.Tests.Modules.Compute;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// A bridge network made by an API test in the host's namespace is real (its bridge and its dnsmasq outlive the server,
/// by design, as after a crash): the test removes it, after ending the instances with NICs on it.
/// </summary>
public static class BridgeNetworks
{
    public static async Task RemoveAsync(HttpClient admin, string network)
    {
        if ((await admin.GetAsync($"/api/v1/networks/{network}")).StatusCode == System.Net.HttpStatusCode.NotFound) return;
        var live = (await (await admin.GetAsync("/api/v1/instances")).Json(200)).AsArray()
            .Where(i => i!["state"]!.GetValue<string>() is not ("DONE" or "FAILED")).Select(i => i!["id"]!.GetValue<long>()).ToList();
        foreach (var id in live) await admin.DeleteAsync($"/api/v1/instances/{id}");
        foreach (var id in live) await InstanceApiTests.WaitAsync(admin, id, "DONE", 60);
        var deleted = await admin.DeleteAsync($"/api/v1/networks/{network}");
        Assert.That((int)deleted.StatusCode, Is.EqualTo(204), $"network {network} removed: " + await deleted.Content.ReadAsStringAsync());
    }
}
