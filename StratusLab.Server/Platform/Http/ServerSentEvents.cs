using System.Text.Json;

namespace StratusLab.Server.Platform.Http;

/// <summary>Writes a stream of items as server-sent events (text/event-stream), the one way every door streams.</summary>
public static class ServerSentEvents
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Subscribes (the source's first step) before the opening comment, so a client that has seen it misses no item; then
    /// writes each item as <c>event: {eventName}</c> with its id and JSON data, and a keep-alive comment every 15 s so that
    /// proxies keep an idle stream open. Ends when the request is cancelled or the source ends.
    /// </summary>
    public static async Task StreamAsync<T>(HttpContext http, IAsyncEnumerable<T> source, string eventName, Func<T, long> id, string opening,
        CancellationToken ct)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await using var items = source.GetAsyncEnumerator(ct);
        var next = items.MoveNextAsync().AsTask();
        await http.Response.WriteAsync(opening, ct);
        await http.Response.Body.FlushAsync(ct);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(15), ct)) != next)
                {
                    await http.Response.WriteAsync(": keep-alive\n\n", ct);
                    await http.Response.Body.FlushAsync(ct);
                    continue;
                }
                if (!await next) break;
                await http.Response.WriteAsync($"event: {eventName}\nid: {id(items.Current)}\ndata: {JsonSerializer.Serialize(items.Current, Json)}\n\n", ct);
                await http.Response.Body.FlushAsync(ct);
                next = items.MoveNextAsync().AsTask();
            }
        }
        catch (OperationCanceledException) { }
        // The iterator ends once the request is cancelled; it must not be disposed while a step is pending.
        try { await next; } catch (OperationCanceledException) { }
    }
}
