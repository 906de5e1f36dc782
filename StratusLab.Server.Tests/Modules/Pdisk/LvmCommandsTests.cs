using StratusLab.Server.Modules.Pdisk;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>lvm2 argument building and lvs parsing, and the lvm driver's command sequences (recorded, no device-mapper needed).</summary>
public class LvmCommandsTests
{
    // lvs --reportformat json ... slvgtest, recorded on this machine for a fresh volume group (no LV could be made here).
    const string EmptyGroup = """
          {
              "report": [
                  {
                      "lv": [
                      ]
                  }
              ]
          }
        """;

    // The same report on a host with device-mapper: a plain LV, a classic snapshot of it, a thin pool and a thin volume.
    const string Populated = """
          {
              "report": [
                  {
                      "lv": [
                          {"lv_name":"sl-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "vg_name":"stratuslab", "lv_size":"1073741824", "lv_attr":"owi-aos---", "origin":"", "pool_lv":"", "lv_path":"/dev/stratuslab/sl-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "lv_tags":"stratuslab_0a1b2c3d4e5f"},
                          {"lv_name":"sl-11111111-2222-3333-4444-555555555555", "vg_name":"stratuslab", "lv_size":"1073741824", "lv_attr":"swi-a-s---", "origin":"sl-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "pool_lv":"", "lv_path":"/dev/stratuslab/sl-11111111-2222-3333-4444-555555555555", "lv_tags":"stratuslab_0a1b2c3d4e5f,other"},
                          {"lv_name":"pool", "vg_name":"stratuslab", "lv_size":"10737418240", "lv_attr":"twi-aotz--", "origin":"", "pool_lv":"", "lv_path":"", "lv_tags":""},
                          {"lv_name":"home", "vg_name":"stratuslab", "lv_size":"4294967296", "lv_attr":"Vwi-aotz--", "origin":"", "pool_lv":"pool", "lv_path":"/dev/stratuslab/home", "lv_tags":""}
                      ]
                  }
              ]
          }
        """;

    [Test]
    public void An_empty_volume_group_reports_no_volumes() => Assert.That(LvmCommands.ParseList(EmptyGroup), Is.Empty);

    [Test]
    public void The_report_gives_names_sizes_origins_paths_and_tags()
    {
        var lvs = LvmCommands.ParseList(Populated);
        Assert.That(lvs, Has.Count.EqualTo(4));
        Assert.That(lvs[0], Has.Property("Name").EqualTo("sl-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b").And.Property("SizeBytes").EqualTo(1073741824L).And.Property("IsSnapshot").False);
        Assert.That(lvs[1].IsSnapshot, Is.True);
        Assert.That(lvs[1].Origin, Is.EqualTo("sl-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"));
        Assert.That(lvs[1].Tags, Is.EqualTo(new[] { "stratuslab_0a1b2c3d4e5f", "other" }));
        Assert.That(lvs[2].Path, Is.EqualTo("/dev/stratuslab/pool"), "an LV without lv_path gets the /dev/VG/LV path");
        Assert.That(lvs[3].Pool, Is.EqualTo("pool"));
        Assert.That(lvs[3].Tags, Is.Empty);
    }

    [TestCase("not json")]
    [TestCase("""{"report":[{"lv":[{"lv_name":"x","vg_name":"v","lv_size":"12.5g"}]}]}""")]
    public void Unreadable_reports_are_format_errors(string text) => Assert.Throws<FormatException>(() => LvmCommands.ParseList(text));

    [TestCase(null, new[] { "--yes", "-n", "sl-x", "-L", "1073741824b", "-W", "y", "-Z", "y", "--addtag", "stratuslab_t", "vg" })]
    [TestCase("pool", new[] { "--yes", "-n", "sl-x", "-V", "1073741824b", "-T", "vg/pool", "--addtag", "stratuslab_t" })]
    public void New_volumes_are_classic_or_thin_and_carry_the_servers_tag(string? pool, string[] expected) =>
        Assert.That(LvmCommands.Create("vg", "sl-x", 1073741824, "stratuslab_t", pool), Is.EqualTo(expected));

    [TestCase(null, new[] { "--yes", "-s", "-n", "sl-s", "-L", "4294967296b", "--addtag", "stratuslab_t", "vg/sl-o" })]
    [TestCase("pool", new[] { "--yes", "-s", "-n", "sl-s", "--setactivationskip", "n", "-a", "y", "--addtag", "stratuslab_t", "vg/sl-o" })]
    public void Classic_snapshots_reserve_their_origins_size_and_thin_ones_nothing(string? pool, string[] expected) =>
        Assert.That(LvmCommands.Snapshot("vg", "sl-o", "sl-s", 4294967296, "stratuslab_t", pool), Is.EqualTo(expected));

    [Test]
    public void Remove_rename_and_list_name_the_volume_group()
    {
        Assert.That(LvmCommands.Remove("vg", "sl-x"), Is.EqualTo(new[] { "--yes", "vg/sl-x" }));
        Assert.That(LvmCommands.Rename("vg", "a", "b"), Is.EqualTo(new[] { "vg", "a", "b" }));
        Assert.That(LvmCommands.List("vg"), Is.EqualTo(new[] { "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,vg_name,lv_size,lv_attr,origin,pool_lv,lv_path,lv_tags", "vg" }));
    }

