using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>qemu-img argument building and JSON parsing, on outputs recorded from qemu-img 7.2.</summary>
public class QemuImgTests
{
    // qemu-img info --output=json -U -f raw o.raw (a 16 MiB sparse raw file)
    const string RawInfo = """
        {
            "virtual-size": 16777216,
            "filename": "o.raw",
            "format": "raw",
            "actual-size": 4096,
            "dirty-flag": false
        }
        """;

    // qemu-img info --output=json -U l.qcow2 (an overlay made with -F raw -b /tmp/pdt/o.raw)
    const string OverlayInfo = """
        {
            "backing-filename-format": "raw",
            "virtual-size": 16777216,
            "filename": "l.qcow2",
            "cluster-size": 65536,
            "format": "qcow2",
            "actual-size": 200704,
            "format-specific": {
                "type": "qcow2",
                "data": {
                    "compat": "1.1",
                    "compression-type": "zlib",
                    "lazy-refcounts": false,
                    "refcount-bits": 16,
                    "corrupt": false,
                    "extended-l2": false
                }
            },
            "full-backing-filename": "/tmp/pdt/o.raw",
            "backing-filename": "/tmp/pdt/o.raw",
            "dirty-flag": false
        }
        """;

    // The same overlay after 'qemu-img rebase -b ""': independent.
    const string FlattenedInfo = """
        {
            "virtual-size": 16777216,
            "filename": "l.qcow2",
            "cluster-size": 65536,
            "format": "qcow2",
            "actual-size": 200704,
            "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "corrupt": false}},
            "dirty-flag": false
        }
        """;

    static readonly object[] InfoCases =
    [
        new object?[] { RawInfo, "raw", 16777216L, 4096L, null, null },
        new object?[] { OverlayInfo, "qcow2", 16777216L, 200704L, "/tmp/pdt/o.raw", "raw" },
        new object?[] { FlattenedInfo, "qcow2", 16777216L, 200704L, null, null },
    ];

    [TestCaseSource(nameof(InfoCases))]
    public void Info_output_gives_format_sizes_and_backing_file(string json, string format, long virtualSize, long actualSize, string? backing, string? backingFormat) =>
        Assert.That(QemuImg.ParseInfo(json), Is.EqualTo(new ImageInfo(format, virtualSize, actualSize, backing, backingFormat)));

    [TestCase("not json")]
    [TestCase("""{"filename": "x"}""")]
    [TestCase("[]")]
    public void Unreadable_info_output_is_a_format_error(string text) =>
        Assert.Throws<FormatException>(() => QemuImg.ParseInfo(text));

    [Test]
    public void An_empty_volume_is_created_quietly_with_its_exact_size_in_bytes() =>
        Assert.That(QemuImg.Create("/v/a.raw", "raw", 1073741824), Is.EqualTo(new[] { "create", "-q", "-f", "raw", "/v/a.raw", "1073741824" }));

    [Test]
    public void A_snapshot_is_a_qcow2_overlay_that_names_its_backing_format() =>
        Assert.That(QemuImg.Overlay("/v/live.qcow2", "/v/origin.raw", "raw"),
            Is.EqualTo(new[] { "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/v/origin.raw", "/v/live.qcow2" }));

    [Test]
    public void Rebase_onto_the_empty_string_makes_an_overlay_independent() =>
        Assert.That(QemuImg.Flatten("/v/live.qcow2"), Is.EqualTo(new[] { "rebase", "-q", "-f", "qcow2", "-b", "", "/v/live.qcow2" }));

    [Test]
    public void Info_shares_the_image_lock_and_names_the_format_when_known()
    {
        Assert.That(QemuImg.Info("/v/x"), Is.EqualTo(new[] { "info", "--output=json", "-U", "/v/x" }));
        Assert.That(QemuImg.Info("/v/x", "raw"), Is.EqualTo(new[] { "info", "--output=json", "-U", "-f", "raw", "/v/x" }));
    }

