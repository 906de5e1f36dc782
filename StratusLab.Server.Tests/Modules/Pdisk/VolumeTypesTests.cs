using StratusLab.Server.Modules.Pdisk.Contracts;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Modules.Pdisk;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>The six StratusLab disk types and their rules.</summary>
public class VolumeTypesTests
{
    [TestCase("MACHINE_IMAGE_ORIGIN", VolumeType.MachineImageOrigin)]
    [TestCase("machine_image_live", VolumeType.MachineImageLive)]
    [TestCase("DATA_IMAGE_ORIGIN", VolumeType.DataImageOrigin)]
    [TestCase("DATA_IMAGE_LIVE", VolumeType.DataImageLive)]
    [TestCase("DATA_IMAGE_RAW_READONLY", VolumeType.DataImageRawReadonly)]
    [TestCase("DATA_IMAGE_RAW_READ_WRITE", VolumeType.DataImageRawReadWrite)]
    public void Wire_names_parse_case_insensitively_and_round_trip(string name, VolumeType type)
    {
        Assert.That(VolumeTypes.TryParse(name, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(type));
        Assert.That(VolumeTypes.Name(type), Is.EqualTo(name.ToUpperInvariant()));
    }

    [TestCase("")]
    [TestCase(null)]
    [TestCase("MACHINE_IMAGE")]
    [TestCase("MachineImageOrigin")]
    public void Other_names_are_not_types(string? name) => Assert.That(VolumeTypes.TryParse(name, out _), Is.False);

    [TestCase(VolumeType.MachineImageOrigin, VolumeType.MachineImageLive)]
    [TestCase(VolumeType.DataImageOrigin, VolumeType.DataImageLive)]
    public void Snapshots_of_origins_are_live_and_rebase_makes_them_origins_again(VolumeType origin, VolumeType live)
    {
        Assert.That(VolumeTypes.LiveOf(origin), Is.EqualTo(live));
        Assert.That(VolumeTypes.OriginOf(live), Is.EqualTo(origin));
        Assert.That(VolumeTypes.IsReadOnly(origin), Is.True);
        Assert.That(VolumeTypes.IsReadOnly(live), Is.False);
    }

    [Test]
    public void Only_origins_have_snapshots() =>
        Assert.Throws<ArgumentException>(() => VolumeTypes.LiveOf(VolumeType.DataImageRawReadWrite));

    [TestCase(1L, 1L)]
    [TestCase(1073741824L, 1L)]
    [TestCase(1073741825L, 2L)]
    [TestCase(16777216L, 1L)]
    public void Storage_quota_counts_whole_gib(long bytes, long gib) => Assert.That(VolumeLifecycle.QuotaGibOf(bytes), Is.EqualTo(gib));

    [TestCase("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b.raw", true)]
    [TestCase("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b.qcow2", true)]
    [TestCase("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b.vmdk", false)]
    [TestCase("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b.raw.partial", false)]
    [TestCase("notes.txt", false)]
    public void Volume_files_are_named_by_uuid_and_format(string name, bool isVolume) =>
        Assert.That(FileVolumeDriver.UuidOf(name) is not null, Is.EqualTo(isVolume));
}
