namespace StratusLab.Server.Platform.Transfers;

/// <summary>
/// Writes that leave holes: blocks of zeros are skipped (seeked over) instead of written, so a mostly empty disk image
/// takes only its data's space while it is downloaded, copied or unpacked. Call <see cref="EndAsync"/> once the data
/// is complete, so that trailing zeros count in the file's length.
/// </summary>
public static class SparseFile
{
    /// <summary>The granularity of holes: a file-system block.</summary>
    public const int BlockSize = 4096;

    /// <summary>Writes <paramref name="data"/> at the stream's position, seeking over zero blocks (aligned to the file's blocks).</summary>
    public static async ValueTask WriteAsync(FileStream file, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        // Up to the next block boundary the bytes are written as they are: a hole is only worth a whole block.
        var offset = (int)Math.Min(data.Length, (BlockSize - file.Position % BlockSize) % BlockSize);
        if (offset > 0) await file.WriteAsync(data[..offset], ct);
        while (offset < data.Length)
        {
            var zeros = IsZeroBlock(data.Span, offset);
            var end = offset;
            while (end < data.Length && IsZeroBlock(data.Span, end) == zeros) end = Math.Min(end + BlockSize, data.Length);
            if (zeros) file.Seek(end - offset, SeekOrigin.Current);
            else await file.WriteAsync(data[offset..end], ct);
            offset = end;
        }
    }

    /// <summary>Extends the file to the position reached: zeros seeked over at the end become a hole of the right length.</summary>
    public static async ValueTask EndAsync(FileStream file)
    {
        await file.FlushAsync();
        if (file.Position > file.Length) file.SetLength(file.Position);
    }

    static bool IsZeroBlock(ReadOnlySpan<byte> data, int offset)
    {
        var block = data.Slice(offset, Math.Min(BlockSize, data.Length - offset));
        // A short last block is written rather than skipped: its length must not depend on a later extension.
        return block.Length == BlockSize && !block.ContainsAnyExcept((byte)0);
    }
}
