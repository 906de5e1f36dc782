namespace StratusLab.Server.Platform.Http;

/// <summary>Reading a request body with a size bound, for the front doors that parse whole bodies (EC2, OCCI, Marketplace).</summary>
internal static class RequestBodies
{
    /// <summary>
    /// The body, or null when it is (or says it is) larger than <paramref name="max"/> bytes: the caller answers 413 in its
    /// own dialect. No more than <paramref name="max"/> bytes (plus one read) are held. A streamed (chunked) body that
    /// passes the server's own request-size limit first is too large as well, not a server error.
    /// </summary>
    public static async Task<byte[]?> ReadBoundedAsync(HttpRequest request, long max, CancellationToken ct)
    {
        if (request.ContentLength > max) return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        try
        {
            while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > max) return null;
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null;
        }
        return buffer.ToArray();
    }
}
