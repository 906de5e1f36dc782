using System.IO.Compression;
using System.Security.Cryptography;
using StratusLab.Server.Modules.Pdisk.Transfers;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>Streaming an image to disk: counted and hashed as received, gunzipped on the fly, holes kept, limits enforced.</summary>
public class ImageStagingTests
{
    string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = TempDir.Create("stage");

    [TearDown]
    public void RemoveDir() => TempDir.Delete(_dir);

    static Exception TooLarge(long n) => new InvalidOperationException($"too large: {n}");

    Task<StagedImage> Stage(Stream source, long maxReceived = long.MaxValue, long maxImage = long.MaxValue) =>
        ImageStaging.StageAsync(source, Path.Combine(_dir, Guid.NewGuid().ToString("N")), maxReceived, TooLarge, maxImage, TooLarge, CancellationToken.None);

    static byte[] Gzip(byte[] data)
    {
        using var buffer = new MemoryStream();
        using (var gz = new GZipStream(buffer, CompressionLevel.Fastest)) gz.Write(data);
        return buffer.ToArray();
    }

    [Test]
    public async Task A_raw_image_is_written_as_received_with_its_size_and_sha1()
    {
        var (data, sha1) = Volumes.DiskBytes(3);
        var staged = await Stage(new MemoryStream(data));
        Assert.That(staged.WasGzip, Is.False);
        Assert.That(staged.BytesReceived, Is.EqualTo(data.Length));
        Assert.That(staged.ImageBytes, Is.EqualTo(data.Length));
        Assert.That(staged.Sha1, Is.EqualTo(sha1));
        Assert.That(await File.ReadAllBytesAsync(staged.Path), Is.EqualTo(data));
    }

    [Test]
    public async Task A_gzip_image_is_unpacked_while_the_sha1_is_of_the_compressed_bytes()
    {
        var (data, _) = Volumes.DiskBytes(2);
        var gz = Gzip(data);
        var staged = await Stage(new MemoryStream(gz));
        Assert.That(staged.WasGzip, Is.True);
        Assert.That(staged.BytesReceived, Is.EqualTo(gz.Length));
        Assert.That(staged.Sha1, Is.EqualTo(Convert.ToHexStringLower(SHA1.HashData(gz))));
        Assert.That(await File.ReadAllBytesAsync(staged.Path), Is.EqualTo(data));
    }

    [Test]
    public async Task Zero_blocks_become_holes_in_the_file()
    {
        var data = new byte[8 << 20];
        data[0] = 1;
        data[^1] = 2;
        var staged = await Stage(new MemoryStream(data));
        Assert.That(new FileInfo(staged.Path).Length, Is.EqualTo(data.Length));
        var du = await HostTools.RunAsync("du", ["-k", staged.Path], TimeSpan.FromSeconds(10));
        Assert.That(long.Parse(du.Out.Split('\t')[0]), Is.LessThan(1024), "an 8 MiB image of zeros takes (almost) no space");
        Assert.That(await File.ReadAllBytesAsync(staged.Path), Is.EqualTo(data));
    }

    [Test]
    public void More_bytes_than_allowed_stop_the_transfer()
    {
        var error = Assert.ThrowsAsync<InvalidOperationException>(() => Stage(new MemoryStream(new byte[3 << 20]), maxReceived: 1 << 20));
        Assert.That(error!.Message, Does.StartWith("too large"));
    }

    [Test]
    public void A_gzip_bomb_is_stopped_by_the_image_limit()
    {
        var bomb = Gzip(new byte[16 << 20]);
        Assert.That(bomb.Length, Is.LessThan(1 << 20));
        Assert.ThrowsAsync<InvalidOperationException>(() => Stage(new MemoryStream(bomb), maxImage: 4 << 20));
    }

    [Test]
    public void Damaged_gzip_data_is_a_422()
    {
        var gz = Gzip(Volumes.DiskBytes(1).Data);
        gz[gz.Length / 2] ^= 0xff;
        gz[gz.Length / 2 + 1] ^= 0xff;
        var error = Assert.ThrowsAsync<TransferRefusedException>(() => Stage(new MemoryStream(gz)));
        Assert.That(error!.Status, Is.EqualTo(422));
    }

    [Test]
    public async Task Downloads_are_gzip_streams_of_the_content()
    {
        var (data, sha1) = Volumes.DiskBytes(1);
        using var output = new MemoryStream();
        await ImageStaging.WriteGzipAsync(new MemoryStream(data), output, CancellationToken.None);
        output.Position = 0;
        await using var gunzip = new GZipStream(output, CompressionMode.Decompress);
        Assert.That(Convert.ToHexStringLower(await SHA1.HashDataAsync(gunzip)), Is.EqualTo(sha1));
    }
}
