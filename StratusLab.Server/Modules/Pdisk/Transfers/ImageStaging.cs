using System.Buffers;
using System.IO.Compression;
using StratusLab.Server.Platform.Transfers;

namespace StratusLab.Server.Modules.Pdisk.Transfers;

/// <summary>An image written to the staging directory: what came over the wire (counted and hashed) and what was written.</summary>
internal sealed record StagedImage(string Path, long BytesReceived, string Sha1, bool WasGzip, long ImageBytes);

/// <summary>A transfer went over a limit; <see cref="Status"/> is the HTTP status to answer with.</summary>
internal sealed class TransferRefusedException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// Streams an image (raw, qcow2, or either gzip-compressed) to a file in fixed-size chunks: counted, SHA-1 hashed as
/// received, gunzipped on the fly, zero blocks left as holes. Never holds more than one chunk in memory.
/// </summary>
internal static class ImageStaging
{
    const int ChunkSize = 1024 * 1024;
    const int HoleBlock = 64 * 1024;

    /// <summary>
    /// Copies <paramref name="source"/> into <paramref name="target"/>. More than <paramref name="maxReceived"/> bytes
    /// received, or more than <paramref name="maxImage"/> bytes of image after gunzip, stop the copy with the exception
    /// the corresponding function builds (the caller removes the file).
    /// </summary>
    public static async Task<StagedImage> StageAsync(Stream source, string target, long maxReceived, Func<long, Exception> receivedTooLarge,
        long maxImage, Func<long, Exception> imageTooLarge, CancellationToken ct)
    {
        using var sha1 = new ChecksumAccumulator([Checksums.Sha1]);
        var metered = new MeteredStream(source, sha1, maxReceived, receivedTooLarge);
        var peekable = new PeekableStream(metered);
        var head = await peekable.PeekAsync(2, ct);
        var gzip = head.Length == 2 && head.Span[0] == 0x1f && head.Span[1] == 0x8b;
        Stream image = gzip ? new GZipStream(peekable, CompressionMode.Decompress, leaveOpen: true) : peekable;

        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        long written = 0;
        try
        {
            await using var file = new FileStream(target, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0, Options = FileOptions.Asynchronous,
            });
            while (true)
            {
                int read;
                try
                {
                    read = await image.ReadAtLeastAsync(buffer.AsMemory(0, ChunkSize), ChunkSize, throwOnEndOfStream: false, ct);
                }
                catch (InvalidDataException e)
                {
                    throw new TransferRefusedException(422, $"the gzip data is damaged ({e.Message})");
                }
                if (read == 0) break;
                if (written + read > maxImage) throw imageTooLarge(written + read);
                await WriteSparseAsync(file, buffer.AsMemory(0, read), ct);
                written += read;
            }
            file.SetLength(written);
            // What follows the last gzip member still counts towards the bytes and SHA-1 of what was sent.
            if (gzip) while (await peekable.ReadAsync(buffer.AsMemory(0, ChunkSize), ct) > 0) { }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (gzip) await image.DisposeAsync();
        }
        return new StagedImage(target, metered.Count, sha1.Finish()[Checksums.Sha1], gzip, written);
    }

    /// <summary>Writes the chunk, seeking over all-zero 64 KiB blocks so they stay holes in the file.</summary>
    static async Task WriteSparseAsync(FileStream file, ReadOnlyMemory<byte> chunk, CancellationToken ct)
    {
        for (var offset = 0; offset < chunk.Length; offset += HoleBlock)
        {
            var block = chunk.Slice(offset, Math.Min(HoleBlock, chunk.Length - offset));
            if (block.Span.IndexOfAnyExcept((byte)0) < 0) file.Seek(block.Length, SeekOrigin.Current);
            else await file.WriteAsync(block, ct);
        }
    }

    /// <summary>Streams <paramref name="source"/> gzip-compressed (fastest level: the wire, not the CPU, should be the limit).</summary>
    public static async Task WriteGzipAsync(Stream source, Stream destination, CancellationToken ct)
    {
        await using var gzip = new GZipStream(destination, CompressionLevel.Fastest, leaveOpen: true);
        await source.CopyToAsync(gzip, ChunkSize, ct);
    }

    /// <summary>A stream that is read once from start to end: everything but reading is refused.</summary>
    abstract class ForwardOnlyStream : Stream
    {
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Counts and hashes every byte read through it; more than the limit throws.</summary>
    sealed class MeteredStream(Stream inner, ChecksumAccumulator hash, long limit, Func<long, Exception> tooLarge) : ForwardOnlyStream
    {
        public long Count { get; private set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            var read = await inner.ReadAsync(buffer, ct);
            Count += read;
            if (Count > limit) throw tooLarge(Count);
            hash.Append(buffer.Span[..read]);
            return read;
        }

        public override long Position { get => Count; set => throw new NotSupportedException(); }
    }

    /// <summary>Lets the first bytes be looked at (gzip magic) and then read again.</summary>
    sealed class PeekableStream(Stream inner) : ForwardOnlyStream
    {
        byte[] _head = [];
        int _position;

        public async Task<ReadOnlyMemory<byte>> PeekAsync(int count, CancellationToken ct)
        {
            var head = new byte[count];
            var read = await inner.ReadAtLeastAsync(head, count, throwOnEndOfStream: false, ct);
            _head = head[..read];
            _position = 0;
            return _head;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            if (_position < _head.Length)
            {
                var n = Math.Min(buffer.Length, _head.Length - _position);
                _head.AsMemory(_position, n).CopyTo(buffer);
                _position += n;
                return n;
            }
            return await inner.ReadAsync(buffer, ct);
        }

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    }
}