    [TestCase("  striped: Required device-mapper target(s) not detected in your kernel.\n", true)]
    [TestCase("  /dev/mapper/control: open failed: No such device\n  Failure to communicate with kernel device-mapper driver.\n", true)]
    [TestCase("  Volume group \"vg\" has insufficient free space (10 extents): 256 required.\n", false)]
    public void A_missing_device_mapper_is_recognised(string stderr, bool missing) =>
        Assert.That(LvmCommands.IsDeviceMapperMissing(stderr), Is.EqualTo(missing));

    static (LvmVolumeDriver Driver, RecordingCommandRunner Runner, PdiskPaths Paths) Driver(string? thinPool = null)
    {
        var options = new PdiskOptions { Backend = "lvm", VolumeGroup = "vg", ThinPool = thinPool ?? "" };
        var runner = new RecordingCommandRunner();
        var paths = new PdiskPaths(new ServerOptions { DataDir = "/srv/stratuslab" }, options);
        return (new LvmVolumeDriver(runner, new QemuImg(runner), paths, options), runner, paths);
    }

    static readonly Guid Origin = Guid.Parse("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b");
    static readonly Guid Live = Guid.Parse("11111111-2222-3333-4444-555555555555");

    [Test]
    public async Task The_driver_creates_snapshots_and_removes_with_lvm_commands_and_suppresses_fd_warnings()
    {
        var (driver, runner, paths) = Driver();
        var origin = await driver.CreateAsync(Origin, 1073741824, CancellationToken.None);
        var live = await driver.SnapshotAsync(Live, origin, CancellationToken.None);
        await driver.RemoveAsync(live, CancellationToken.None);
        Assert.That(origin, Is.EqualTo(new VolumeLocation($"/dev/vg/sl-{Origin}", "raw", 1073741824)));
        Assert.That(live.Path, Is.EqualTo($"/dev/vg/sl-{Live}"));
        Assert.That(runner.Lines, Is.EqualTo(new[]
        {
            $"lvcreate --yes -n sl-{Origin} -L 1073741824b -W y -Z y --addtag {paths.LvmTag} vg",
            $"lvcreate --yes -s -n sl-{Live} -L 1073741824b --addtag {paths.LvmTag} vg/sl-{Origin}",
            $"lvremove --yes vg/sl-{Live}",
        }));
        Assert.That(runner.Commands.All(c => c.Environment["LVM_SUPPRESS_FD_WARNINGS"] == "1"), Is.True);
    }

    [Test]
    public async Task An_import_fills_a_new_lv_with_parallel_writes_and_removes_the_lv_if_the_copy_fails()
    {
        var (driver, runner, paths) = Driver();
        runner.On("qemu-img", ["convert"], exitCode: 1, stderr: "qemu-img: error while writing at byte 0: No space left on device");
        var info = new ImageInfo("qcow2", 1073741824, 1000, null, null);
        var error = Assert.ThrowsAsync<ToolFailedException>(() => driver.ImportAsync(Origin, "/srv/stratuslab/volumes/.staging/x.img", info, CancellationToken.None));
        Assert.That(error!.Message, Does.Contain("No space left"));
        Assert.That(runner.Lines, Is.EqualTo(new[]
        {
            $"lvcreate --yes -n sl-{Origin} -L 1073741824b -W y -Z y --addtag {paths.LvmTag} vg",
            $"qemu-img convert -q -W -m 16 -f qcow2 -O raw -n -S 0 /srv/stratuslab/volumes/.staging/x.img /dev/vg/sl-{Origin}",
            $"lvremove --yes vg/sl-{Origin}",
        }));
    }

    [Test]
    public async Task Rebase_copies_the_snapshot_into_a_new_lv_that_takes_its_name()
    {
        var (driver, runner, paths) = Driver("pool");
        await driver.FlattenAsync(Live, new VolumeLocation($"/dev/vg/sl-{Live}", "raw", 1073741824), CancellationToken.None);
        Assert.That(runner.Lines, Is.EqualTo(new[]
        {
            $"lvcreate --yes -n sl-{Live}-flat -V 1073741824b -T vg/pool --addtag {paths.LvmTag}",
            $"qemu-img convert -q -W -m 16 -f raw -O raw -n -S 0 /dev/vg/sl-{Live} /dev/vg/sl-{Live}-flat",
            $"lvremove --yes vg/sl-{Live}",
            $"lvrename vg sl-{Live}-flat sl-{Live}",
        }));
    }

    [Test]
    public async Task Reconciliation_sees_only_lvs_with_this_servers_tag()
    {
        var (driver, runner, paths) = Driver();
        runner.On("lvs", [], stdout: Populated.Replace("stratuslab_0a1b2c3d4e5f", paths.LvmTag));
        var items = await driver.ListAsync(CancellationToken.None);
        Assert.That(items.Select(i => i.Uuid), Is.EqualTo(new Guid?[] { Origin, Live }));
        Assert.That(driver.Owns($"/dev/vg/sl-{Origin}"), Is.True);
        Assert.That(driver.Owns("/dev/vg/home"), Is.False);
    }

    [Test]
    public void Removing_a_volume_missing_from_the_group_is_not_an_error()
    {
        var (driver, runner, _) = Driver();
        runner.On("lvremove", [], exitCode: 5, stderr: $"  Failed to find logical volume \"vg/sl-{Origin}\"\n");
        Assert.DoesNotThrowAsync(() => driver.RemoveAsync(driver.LocationOf(Origin, 1), CancellationToken.None));
        Assert.ThrowsAsync<InvalidOperationException>(() => driver.RemoveAsync(new VolumeLocation("/dev/vg/home", "raw", 1), CancellationToken.None),
            "never an LV the server did not make");
    }
}
