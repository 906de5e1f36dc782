using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>
/// Compute's action options and rename over REST (simulated driver): stop ?force=true powers off at once and keeps the
/// instance startable, reboot ?graceful=true goes through a guest power-off and a new power-on, PATCH renames.
/// </summary>
public class ForcedStopAndRenameTests
{
    TestServer _server = null!;
    HttpClient _admin = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Compute:BootTimeoutSeconds"] = "5",
            ["Compute:MonitorIntervalSeconds"] = "1",
        });
        await TestImages.RegisterDefaultAsync(_server);
        _admin = _server.Client();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    async Task<(HttpClient Http, long Id)> RunningAsync(string name)
    {
        var http = _server.Client(await _server.CreateUserAsync(Unique("act")));
        var id = (await InstanceApiTests.CreateAsync(http, new { name }))["id"]!.GetValue<long>();
        await InstanceApiTests.WaitAsync(http, id, "RUNNING");
        return (http, id);
    }

    static async Task<string> ConsoleAsync(HttpClient http, long id) => await http.GetStringAsync($"/api/v1/instances/{id}/console");

    [Test, CancelAfter(60_000)]
    public async Task A_forced_stop_powers_off_without_asking_the_guest_and_the_instance_starts_again()
    {
        var (http, id) = await RunningAsync("forced");
        using var _ = http;
        var answer = await (await http.PostAsync($"/api/v1/instances/{id}/actions/stop?force=true", null)).Json(202);
        Assert.That(answer["id"]!.GetValue<long>(), Is.EqualTo(id));
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "STOPPED"))["state"]!.GetValue<string>(), Is.EqualTo("STOPPED"));
        var log = await ConsoleAsync(http, id);
        Assert.That(log, Does.Contain("power cut: switched off at once (forced)"));
        Assert.That(log, Does.Not.Contain("ACPI power button"), "a forced stop does not ask the guest");

        await (await http.PostAsync($"/api/v1/instances/{id}/actions/start", null)).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), "the instance (and its disk) is kept");

        // Without force, stop is the ACPI power-off it always was.
        await (await http.PostAsync($"/api/v1/instances/{id}/actions/stop", null)).Json(202);
        await InstanceApiTests.WaitAsync(http, id, "STOPPED");
        Assert.That(await ConsoleAsync(http, id), Does.Contain("ACPI power button: powered off"));
        await http.DeleteAsync($"/api/v1/instances/{id}");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_graceful_reboot_powers_the_guest_off_and_boots_it_again_while_a_plain_reboot_resets_it()
    {
        var (http, id) = await RunningAsync("rebooted");
        using var _ = http;
        await (await http.PostAsync($"/api/v1/instances/{id}/actions/reboot", null)).Json(202);
        await WaitForConsoleAsync(http, id, "reset: rebooting");
        Assert.That(await ConsoleAsync(http, id), Does.Not.Contain("ACPI power button"), "a plain reboot is a reset");

        await (await http.PostAsync($"/api/v1/instances/{id}/actions/reboot?graceful=true", null)).Json(202);
        var log = await WaitForConsoleAsync(http, id, "ACPI power button: powered off");
        var running = await InstanceApiTests.WaitAsync(http, id, "RUNNING");
        log = await ConsoleAsync(http, id);
        Assert.That(log.Split('\n').Count(l => l.Contains("power on: ")), Is.EqualTo(2), $"booted a second time:\n{log}");
        Assert.That(log.IndexOf("ACPI power button", StringComparison.Ordinal), Is.LessThan(log.LastIndexOf("power on: ", StringComparison.Ordinal)));
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        await http.DeleteAsync($"/api/v1/instances/{id}");
    }

    static async Task<string> WaitForConsoleAsync(HttpClient http, long id, string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var log = await ConsoleAsync(http, id);
            if (log.Contains(text, StringComparison.Ordinal)) return log;
            if (DateTime.UtcNow > deadline) Assert.Fail($"the console never showed '{text}':\n{log}");
            await Task.Delay(100);
        }
    }

    [TestCase("suspend", "force=true", "force", "cannot be forced")]
    [TestCase("stop", "graceful=true", "graceful", "only reboot")]
    [TestCase("reboot", "force=true&graceful=true", "force", "exclude each other")]
    public async Task Options_an_action_does_not_take_are_refused_naming_the_option(string action, string query, string field, string says)
    {
        var (http, id) = await RunningAsync("options");
        using var _ = http;
        var refused = await (await http.PostAsync($"/api/v1/instances/{id}/actions/{action}?{query}", null)).Json(400);
        Assert.That(refused.ToJsonString(), Does.Contain(field).And.Contain(says));
        Assert.That((await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), "nothing was done");
        await http.DeleteAsync($"/api/v1/instances/{id}");
    }

    [Test, CancelAfter(60_000)]
    public async Task Renaming_an_instance_changes_its_name_but_not_the_host_name_its_guest_was_given()
    {
        var (http, id) = await RunningAsync("old-name");
        using var _ = http;
        var renamed = await (await http.PatchAsJsonAsync($"/api/v1/instances/{id}", new { name = "new-name" })).Json(200);
        Assert.That(renamed["name"]!.GetValue<string>(), Is.EqualTo("new-name"));
        Assert.That(renamed["hostname"]!.GetValue<string>(), Is.EqualTo("old-name"), "the guest booted as old-name");
        Assert.That((await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200))["name"]!.GetValue<string>(), Is.EqualTo("new-name"));

        var bad = await (await http.PatchAsJsonAsync($"/api/v1/instances/{id}", new { name = "" })).Json(400);
        Assert.That(bad.ToJsonString(), Does.Contain("name"));
        var nothing = await (await http.PatchAsJsonAsync($"/api/v1/instances/{id}", new { })).Json(400);
        Assert.That(nothing["detail"]!.GetValue<string>(), Does.Contain("give 'name'"));
        using var other = _server.Client(await _server.CreateUserAsync(Unique("other")));
        await (await other.PatchAsJsonAsync($"/api/v1/instances/{id}", new { name = "stolen" })).Json(404);
        Assert.That((await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200))["name"]!.GetValue<string>(), Is.EqualTo("new-name"));

        await http.DeleteAsync($"/api/v1/instances/{id}");
        await InstanceApiTests.WaitAsync(http, id, "DONE");
        await (await http.PatchAsJsonAsync($"/api/v1/instances/{id}", new { name = "too-late" })).Json(409);
    }
}
