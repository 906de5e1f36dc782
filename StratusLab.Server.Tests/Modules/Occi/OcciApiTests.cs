using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Occi;

/// <summary>The OCCI 1.1 door over HTTP (simulated driver): GFD.185's examples in text/plain and text/occi, the probe sequence, ownership and auth.</summary>
[TestFixture(OcciRenderingKind.Plain)]
[TestFixture(OcciRenderingKind.Occi)]
public class OcciApiTests(OcciRenderingKind kind)
{
    const string Infra = "http://schemas.ogf.org/occi/infrastructure#";
    const string ComputeKind = $"Category: compute; scheme=\"{Infra}\"; class=\"kind\"";
    const string StorageKind = $"Category: storage; scheme=\"{Infra}\"; class=\"kind\"";
    TestServer _server = null!;
    HttpClient _adminHttp = null!;
    OcciClient _occi = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(new Dictionary<string, string?> { ["Compute:MonitorIntervalSeconds"] = "1" });
        _adminHttp = _server.Client();
        await TestImages.RegisterDefaultAsync(_server, "occi-image");
        await (await _adminHttp.PostAsJsonAsync("/api/v1/hosts", new { name = "sim-occi", driver = "simulated", cpus = 64, memoryMiB = 65536 })).Json(201);
        await (await _adminHttp.PutAsJsonAsync("/api/v1/quotas/admin", new { vms = 1000, cpus = 1000, memoryMiB = 1_000_000, storageGiB = 1000 })).Json(200);
        _occi = new OcciClient(_adminHttp, kind);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _adminHttp.Dispose();
        await _server.DisposeAsync();
    }

    string OsTpl(string term) => $"Category: {term}; scheme=\"{_server.BaseAddress.ToString().TrimEnd('/')}/occi/os_tpl#\"; class=\"mixin\"";
    string ResourceTpl(string term) => $"Category: {term}; scheme=\"{_server.BaseAddress.ToString().TrimEnd('/')}/occi/resource_tpl#\"; class=\"mixin\"";

    [Test, CancelAfter(60_000)]
    public async Task The_query_interface_lists_the_kinds_the_templates_and_the_ip_mixins()
    {
        var answer = await _occi.GetAsync("/-/");
        Assert.That(answer.Status, Is.EqualTo(200), answer.Body);
        Assert.That(answer.Response.Headers.Server.ToString(), Does.Contain("OCCI/1.1").And.Contain("stratuslab"));
        Assert.That(answer.Response.Content.Headers.ContentType!.MediaType, Is.EqualTo(kind == OcciRenderingKind.Plain ? "text/plain" : "text/occi"));
        var categories = answer.Categories.ToList();
        string One(string start) => categories.Single(c => c.StartsWith(start, StringComparison.Ordinal));
        var compute = One($"compute; scheme=\"{Infra}\"; class=\"kind\"");
        Assert.That(compute, Does.Contain("location=\"/compute/\"").And.Contain("title=\"Compute Resource\"").And.Contain("rel=\"http://schemas.ogf.org/occi/core#resource\"")
            .And.Contain("occi.compute.cores").And.Contain("occi.compute.state{immutable}").And.Contain("http://schemas.ogf.org/occi/infrastructure/compute/action#stop"));
        Assert.That(One($"storage; scheme=\"{Infra}\""), Does.Contain("location=\"/storage/\"").And.Contain("occi.storage.size{required}").And.Contain("storage/action#snapshot"));
        Assert.That(One($"network; scheme=\"{Infra}\""), Does.Contain("location=\"/network/\""));
        Assert.That(One($"storagelink; scheme=\"{Infra}\""), Does.Contain("location=\"/link/storagelink/\"").And.Contain("occi.storagelink.deviceid").And.Contain("rel=\"http://schemas.ogf.org/occi/core#link\""));
        Assert.That(One($"networkinterface; scheme=\"{Infra}\""), Does.Contain("location=\"/link/networkinterface/\"").And.Contain("occi.networkinterface.mac"));
        Assert.That(One("ipnetwork; scheme=\"http://schemas.ogf.org/occi/infrastructure/network#\""), Does.Contain("occi.network.address"));
        Assert.That(One("ipnetworkinterface; "), Does.Contain("occi.networkinterface.address"));
        Assert.That(One("stop; scheme=\"http://schemas.ogf.org/occi/infrastructure/compute/action#\"; class=\"action\""), Does.Contain("attributes=\"method\""));
        var site = _server.BaseAddress.ToString().TrimEnd('/');
        Assert.That(One($"occi-image; scheme=\"{site}/occi/os_tpl#\"; class=\"mixin\""), Does.Contain($"rel=\"{Infra}os_tpl\""));
        Assert.That(One($"m1_small; scheme=\"{site}/occi/resource_tpl#\"; class=\"mixin\""), Does.Contain("m1.small: 1 cores, 1.5 GB memory").And.Contain($"rel=\"{Infra}resource_tpl\""));

        var wellKnown = await _occi.GetAsync("/.well-known/org/ogf/occi/-/");
        Assert.That(wellKnown.Categories, Is.EquivalentTo(categories), "the well-known location serves the same query interface");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_body_over_one_MiB_is_refused_with_413_and_nothing_is_made()
    {
        var before = (await (await _adminHttp.GetAsync("/api/v1/instances")).Json(200)).AsArray().Count;
        var line = $"X-OCCI-Attribute: occi.core.title=\"{new string('a', 1000)}\"\n";
        var text = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(line, 1100)));
        foreach (var answer in await OversizedBodies.PostAsync(new Uri(_server.BaseAddress, "/compute/"), "text/plain", text, _server.AdminToken))
        {
            Assert.That(answer.Status, Is.EqualTo(413), answer.How + ": " + answer.Body);
            Assert.That(answer.Body, Does.Contain("larger than 1048576 bytes"), answer.How);
        }
        Assert.That((await (await _adminHttp.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Has.Count.EqualTo(before));
    }

    [Test, CancelAfter(60_000)]
    public async Task Filtering_the_query_interface_by_category_returns_only_that_category()
    {
        var answer = await _occi.GetAsync("/-/", ComputeKind);
        Assert.That(answer.Status, Is.EqualTo(200), answer.Body);
        Assert.That(answer.Categories.ToList(), Has.Count.EqualTo(1).And.All.StartsWith("compute; "));
        var templates = await _occi.GetAsync("/-/", $"Category: os_tpl; scheme=\"{Infra}\"; class=\"mixin\"");
        Assert.That(templates.Categories.ToList(), Has.Some.StartsWith("os_tpl; ").And.Some.StartsWith("occi-image; ").And.None.StartsWith("compute; "),
            "filtering by os_tpl gives it and the image templates related to it");
        var none = await _occi.GetAsync("/-/", "Category: nothing; scheme=\"http://example.com/occi#\"; class=\"mixin\"");
        Assert.That(none.Categories, Is.Empty);
    }

    [Test, CancelAfter(120_000)]
    public async Task The_probe_sequence_creates_a_compute_from_templates_links_a_storage_stops_and_deletes_it()
    {
        var sw = Stopwatch.StartNew();
        Assert.That((await _occi.GetAsync("/-/")).Status, Is.EqualTo(200));
        var created = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"), "X-OCCI-Attribute: occi.core.title=\"probe\"");
        Assert.That(created.Status, Is.EqualTo(201), created.Body);
        Assert.That(created.Location, Does.StartWith(_server.BaseAddress + "compute/"));
        var compute = OcciClient.PathOf(created.Location!);
        Assert.That(created.Locations.Single(), Is.EqualTo(created.Location));

        var active = await _occi.WaitStateAsync(compute, "active", TimeSpan.FromSeconds(60));
        Assert.That(active.Attribute("occi.core.title"), Is.EqualTo("\"probe\""));
        Assert.That(active.Attribute("occi.compute.cores"), Is.EqualTo("1"));
        Assert.That(active.Attribute("occi.compute.memory"), Is.EqualTo("0.125"), "t1.tiny's 128 MiB, in GB");
        Assert.That(active.Categories, Has.Some.StartsWith("occi-image; ").And.Some.StartsWith("t1_tiny; "));
        Assert.That(active.Links, Has.Some.Contains($"<{compute}?action=stop>"));
        var nic = active.Links.Single(l => l.Contains("#networkinterface"));
        Assert.That(nic, Does.Match("occi.networkinterface.mac=\"[0-9a-f:]{17}\"").And.Match("occi.networkinterface.address=\"[0-9.]+\""));

        var storage = await _occi.PostAsync("/storage/", StorageKind, "X-OCCI-Attribute: occi.storage.size=1", "X-OCCI-Attribute: occi.core.title=\"probe-disk\"");
        Assert.That(storage.Status, Is.EqualTo(201), storage.Body);
        var storagePath = OcciClient.PathOf(storage.Location!);
        var link = await _occi.PostAsync("/link/storagelink/", $"Category: storagelink; scheme=\"{Infra}\"; class=\"kind\"",
            $"X-OCCI-Attribute: occi.core.source=\"{compute}\"", $"X-OCCI-Attribute: occi.core.target=\"{storagePath}\"");
        Assert.That(link.Status, Is.EqualTo(201), link.Body);
        var linkAnswer = await _occi.GetAsync(OcciClient.PathOf(link.Location!));
        Assert.That(linkAnswer.Status, Is.EqualTo(200), linkAnswer.Body);
        Assert.That(linkAnswer.Attribute("occi.storagelink.deviceid"), Does.Match("^\"/dev/disk/by-id/virtio-vol[0-9a-f]{8}\"$"));
        Assert.That(linkAnswer.Attribute("occi.core.target"), Is.EqualTo($"\"{storagePath}\""));
        Assert.That((await _occi.GetAsync(compute)).Links, Has.Some.Contains($"<{storagePath}>").And.Some.Contains("occi.storagelink.deviceid"));

        var stopped = await _occi.PostAsync(compute + "?action=stop", "Category: stop; scheme=\"http://schemas.ogf.org/occi/infrastructure/compute/action#\"; class=\"action\"",
            "X-OCCI-Attribute: method=\"graceful\"");
        Assert.That(stopped.Status, Is.EqualTo(200), stopped.Body);
        var inactive = await _occi.WaitStateAsync(compute, "inactive", TimeSpan.FromSeconds(60));
        Assert.That(inactive.Attribute("org.stratuslab.state"), Is.EqualTo("\"STOPPED\""));

        Assert.That((await _occi.DeleteAsync(compute)).Status, Is.EqualTo(200));
        await _occi.WaitGoneAsync(compute, TimeSpan.FromSeconds(60));
        Assert.That((await _occi.DeleteAsync(storagePath)).Status, Is.EqualTo(200));
        Assert.That((await _occi.GetAsync(storagePath)).Status, Is.EqualTo(404));
        TestContext.Out.WriteLine($"probe sequence ({kind}): {sw.ElapsedMilliseconds} ms");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_compute_made_from_cores_and_memory_in_GB_gets_them_and_rest_sees_the_same_instance()
    {
        // GFD.185's example: POST /compute/ with the compute kind and attributes.
        var created = await _occi.PostAsync("/compute/", ComputeKind, "X-OCCI-Attribute: occi.compute.cores=2", "X-OCCI-Attribute: occi.compute.memory=1.5",
            "X-OCCI-Attribute: occi.compute.hostname=\"foobar\"");
        Assert.That(created.Status, Is.EqualTo(201), created.Body);
        var path = OcciClient.PathOf(created.Location!);
        var rest = await (await _adminHttp.GetAsync("/api/v1/instances/" + path.Split('/').Last())).Json(200);
        Assert.That(rest["cpu"]!.GetValue<long>(), Is.EqualTo(2));
        Assert.That(rest["memoryMiB"]!.GetValue<long>(), Is.EqualTo(1536));
        var shown = await _occi.GetAsync(path);
        Assert.That(shown.Attribute("occi.compute.memory"), Is.EqualTo("1.5"));
        Assert.That(shown.Attribute("occi.compute.hostname"), Is.EqualTo("\"foobar\""));

        var list = await _occi.GetAsync("/compute/");
        Assert.That(list.Locations, Has.Member(created.Location));
        var uriList = await _occi.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/compute/") { Headers = { { "Accept", "text/uri-list" } } });
        Assert.That(uriList.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/uri-list"));
        Assert.That((await uriList.Content.ReadAsStringAsync()).Split("\r\n"), Has.Member(created.Location));
        var single = await _occi.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, path) { Headers = { { "Accept", "text/uri-list" } } });
        Assert.That((int)single.StatusCode, Is.EqualTo(406), "a single entity has no uri-list rendering");
        Assert.That((await _occi.DeleteAsync(path)).Status, Is.EqualTo(200));
    }

    [Test, CancelAfter(60_000)]
    public async Task Links_at_creation_choose_the_network_and_attach_a_storage_and_context_attributes_reach_the_instance()
    {
        var network = OcciClient.PathOf((await _occi.GetAsync("/network/")).Locations.First());
        var shownNetwork = await _occi.GetAsync(network);
        Assert.That(shownNetwork.Categories, Has.Some.StartsWith("network; ").And.Some.StartsWith("ipnetwork; "));
        Assert.That(shownNetwork.Attribute("occi.network.address"), Does.Match("^\"[0-9.]+/[0-9]+\"$"));
        var storage = OcciClient.PathOf((await _occi.PostAsync("/storage/", StorageKind, "X-OCCI-Attribute: occi.storage.size=1")).Location!);
        var created = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"),
            $"Link: <{network}>; rel=\"{Infra}network\"; category=\"{Infra}networkinterface\"",
            $"Link: <{storage}>; rel=\"{Infra}storage\"; category=\"{Infra}storagelink\"",
            "X-OCCI-Attribute: org.stratuslab.context.greeting=\"hello, occi\"",
            $"X-OCCI-Attribute: {"org.openstack.compute.user_data"}=\"{Convert.ToBase64String(Encoding.UTF8.GetBytes("#!/bin/sh\necho hi\n"))}\"");
        Assert.That(created.Status, Is.EqualTo(201), created.Body);
        var path = OcciClient.PathOf(created.Location!);
        var rest = await (await _adminHttp.GetAsync("/api/v1/instances/" + path.Split('/').Last())).Json(200);
        Assert.That(rest["context"]!["GREETING"]!.GetValue<string>(), Is.EqualTo("hello, occi"));
        Assert.That(rest["volumes"]!.AsArray().Select(v => v!.GetValue<string>()), Has.Member(storage.Split('/').Last()));
        var shown = await _occi.WaitStateAsync(path, "active", TimeSpan.FromSeconds(60));
        Assert.That(shown.Links, Has.Some.Contains($"<{network}>").And.Some.Contains($"<{storage}>"));
        var nic = OcciClient.PathOf(_server.BaseAddress + shown.Links.First(l => l.Contains("#networkinterface")).Split("self=\"")[1].Split('"')[0].TrimStart('/'));
        var nicAnswer = await _occi.GetAsync(nic);
        Assert.That(nicAnswer.Status, Is.EqualTo(200), nicAnswer.Body);
        Assert.That(nicAnswer.Attribute("occi.core.target"), Is.EqualTo($"\"{network}\""));
        Assert.That(nicAnswer.Attribute("occi.networkinterface.interface"), Is.EqualTo("\"eth0\""));
        Assert.That((await _occi.GetAsync("/link/networkinterface/")).Locations.Select(OcciClient.PathOf), Has.Member(nic));
        Assert.That((await _occi.DeleteAsync(path)).Status, Is.EqualTo(200));
        await _occi.WaitGoneAsync(path, TimeSpan.FromSeconds(60));
        Assert.That((await _occi.GetAsync(nic)).Status, Is.EqualTo(404));
        await _occi.DeleteAsync(storage);
    }

    [Test, CancelAfter(60_000)]
    public async Task Actions_map_to_our_states_and_an_action_the_state_does_not_allow_is_a_conflict()
    {
        var created = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"));
        var path = OcciClient.PathOf(created.Location!);
        await _occi.WaitStateAsync(path, "active", TimeSpan.FromSeconds(60));
        var suspend = await _occi.PostAsync(path + "?action=suspend");
        Assert.That(suspend.Status, Is.EqualTo(200), suspend.Body);
        var suspended = await _occi.WaitStateAsync(path, "suspended", TimeSpan.FromSeconds(60));
        Assert.That(suspended.Links, Has.Some.Contains("?action=start").And.None.Contains("?action=suspend"));
        var again = await _occi.PostAsync(path + "?action=suspend");
        Assert.That(again.Status, Is.EqualTo(409), again.Body);
        Assert.That((await _occi.PostAsync(path + "?action=start")).Status, Is.EqualTo(200));
        await _occi.WaitStateAsync(path, "active", TimeSpan.FromSeconds(60));
        Assert.That((await _occi.PostAsync(path + "?action=restart", "X-OCCI-Attribute: method=\"warm\"")).Status, Is.EqualTo(200));
        var badMethod = await _occi.PostAsync(path + "?action=stop", "X-OCCI-Attribute: method=\"explode\"");
        Assert.That(badMethod.Status, Is.EqualTo(400));
        Assert.That(badMethod.Body, Does.Contain("graceful, acpioff, poweroff"));
        var unknown = await _occi.PostAsync(path + "?action=fly");
        Assert.That(unknown.Status, Is.EqualTo(400));
        Assert.That(unknown.Body, Does.Contain("fly"));
        await _occi.DeleteAsync(path);
    }

    const string ComputeActions = "http://schemas.ogf.org/occi/infrastructure/compute/action#";

    async Task<string> ConsoleAsync(string compute) => await _adminHttp.GetStringAsync($"/api/v1/instances/{compute.Split('/').Last()}/console");

    async Task<string> WaitForConsoleAsync(string compute, string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var log = await ConsoleAsync(compute);
            if (log.Contains(text, StringComparison.Ordinal)) return log;
            if (DateTime.UtcNow > deadline) Assert.Fail($"the console of {compute} never showed '{text}':\n{log}");
            await Task.Delay(100);
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task Stop_poweroff_cuts_the_power_at_once_and_restart_methods_choose_a_reset_or_a_guest_power_cycle()
    {
        var path = OcciClient.PathOf((await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"))).Location!);
        await _occi.WaitStateAsync(path, "active", TimeSpan.FromSeconds(60));
        var poweroff = await _occi.PostAsync(path + "?action=stop", $"Category: stop; scheme=\"{ComputeActions}\"; class=\"action\"", "X-OCCI-Attribute: method=\"poweroff\"");
        Assert.That(poweroff.Status, Is.EqualTo(200), poweroff.Body);
        var stopped = await _occi.WaitStateAsync(path, "inactive", TimeSpan.FromSeconds(60));
        Assert.That(stopped.Attribute("org.stratuslab.state"), Is.EqualTo("\"STOPPED\""), "the compute is kept, with its disk");
        var log = await ConsoleAsync(path);
        Assert.That(log, Does.Contain("power cut: switched off at once (forced)").And.Not.Contain("ACPI power button"));

        Assert.That((await _occi.PostAsync(path + "?action=start")).Status, Is.EqualTo(200));
        await _occi.WaitStateAsync(path, "active", TimeSpan.FromSeconds(60));
        Assert.That((await _occi.PostAsync(path + "?action=restart", "X-OCCI-Attribute: method=\"cold\"")).Status, Is.EqualTo(200));
        await WaitForConsoleAsync(path, "reset: rebooting");
        Assert.That(await ConsoleAsync(path), Does.Not.Contain("ACPI power button"), "cold is a reset, the guest is not asked");

        Assert.That((await _occi.PostAsync(path + "?action=restart", "X-OCCI-Attribute: method=\"graceful\"")).Status, Is.EqualTo(200));
        await WaitForConsoleAsync(path, "ACPI power button: powered off");
        // The compute may still read "active" between the guest's power-off and the server marking it stopped: wait for the
        // power-on that follows (bounded), then for the state.
        var powerOns = 0;
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(100))
            if ((powerOns = (log = await ConsoleAsync(path)).Split('\n').Count(l => l.Contains("power on: "))) >= 3) break;
        await _occi.WaitStateAsync(path, "active", TimeSpan.FromSeconds(60));
        Assert.That(powerOns, Is.EqualTo(3), $"powered on at creation, after start and after the graceful restart:\n{log}");
        var startWithMethod = await _occi.PostAsync(path + "?action=start", "X-OCCI-Attribute: method=\"fast\"");
        Assert.That(startWithMethod.Status, Is.EqualTo(400));
        Assert.That(startWithMethod.Body, Does.Contain("it takes none"));
        await _occi.DeleteAsync(path);
    }

    [Test, CancelAfter(60_000)]
    public async Task Updating_the_title_renames_the_compute_and_an_update_that_also_changes_another_attribute_changes_nothing()
    {
        var created = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"), "X-OCCI-Attribute: occi.core.title=\"before-title\"");
        var path = OcciClient.PathOf(created.Location!);
        var id = path.Split('/').Last();
        var updated = await _occi.PostAsync(path, "X-OCCI-Attribute: occi.core.title=\"after-title\"");
        Assert.That(updated.Status, Is.EqualTo(200), updated.Body);
        Assert.That(updated.Attribute("occi.core.title"), Is.EqualTo("\"after-title\""));
        Assert.That((await (await _adminHttp.GetAsync($"/api/v1/instances/{id}")).Json(200))["name"]!.GetValue<string>(), Is.EqualTo("after-title"),
            "the same rename REST's PATCH does");

        var refused = await _occi.PutAsync(path, "X-OCCI-Attribute: occi.core.title=\"third-title\"", "X-OCCI-Attribute: occi.compute.cores=4");
        Assert.That(refused.Status, Is.EqualTo(400));
        Assert.That(refused.Body, Does.Contain("occi.compute.cores").And.Contain("occi.core.title"));
        var invalid = await _occi.PostAsync(path, "X-OCCI-Attribute: occi.core.title=\"not a name!\"");
        Assert.That(invalid.Status, Is.EqualTo(400));
        Assert.That(invalid.Body, Does.Contain("name"));
        Assert.That((await _occi.GetAsync(path)).Attribute("occi.core.title"), Is.EqualTo("\"after-title\""), "refused updates changed nothing");
        await _occi.DeleteAsync(path);
    }

    [Test, CancelAfter(60_000)]
    public async Task The_rendering_shows_the_user_data_key_and_context_the_compute_was_created_with()
    {
        const string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOcci0renderingTestKey0000000000000000000000000 occi@test";
        var userData = Convert.ToBase64String(Encoding.UTF8.GetBytes("#!/bin/sh\necho rendered\n"));
        var created = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"),
            "Category: user_data; scheme=\"http://schemas.openstack.org/compute/instance#\"; class=\"mixin\"",
            "Category: public_key; scheme=\"http://schemas.openstack.org/instance/credentials#\"; class=\"mixin\"",
            $"X-OCCI-Attribute: org.openstack.compute.user_data=\"{userData}\"",
            $"X-OCCI-Attribute: org.openstack.credentials.publickey.data=\"{key}\"",
            "X-OCCI-Attribute: org.stratuslab.context.greeting=\"hello, occi\"");
        Assert.That(created.Status, Is.EqualTo(201), created.Body);
        var path = OcciClient.PathOf(created.Location!);
        var shown = await _occi.GetAsync(path);
        Assert.That(shown.Categories, Has.Some.StartsWith("user_data; scheme=\"http://schemas.openstack.org/compute/instance#\"; class=\"mixin\"")
            .And.Some.StartsWith("public_key; scheme=\"http://schemas.openstack.org/instance/credentials#\"; class=\"mixin\""));
        Assert.That(shown.Attribute("org.openstack.compute.user_data"), Is.EqualTo($"\"{userData}\""));
        Assert.That(shown.Attribute("org.openstack.credentials.publickey.data"), Is.EqualTo($"\"{key}\""));
        Assert.That(shown.Attribute("org.stratuslab.context.greeting"), Is.EqualTo("\"hello, occi\""));
        var attributes = shown.Values("X-OCCI-Attribute").ToList();
        Assert.That(attributes.Where(a => a.StartsWith("org.stratuslab.context.", StringComparison.Ordinal)).ToList(), Has.Count.EqualTo(1),
            "only the context the request gave: nothing the server adds (the guest token least of all)");
        Assert.That(string.Join("\n", attributes), Does.Not.Contain("token").IgnoreCase);

        var echoed = await _occi.PutAsync(path, $"X-OCCI-Attribute: org.openstack.compute.user_data=\"{userData}\"", "X-OCCI-Attribute: org.stratuslab.context.greeting=\"hello, occi\"");
        Assert.That(echoed.Status, Is.EqualTo(200), "an update may give back the context as shown: " + echoed.Body);
        var changed = await _occi.PutAsync(path, "X-OCCI-Attribute: org.stratuslab.context.greeting=\"bye\"");
        Assert.That(changed.Status, Is.EqualTo(400));
        Assert.That(changed.Body, Does.Contain("org.stratuslab.context.greeting"));

        var plain = OcciClient.PathOf((await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"))).Location!);
        var plainShown = await _occi.GetAsync(plain);
        Assert.That(plainShown.Attribute("org.openstack.compute.user_data"), Is.Null);
        Assert.That(plainShown.Categories, Has.None.StartsWith("user_data; "));
        await _occi.DeleteAsync(path);
        await _occi.DeleteAsync(plain);
    }

    [Test, CancelAfter(60_000)]
    public async Task User_mixins_are_added_to_the_query_interface_tag_resources_and_are_removed()
    {
        var term = "mystuff" + Guid.NewGuid().ToString("N")[..6];
        var mixin = $"Category: {term}; scheme=\"http://example.com/occi/my_stuff#\"; class=\"mixin\"; location=\"/tags/{term}/\"";
        Assert.That((await _occi.PostAsync("/-/", mixin)).Status, Is.EqualTo(200));
        Assert.That((await _occi.GetAsync("/-/")).Categories, Has.Some.StartsWith($"{term}; ").And.Some.Contains($"location=\"/tags/{term}/\""));
        Assert.That((await _occi.PostAsync("/-/", mixin)).Status, Is.EqualTo(409), "the same mixin twice");

        var created = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"), mixin);
        Assert.That(created.Status, Is.EqualTo(201), created.Body);
        var path = OcciClient.PathOf(created.Location!);
        var storage = OcciClient.PathOf((await _occi.PostAsync("/storage/", StorageKind, "X-OCCI-Attribute: occi.storage.size=1")).Location!);
        // GFD.185: adding a resource to a mixin collection with X-OCCI-Location.
        Assert.That((await _occi.PostAsync($"/tags/{term}/", $"X-OCCI-Location: {storage}")).Status, Is.EqualTo(200));
        var tagged = await _occi.GetAsync($"/tags/{term}/");
        Assert.That(tagged.Locations.Select(OcciClient.PathOf), Is.EquivalentTo(new[] { path, storage }));
        Assert.That((await _occi.GetAsync(path)).Categories, Has.Some.StartsWith($"{term}; "));

        // PUT replaces the mixins of an entity: without the mixin, it is untagged.
        var put = await _occi.PutAsync(path, ComputeKind);
        Assert.That(put.Status, Is.EqualTo(200), put.Body);
        Assert.That((await _occi.GetAsync($"/tags/{term}/")).Locations.Select(OcciClient.PathOf), Is.EquivalentTo(new[] { storage }));
        var change = await _occi.PostAsync(path, "X-OCCI-Attribute: occi.compute.cores=8");
        Assert.That(change.Status, Is.EqualTo(400));
        Assert.That(change.Body, Does.Contain("occi.compute.cores cannot be changed"));

        Assert.That((await _occi.DeleteAsync("/-/", mixin)).Status, Is.EqualTo(200));
        Assert.That((await _occi.GetAsync($"/tags/{term}/")).Status, Is.EqualTo(404));
        Assert.That((await _occi.GetAsync("/-/")).Categories, Has.None.StartsWith($"{term}; "));
        await _occi.DeleteAsync(path);
        await _occi.DeleteAsync(storage);
    }

    [Test, CancelAfter(60_000)]
    public async Task Another_users_compute_is_not_found_and_basic_auth_with_the_password_works()
    {
        var created = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"));
        var path = OcciClient.PathOf(created.Location!);
        var user = "occi" + Guid.NewGuid().ToString("N")[..6];
        await _server.CreateUserAsync(user);
        using var basic = _server.Client(token: null);
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:password-{user}")));
        var other = new OcciClient(basic, kind);
        Assert.That((await other.GetAsync("/-/")).Status, Is.EqualTo(200), "HTTP Basic with the user's password");
        Assert.That((await other.GetAsync(path)).Status, Is.EqualTo(404));
        Assert.That((await other.DeleteAsync(path)).Status, Is.EqualTo(404));
        Assert.That((await other.GetAsync("/compute/")).Locations, Has.No.Member(created.Location));

        using var wrong = _server.Client(token: null);
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:nope")));
        var refused = await new OcciClient(wrong, kind).GetAsync("/-/");
        Assert.That(refused.Status, Is.EqualTo(401));
        Assert.That(refused.Response.Headers.Server.ToString(), Does.Contain("OCCI/1.1"));
        Assert.That(refused.Response.Headers.WwwAuthenticate.Select(h => h.Scheme), Is.SupersetOf(new[] { "Bearer", "Basic" }));
        using var none = _server.Client(token: null);
        Assert.That((await new OcciClient(none, kind).GetAsync("/compute/")).Status, Is.EqualTo(401));

        // Quotas are the services': a user without a VM quota is refused.
        await (await _adminHttp.PutAsJsonAsync($"/api/v1/quotas/{user}", new { vms = 0, cpus = 0, memoryMiB = 0, storageGiB = 0 })).Json(200);
        var overQuota = await other.PostAsync("/compute/", ComputeKind, OsTpl("occi-image"), ResourceTpl("t1_tiny"));
        Assert.That(overQuota.Status, Is.EqualTo(409), overQuota.Body);
        Assert.That(overQuota.Body, Does.Contain("Quota"));
        await _occi.DeleteAsync(path);
    }

    [Test, CancelAfter(60_000)]
    public async Task Storage_actions_online_and_snapshot_go_to_pdisk()
    {
        var storage = OcciClient.PathOf((await _occi.PostAsync("/storage/", StorageKind, "X-OCCI-Attribute: occi.storage.size=2")).Location!);
        var shown = await _occi.GetAsync(storage);
        Assert.That(shown.Attribute("occi.storage.size"), Is.EqualTo("2"));
        Assert.That(shown.Attribute("occi.storage.state"), Is.EqualTo("\"online\""));
        Assert.That((await _occi.PostAsync(storage + "?action=online")).Status, Is.EqualTo(200));
        var offline = await _occi.PostAsync(storage + "?action=offline");
        Assert.That(offline.Status, Is.EqualTo(409));
        var snapshot = await _occi.PostAsync(storage + "?action=snapshot");
        Assert.That(snapshot.Status, Is.EqualTo(422), "Pdisk snapshots ORIGIN volumes only: " + snapshot.Body);
        Assert.That(snapshot.Body, Does.Contain("ORIGIN"));
        Assert.That((await _occi.DeleteAsync(storage)).Status, Is.EqualTo(200));

        // The registered image's ORIGIN volume can be snapshotted: a copy-on-write LIVE volume, a new storage.
        string? origin = null;
        foreach (var location in (await _occi.GetAsync("/storage/")).Locations.Select(OcciClient.PathOf))
            if ((await _occi.GetAsync(location)).Attribute("org.stratuslab.type") == "\"MACHINE_IMAGE_ORIGIN\"") origin = location;
        Assert.That(origin, Is.Not.Null, "the registered image is an ORIGIN volume");
        Assert.That((await _occi.GetAsync(origin!)).Links, Has.Some.Contains("?action=snapshot"));
        var copy = await _occi.PostAsync(origin + "?action=snapshot", "Category: snapshot; scheme=\"http://schemas.ogf.org/occi/infrastructure/storage/action#\"; class=\"action\"");
        Assert.That(copy.Status, Is.EqualTo(201), copy.Body);
        var live = await _occi.GetAsync(OcciClient.PathOf(copy.Location!));
        Assert.That(live.Attribute("org.stratuslab.type"), Is.EqualTo("\"MACHINE_IMAGE_LIVE\""));
        Assert.That((await _occi.DeleteAsync(OcciClient.PathOf(copy.Location!))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Unsupported_media_types_are_406_and_415_and_a_missing_accept_gives_text_plain()
    {
        using var plain = await _adminHttp.GetAsync("/-/");
        Assert.That(plain.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/plain"));
        Assert.That(await plain.Content.ReadAsStringAsync(), Does.StartWith("Category: "));
        using var json = await _adminHttp.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/-/") { Headers = { { "Accept", "application/json" } } });
        Assert.That((int)json.StatusCode, Is.EqualTo(406));
        Assert.That(json.Headers.Server.ToString(), Does.Contain("OCCI/1.1"));
        using var body = await _adminHttp.PostAsync("/compute/", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.That((int)body.StatusCode, Is.EqualTo(415));
        Assert.That(await body.Content.ReadAsStringAsync(), Does.Contain("text/plain, text/occi"));
    }

    [Test]
    public async Task Unknown_kinds_and_mixins_are_refused_with_400()
    {
        var kindAnswer = await _occi.PostAsync("/compute/", $"Category: storage; scheme=\"{Infra}\"; class=\"kind\"");
        Assert.That(kindAnswer.Status, Is.EqualTo(400));
        Assert.That(kindAnswer.Body, Does.Contain("Unknown kind"));
        var mixin = await _occi.PostAsync("/compute/", ComputeKind, "Category: nope; scheme=\"http://example.com/x#\"; class=\"mixin\"");
        Assert.That(mixin.Status, Is.EqualTo(400));
        Assert.That(mixin.Body, Does.Contain("Unknown mixin").And.Contain("http://example.com/x#nope"));
        var osTpl = await _occi.PostAsync("/compute/", ComputeKind, OsTpl("not-an-image"));
        Assert.That(osTpl.Status, Is.EqualTo(400));
        Assert.That(osTpl.Body, Does.Contain("Unknown os_tpl"));
        var attribute = await _occi.PostAsync("/compute/", ComputeKind, "X-OCCI-Attribute: occi.compute.wings=2");
        Assert.That(attribute.Status, Is.EqualTo(400));
        Assert.That(attribute.Body, Does.Contain("occi.compute.wings"));
    }
}