    [TestCase("raw", true, new[] { "convert", "-q", "-W", "-m", "16", "-f", "qcow2", "-O", "raw", "-n", "-S", "0", "/s", "/dev/vg/lv" })]
    [TestCase("raw", false, new[] { "convert", "-q", "-W", "-m", "16", "-f", "qcow2", "-O", "raw", "/s", "/dev/vg/lv" })]
    [TestCase("qcow2", false, new[] { "convert", "-q", "-m", "16", "-f", "qcow2", "-O", "qcow2", "/s", "/dev/vg/lv" })]
    public void Copies_use_parallel_out_of_order_writes_into_raw_and_write_zeros_into_existing_devices(string target, bool existing, string[] expected) =>
        Assert.That(QemuImg.Convert("/s", "qcow2", "/dev/vg/lv", target, existing), Is.EqualTo(expected));

    [TestCase(196616L, 67108864L, 72351744L)]
    [TestCase(0L, 67108864L, 72351744L)]
    [TestCase(200704L, 1073741824L, 1078984704L)]
    public void A_qcow2_exported_as_a_lun_gets_room_for_every_cluster_and_its_metadata(long current, long virtualSize, long expected)
    {
        var length = QemuImg.BlockExportLength(current, virtualSize);
        Assert.That(length, Is.EqualTo(expected));
        Assert.That(length % (1024 * 1024), Is.Zero, "whole MiB");
        // qemu-img measure says a fully allocated 64 MiB qcow2 needs 67436544 bytes; the bound is above it.
        Assert.That(length - current, Is.GreaterThan(virtualSize + virtualSize / 8192 + 327680));
    }

    // qemu-img check --output=json -f qcow2 on a qcow2 truncated to half its length (qemu-img 7.2): exit code 2.
    const string TruncatedCheck = """
        {
            "image-end-offset": 4194304,
            "total-clusters": 128,
            "corruptions": 69,
            "check-errors": 0,
            "allocated-clusters": 128,
            "filename": "t.qcow2",
            "format": "qcow2"
        }
        """;

    const string TruncatedErrors = """
        ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x400000 size 0x10000
        ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x410000 size 0x10000
        ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x400000 size 0x10000
        """;

    [Test]
    public void A_check_of_a_truncated_qcow2_counts_its_corruptions_and_keeps_qemu_imgs_lines_once()
    {
        var check = QemuImg.ParseCheck(2, TruncatedCheck, TruncatedErrors);
        Assert.That((check.Supported, check.Corruptions, check.Leaks, check.CheckErrors, check.IsCorrupt), Is.EqualTo((true, 69L, 0L, 0L, true)));
        Assert.That(check.Messages, Has.Count.EqualTo(2));
        Assert.That(check.Describe(1), Is.EqualTo("69 corruption(s): ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x400000 size 0x10000 (and 1 more)"));
    }

    [TestCase(0, """{"corruptions": 0, "leaks": 0, "check-errors": 0}""", "", true, false)]
    [TestCase(3, """{"leaks": 4, "check-errors": 0}""", "Leaked cluster 5 refcount=1 reference=0", true, false)]
    [TestCase(2, """{"check-errors": 0}""", "", true, true)]
    [TestCase(1, """{"check-errors": 1}""", "", true, true)]
    [TestCase(63, "", "qemu-img: This image format does not support checks", false, false)]
    public void The_check_verdict_follows_the_counts_and_the_exit_code(int exitCode, string json, string stderr, bool supported, bool corrupt)
    {
        var check = QemuImg.ParseCheck(exitCode, json, stderr);
        Assert.That((check.Supported, check.IsCorrupt), Is.EqualTo((supported, corrupt)));
    }

    [Test]
    public void A_check_is_read_only_and_machine_readable() =>
        Assert.That(QemuImg.Check("/v/x.qcow2", "qcow2"), Is.EqualTo(new[] { "check", "--output=json", "-f", "qcow2", "/v/x.qcow2" }));
}
