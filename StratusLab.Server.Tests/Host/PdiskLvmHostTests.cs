using System.Net.Http.Json;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: the lvm backend for real, on a volume group the test makes on a loop device. Where the kernel has no
/// device-mapper (containers, this CI's VM) lvcreate cannot work: the test says so with lvcreate's own error and
/// is skipped; LvmCommandsTests cover the commands there.
/// </summary>
[NonParallelizable]
public class PdiskLvmHostTests
{
    string _dir = "";
    string? _loop;
    string _group = "";

    static async Task<(int Exit, string Out, string Err)> Run(string tool, params string[] args) =>
        await HostTools.RunAsync(tool, args, TimeSpan.FromSeconds(60));

    [SetUp]
    public async Task MakeVolumeGroup()
    {
        _dir = TempDir.Create("lvm");
        _group = "sltest" + Guid.NewGuid().ToString("N")[..8];
        var image = Path.Combine(_dir, "pv.img");
        await using (var file = File.Create(image)) file.SetLength(2L << 30);
        var loop = await Run("losetup", "-f", "--show", image);
        if (loop.Exit != 0) Assert.Ignore($"no loop device for a test volume group: losetup said: {loop.Err.Trim()}");
        _loop = loop.Out.Trim();
        var vg = await Run("vgcreate", "-y", _group, _loop);
        if (vg.Exit != 0) Assert.Ignore($"cannot make a test volume group: vgcreate said: {vg.Err.Trim()}");
    }

    [TearDown]
    public async Task RemoveVolumeGroup()
    {
        if (_group.Length > 0) await Run("vgremove", "-f", "-y", _group);
        if (_loop is not null)
        {
            await Run("pvremove", "-y", _loop);
            await Run("losetup", "-d", _loop);
        }
        TempDir.Delete(_dir);
    }

    [Test, CancelAfter(180_000)]
    public async Task Volumes_and_snapshots_are_logical_volumes_of_the_configured_group()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Pdisk:Backend"] = "lvm",
            ["Pdisk:VolumeGroup"] = _group,
        });
        using var admin = server.Client();
        var response = await admin.PostAsJsonAsync("/api/v1/volumes", new { size = 1, type = "DATA_IMAGE_ORIGIN" });
        if ((int)response.StatusCode == 503)
        {
            var detail = (await response.Problem(503))["detail"]!.GetValue<string>();
            if (LvmCommands.IsDeviceMapperMissing(detail))
                Assert.Ignore($"this kernel has no device-mapper, so lvcreate cannot make LVs here: {detail}");
            Assert.Fail(detail);
        }
        var origin = await response.Json(201);
        var uuid = Volumes.Uuid(origin);
        Assert.That(origin["backend"]!.GetValue<string>(), Is.EqualTo("lvm"));
        Assert.That(origin["turl"]!.GetValue<string>(), Is.EqualTo($"file:///dev/{_group}/sl-{uuid}"));

        var snapshot = await (await admin.PostAsJsonAsync($"/api/v1/volumes/{uuid}/snapshots", new { })).Json(201);
        var lvs = await Run("lvs", LvmCommands.List(_group).ToArray());
        var report = LvmCommands.ParseList(lvs.Out);
        Assert.That(report.Select(lv => lv.Name), Is.EquivalentTo(new[] { $"sl-{uuid}", $"sl-{Volumes.Uuid(snapshot)}" }));
        Assert.That(report.Single(lv => lv.Name == $"sl-{Volumes.Uuid(snapshot)}").Origin, Is.EqualTo($"sl-{uuid}"));

        await (await admin.PostAsync($"/api/v1/volumes/{Volumes.Uuid(snapshot)}/rebase", null)).Json(200);
        await (await admin.DeleteAsync($"/api/v1/volumes/{uuid}")).Json(204);
        await (await admin.DeleteAsync($"/api/v1/volumes/{Volumes.Uuid(snapshot)}")).Json(204);
        Assert.That(LvmCommands.ParseList((await Run("lvs", LvmCommands.List(_group).ToArray())).Out), Is.Empty);
    }
}
