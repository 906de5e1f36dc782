using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>The console API (log, tail, follow), image requirements at admission and the ready timeout, over HTTP with the simulated driver.</summary>
public class GuestConsoleApiTests
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

    static long Id(JsonNode node) => node["id"]!.GetValue<long>();

    async Task<long> RunningAsync(HttpClient http, object? body = null)
    {
        var id = Id(await InstanceApiTests.CreateAsync(http, body ?? new { }));
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        return id;
    }

    [Test, CancelAfter(60_000)]
    public async Task The_console_log_shows_the_boot_lines_tail_keeps_the_last_ones_and_it_outlives_the_instance()
    {
        using var http = _server.Client(await _server.CreateUserAsync(Unique("con")));
        var id = await RunningAsync(http, new { name = "console-vm" });

        var log = await http.GetStringAsync($"/api/v1/instances/{id}/console");
        Assert.That(log, Does.Contain("power on: 1 CPU").And.Contain("console-vm booted"));

        await (await http.PostAsync($"/api/v1/instances/{id}/actions/reboot", null)).Json(202);
        string last = "";
        for (var i = 0; i < 50 && !last.Contains("booted again"); i++)
        {
            await Task.Delay(100);
            last = await http.GetStringAsync($"/api/v1/instances/{id}/console?tail=1");
        }
        Assert.That(last.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), "tail=1 gives one line");
        Assert.That(last, Does.Contain("booted again"), "and it is the newest one");

        await (await http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(http, id, "DONE"))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        var after = await http.GetStringAsync($"/api/v1/instances/{id}/console");
        Assert.That(after, Does.Contain("console-vm booted").And.Contain("killed"), "the log is kept after the instance ends");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_tail_that_is_not_a_number_is_400_and_another_users_console_is_404()
    {
        using var owner = _server.Client(await _server.CreateUserAsync(Unique("own")));
        using var other = _server.Client(await _server.CreateUserAsync(Unique("oth")));
        var id = await RunningAsync(owner);

        var bad = await (await owner.GetAsync($"/api/v1/instances/{id}/console?tail=ten")).Problem(400);
        Assert.That(bad["detail"]!.GetValue<string>(), Does.Contain("'tail' = 'ten'").And.Contain("like ?tail=50"));
        await (await owner.GetAsync($"/api/v1/instances/{id}/console?tail=0")).Problem(400);
        // A client that accepts only text (the CLI, curl -H 'Accept: text/plain') still gets the reason, as problem+json.
        using var asText = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/instances/{id}/console?tail=ten");
        asText.Headers.Accept.ParseAdd("text/plain");
        using var textAnswer = await owner.SendAsync(asText);
        Assert.That(textAnswer.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        Assert.That((await textAnswer.Problem(400))["detail"]!.GetValue<string>(), Does.Contain("'tail' = 'ten'"));
        using var asStream = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/instances/{id}/console?follow=true&tail=ten");
        asStream.Headers.Accept.ParseAdd("text/event-stream");
        using var streamAnswer = await owner.SendAsync(asStream);
        Assert.That((await streamAnswer.Problem(400))["detail"]!.GetValue<string>(), Does.Contain("'tail' = 'ten'"));

        var hidden = await (await other.GetAsync($"/api/v1/instances/{id}/console")).Problem(404);
        Assert.That(hidden["detail"]!.GetValue<string>(), Does.Contain($"Instance {id}"));
        await (await other.GetAsync($"/api/v1/instances/{id}/console?follow=true")).Problem(404);
        Assert.That((await _admin.GetAsync($"/api/v1/instances/{id}/console")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "an administrator sees every console");
    }

    [Test, CancelAfter(60_000)]
    public async Task Following_the_console_streams_new_lines_as_they_come_and_ends_when_the_instance_ends()
    {
        using var http = _server.Client(await _server.CreateUserAsync(Unique("fol")));
        http.Timeout = Timeout.InfiniteTimeSpan;
        var id = await RunningAsync(http, new { name = "follow-vm" });

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/instances/{id}/console");
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        async Task<string> ReadUntilAsync(string marker)
        {
            var seen = new System.Text.StringBuilder();
            while (await reader.ReadLineAsync() is { } line)
            {
                seen.AppendLine(line);
                if (line.Contains(marker)) return seen.ToString();
            }
            Assert.Fail($"the stream ended before '{marker}': {seen}");
            return "";
        }

        Assert.That(await ReadUntilAsync("follow-vm booted"), Does.Contain("event: console"), "the existing lines come first");
        // A line written after the stream opened arrives on it.
        await (await http.PostAsync($"/api/v1/instances/{id}/actions/suspend", null)).Json(202);
        Assert.That(await ReadUntilAsync("simulated: paused"), Does.Contain("data: "));
        await (await http.PostAsync($"/api/v1/instances/{id}/actions/resume", null)).Json(202);
        await ReadUntilAsync("simulated: resumed");
        await InstanceApiTests.WaitAsync(http, id, "RUNNING");
        await (await http.DeleteAsync($"/api/v1/instances/{id}")).Json(202);
        var end = await ReadUntilAsync("event: end");
        Assert.That(await reader.ReadLineAsync(), Is.EqualTo("data: DONE"));
        Assert.That(end + "", Does.Not.Contain("event: error"));
    }

    [Test, CancelAfter(60_000)]
    public async Task An_image_that_needs_512_MiB_refuses_a_smaller_type_naming_both_numbers_and_gets_the_smallest_type_that_fits()
    {
        var path = TestImages.CreateQcow2(Path.Combine(_server.DataDir, "test-source"), "needs-512", "24M");
        var registered = await (await _admin.PostAsJsonAsync("/api/v1/images", new
        {
            name = "needs-512", path, minMemoryMiB = 512, minCpu = 1, minDiskGiB = 2, defaultUser = "debian", contextMethod = "nocloud", os = "debian",
        })).Json(201);
        Assert.That(registered["requirements"]!.ToJsonString(), Does.Contain("\"minMemoryMiB\":512").And.Contain("\"defaultUser\":\"debian\"").And.Contain("\"os\":\"debian\""));
        var listed = (await (await _admin.GetAsync("/api/v1/images")).Json(200)).AsArray().Single(i => i!["names"]!.AsArray().Any(n => n!.GetValue<string>() == "needs-512"))!;
        Assert.That(listed["requirements"]!["contextMethod"]!.GetValue<string>(), Is.EqualTo("nocloud"));

        using var http = _server.Client(await _server.CreateUserAsync(Unique("req")));
        var tooSmall = await (await http.PostAsJsonAsync("/api/v1/instances", new { image = "needs-512", instanceType = "t1.tiny" })).Problem(400);
        Assert.That(tooSmall["detail"]!.GetValue<string>(), Does.Contain("128 MiB").And.Contain("at least 512 MiB").And.Contain("t1.micro"));
        var custom = await (await http.PostAsJsonAsync("/api/v1/instances", new { image = "needs-512", cpu = 1, memoryMiB = 256 })).Problem(400);
        Assert.That(custom["detail"]!.GetValue<string>(), Does.Contain("256 MiB").And.Contain("512 MiB"));
        Assert.That(custom.ToJsonString(), Does.Contain("memoryMiB"));

        var created = await InstanceApiTests.CreateAsync(http, new { image = "needs-512" });
        Assert.That(created["instanceType"]!.GetValue<string>(), Is.EqualTo("t1.micro"), "the smallest type with 512 MiB or more");
        Assert.That(created["memoryMiB"]!.GetValue<long>(), Is.EqualTo(512));
        Assert.That(created["loginUser"]!.GetValue<string>(), Is.EqualTo("debian"), "connect-instance logs in as the image's default user");
        Assert.That(created["contextMethod"]!.GetValue<string>(), Is.EqualTo("nocloud"), "with no method in the request, the image's declared one");
        var overridden = await InstanceApiTests.CreateAsync(http, new { image = "needs-512", contextMethod = "opennebula" });
        Assert.That(overridden["contextMethod"]!.GetValue<string>(), Is.EqualTo("opennebula"), "the request's method wins over the image's");

        var plain = await InstanceApiTests.CreateAsync(http, new { });
        Assert.That(plain["instanceType"]!.GetValue<string>(), Is.EqualTo("t1.tiny"), "an image without requirements keeps the default type");
        Assert.That(plain["loginUser"], Is.Null);
        Assert.That(plain["contextMethod"]!.GetValue<string>(), Is.EqualTo("opennebula"), "an image that declares no method gets the default");
        foreach (var id in new[] { Id(created), Id(overridden), Id(plain) }) await http.DeleteAsync($"/api/v1/instances/{id}");
    }

    [Test, CancelAfter(60_000)]
    public async Task An_instance_that_never_becomes_ready_within_its_ready_timeout_is_flagged_with_a_reason()
    {
        using var http = _server.Client(await _server.CreateUserAsync(Unique("rdy")));
        await (await http.PostAsJsonAsync("/api/v1/instances", new { readyTimeoutSeconds = -1 })).Problem(400);
        var id = await RunningAsync(http, new { readyTimeoutSeconds = 1 });
        var watched = await RunningAsync(http, new { });

        JsonNode view = null!;
        for (var i = 0; i < 100; i++)
        {
            view = await (await http.GetAsync($"/api/v1/instances/{id}")).Json(200);
            if (view["notReady"]!.GetValue<bool>()) break;
            await Task.Delay(100);
        }
        Assert.That(view["notReady"]!.GetValue<bool>(), Is.True, view.ToJsonString());
        Assert.That(view["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"), "flagged, not stopped");
        Assert.That(view["notReadyReason"]!.GetValue<string>(), Does.Contain("within 1 s").And.Contain($"console-log {id}"));
        var untimed = await (await http.GetAsync($"/api/v1/instances/{watched}")).Json(200);
        Assert.That(untimed["notReady"]!.GetValue<bool>(), Is.False, "without a ready timeout nothing is flagged");
        foreach (var x in new[] { id, watched }) await http.DeleteAsync($"/api/v1/instances/{x}");
    }
}
