using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Host;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

public class DiskSpaceTests
{
    [TestCase("/var/lib/stratuslab", new[] { "/", "/var", "/var/lib/stratuslab" }, "/var/lib/stratuslab")]
    [TestCase("/var/lib/stratuslab/", new[] { "/", "/var" }, "/var")]
    [TestCase("/variable/data", new[] { "/", "/var" }, "/")]
    [TestCase("/srv/cloud", new[] { "/", "/srv/", "/srv/cloud/other" }, "/srv")]
    [TestCase("/", new[] { "/", "/proc" }, "/")]
    public void The_filesystem_of_a_path_is_its_longest_mount_point(string path, string[] mounts, string expected) =>
        Assert.That(DiskSpace.MountPointOf(path, mounts), Is.EqualTo(expected));

    static IEnumerable<TestCaseData> Failures()
    {
        yield return new TestCaseData(new SqliteException("SQLite Error 13: 'database or disk is full'.", 13), true).SetName("SQLite's SQLITE_FULL is a lack of space");
        yield return new TestCaseData(new SqliteException("SQLite Error 5: 'database is locked'.", 5), false).SetName("SQLite's SQLITE_BUSY is not");
        yield return new TestCaseData(new IOException("No space left on device : '/data/x'", 28), true).SetName("ENOSPC from the kernel is a lack of space");
        yield return new TestCaseData(new IOException("Disk quota exceeded", 122), true).SetName("EDQUOT from the kernel is a lack of space");
        yield return new TestCaseData(new IOException("Permission denied", 13), false).SetName("EACCES is not");
        yield return new TestCaseData(new ToolFailedException(new ToolCommand("qemu-img", ["convert"]), 1,
            "qemu-img: error while writing at byte 0: No space left on device\n"), true).SetName("A tool saying ENOSPC on stderr is a lack of space");
        yield return new TestCaseData(new ToolFailedException(new ToolCommand("qemu-img", ["info"]), 1, "Could not open 'x'"), false).SetName("Another tool failure is not");
        yield return new TestCaseData(new UnavailableException("The file backend could not make the volume: No space left on device : '/v'"), true)
            .SetName("A module's rejection that wraps ENOSPC is a lack of space");
        yield return new TestCaseData(new InvalidOperationException("deploy failed", new AggregateException(new SqliteException("full", 13))), true)
            .SetName("SQLITE_FULL inside other exceptions is a lack of space");
        yield return new TestCaseData(new InvalidOperationException("something else"), false).SetName("An unrelated error is not");
        yield return new TestCaseData(new ConflictException("Instance 3 is FAILED (the data dir's filesystem is full: database or disk is full); delete it"), false)
            .SetName("A conflict quoting an old failure is not");
    }

    [TestCaseSource(nameof(Failures))]
    public void Lack_of_space_is_recognized_however_it_arrives(Exception error, bool full) =>
        Assert.That(DiskSpace.IsFull(error), Is.EqualTo(full));

    static (DiskSpace Space, DefaultHttpContext Http) Platform(string dataDir, long minFreeMiB)
    {
        var options = new ServerOptions { DataDir = dataDir, Disk = new DiskOptions { MinFreeMiB = minFreeMiB } };
        var space = new DiskSpace(options, TimeProvider.System, NullLogger<DiskSpace>.Instance);
        var services = new ServiceCollection().AddSingleton(space).BuildServiceProvider();
        return (space, new DefaultHttpContext { RequestServices = services });
    }

    [Test]
    public void A_write_that_failed_for_lack_of_space_is_a_507_naming_the_filesystem_and_its_free_space()
    {
        var dir = TempDir.Create("disk");
        try
        {
            var (space, http) = Platform(dir, 0);
            var problem = ErrorHandling.Describe(new SqliteException("SQLite Error 13: 'database or disk is full'.", 13), http);
            var (filesystem, _, _) = space.Measure();
            Assert.Multiple(() =>
            {
                Assert.That(problem.Status, Is.EqualTo(507));
                Assert.That(problem.Title, Is.EqualTo("Insufficient Storage"));
                Assert.That(problem.Detail, Does.Contain($"The filesystem {filesystem} holding the data dir is full").And.Contain("MiB free")
                    .And.Contain("database or disk is full").And.Contain("Free space there"));
                Assert.That(problem.Extensions["filesystem"], Is.EqualTo(filesystem));
                Assert.That(problem.Extensions["freeBytes"], Is.TypeOf<long>().And.GreaterThanOrEqualTo(0L));
            });
            // Nothing is wrong with the disk itself: the next health check's probe write clears the recorded failure.
            Assert.That(space.Check().Problems, Is.Empty);
            Assert.That(space.Check().Report.LastWriteFailedAt, Is.Null);
        }
        finally { TempDir.Delete(dir); }
    }

    [Test]
    public void Below_the_floor_new_work_is_refused_with_the_free_space_and_the_floor()
    {
        var dir = TempDir.Create("disk");
        try
        {
            var (probe, _) = Platform(dir, 0);
            var free = probe.Measure().FreeBytes;
            var floorMiB = free / 1048576 + (1L << 20); // a TiB above what is free: others writing or freeing space on this machine do not matter
            var (space, _) = Platform(dir, floorMiB);
            var refused = Assert.Throws<DiskFullException>(() => space.EnsureRoom("Creating a volume"))!;
            Assert.Multiple(() =>
            {
                Assert.That(refused.Detail, Does.StartWith("Creating a volume is refused: the filesystem").And.Contain($"{floorMiB} MiB (Disk:MinFreeMiB)"));
                Assert.That(refused.Filesystem, Is.EqualTo(space.Measure().Filesystem));
                Assert.That(refused.Extensions["minFreeBytes"], Is.EqualTo(floorMiB * 1048576));
                Assert.That(space.Check().Problems, Has.Count.EqualTo(1).And.Some.Contains("below the floor"));
            });
            Assert.DoesNotThrow(() => probe.EnsureRoom("Creating a volume"));
        }
        finally { TempDir.Delete(dir); }
    }

    [Test]
    public void Other_failures_stay_500_and_are_not_reported_as_lack_of_space()
    {
        var dir = TempDir.Create("disk");
        try
        {
            var (space, http) = Platform(dir, 0);
            var problem = ErrorHandling.Describe(new SqliteException("SQLite Error 5: 'database is locked'.", 5), http);
            Assert.That(problem.Status, Is.EqualTo(500));
            Assert.That(space.Check().Report.LastWriteFailedAt, Is.Null);
        }
        finally { TempDir.Delete(dir); }
    }
}
