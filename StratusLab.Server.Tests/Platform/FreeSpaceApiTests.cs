using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Tests.Modules.Compute;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

/// <summary>The free-space floor (Disk:MinFreeMiB) through HTTP: new work refused with 507 up front, deletions never, /health degraded.</summary>
public class FreeSpaceApiTests
{
    [Test, CancelAfter(120_000)]
    public async Task Below_the_free_space_floor_new_work_is_refused_with_507_and_health_is_degraded_but_deletions_go_on()
    {
        await using var server = await TestServer.StartAsync();
        using var admin = server.Client();
        using var anonymous = server.Client(token: null);

        var healthy = await (await anonymous.GetAsync("/health")).Json(200);
        Assert.That(healthy["status"]!.GetValue<string>(), Is.EqualTo("ok"), healthy.ToJsonString());
        var filesystem = healthy["disk"]!["filesystem"]!.GetValue<string>();
        var free = healthy["disk"]!["freeBytes"]!.GetValue<long>();
        Assert.That(free, Is.GreaterThan(0));
        Assert.That(server.DataDir, Does.StartWith(filesystem));

        var instance = (await (await admin.PostAsJsonAsync("/api/v1/instances", new { name = "before-the-floor" })).Json(201))["id"]!.GetValue<long>();
        Assert.That((await InstanceApiTests.WaitAsync(admin, instance, "RUNNING"))["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));
        var volume = (await (await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1 })).Json(201))["uuid"]!.GetValue<string>();

        // The floor rises far above what is free, as if the filesystem had filled up.
        var options = server.App.Services.GetRequiredService<ServerOptions>();
        var floorMiB = free / 1048576 + (1L << 20); // a TiB above what is free: others writing or freeing space on this machine do not matter
        options.Disk.MinFreeMiB = floorMiB;

        var refusals = new (string What, Func<Task<HttpResponseMessage>> Send)[]
        {
            ("Launching an instance", () => admin.PostAsJsonAsync("/api/v1/instances", new { name = "after-the-floor" })),
            ("Creating a volume", () => admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1 })),
            ("Uploading a volume", () => admin.PostAsync("/api/v1/volumes/upload", new ByteArrayContent(new byte[4096]))),
            ("Snapshotting a volume", () => admin.PostAsJsonAsync($"/api/v1/volumes/{volume}/snapshots", new { })),
            ("Creating a user", () => admin.PostAsJsonAsync("/api/v1/users", new { name = "late", password = "password-late" })),
            ("Prefetching an image", () => admin.PostAsJsonAsync("/api/v1/images/prefetch", new { image = "appliance" })),
        };
        foreach (var (what, send) in refusals)
        {
            var problem = await (await send()).Problem(507);
            Assert.Multiple(() =>
            {
                Assert.That(problem["title"]!.GetValue<string>(), Is.EqualTo("Insufficient Storage"));
                Assert.That(problem["detail"]!.GetValue<string>(), Does.StartWith($"{what} is refused: the filesystem {filesystem} holding the data dir has ")
                    .And.Contain($"below the floor of {floorMiB} MiB (Disk:MinFreeMiB)"));
                Assert.That(problem["filesystem"]!.GetValue<string>(), Is.EqualTo(filesystem));
                Assert.That(problem["freeBytes"]!.GetValue<long>(), Is.GreaterThan(0));
                Assert.That(problem["minFreeBytes"]!.GetValue<long>(), Is.EqualTo(floorMiB * 1048576));
            });
        }
        var users = await (await admin.GetAsync("/api/v1/users")).Json(200);
        Assert.That(users.ToJsonString(), Does.Not.Contain("\"late\""), "a refused user is not made");
        var instances = await (await admin.GetAsync("/api/v1/instances")).Json(200);
        Assert.That(instances.AsArray(), Has.Count.EqualTo(1), "a refused launch makes no instance");

        var degraded = await (await anonymous.GetAsync("/health")).Json(200);
        Assert.Multiple(() =>
        {
            Assert.That(degraded["status"]!.GetValue<string>(), Is.EqualTo("degraded"));
            Assert.That(degraded["problems"]!.AsArray().Select(p => p!.GetValue<string>()), Has.Some.Contains($"the filesystem {filesystem} holding the data dir has")
                .And.Some.Contains("new work is refused"));
            Assert.That(degraded["disk"]!["minFreeBytes"]!.GetValue<long>(), Is.EqualTo(floorMiB * 1048576));
        });

        // Deletions free space: they are never refused.
        await (await admin.DeleteAsync($"/api/v1/instances/{instance}")).Json(202);
        Assert.That((await InstanceApiTests.WaitAsync(admin, instance, "DONE"))["state"]!.GetValue<string>(), Is.EqualTo("DONE"));
        Assert.That((int)(await admin.DeleteAsync($"/api/v1/volumes/{volume}")).StatusCode, Is.EqualTo(204));

        options.Disk.MinFreeMiB = 0;
        Assert.That((await (await anonymous.GetAsync("/health")).Json(200))["status"]!.GetValue<string>(), Is.EqualTo("ok"));
        await (await admin.PostAsJsonAsync("/api/v1/instances", new { name = "after-space-returned" })).Json(201);
    }
}
