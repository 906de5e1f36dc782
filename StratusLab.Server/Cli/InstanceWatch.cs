using System.Diagnostics;
using System.Text.Json;
using StratusLab.Server.Modules.Compute.Contracts;

namespace StratusLab.Server.Cli;

/// <summary>Follows instances through the server's event stream (GET /api/v1/events) and shows each state change.</summary>
public sealed class InstanceWatch(HttpResponseMessage response, StreamReader reader) : IDisposable
{
    readonly StreamReader _reader = reader;

    /// <summary>An instance event as the stream sends it.</summary>
    sealed record StateEvent(long Id, string Name, string State, bool Ready, string? FailedStep, string? FailureReason, DateTimeOffset Time);

    public static async Task<InstanceWatch?> OpenAsync(CliContext cx)
    {
        try
        {
            var response = await cx.Api.GetStreamAsync("api/v1/events", "text/event-stream");
            return new InstanceWatch(response, new StreamReader(await response.Content.ReadAsStreamAsync()));
        }
        catch (CliException)
        {
            return null; // no stream (an older server): the wait endpoint still works, without the changes shown
        }
    }

    /// <summary>Waits until every instance is ready or ended (FAILED, DONE) or the time is up; returns their views then.</summary>
    public static async Task<List<InstanceView>> UntilReadyAsync(CliContext cx, InstanceWatch? watch, List<InstanceView> instances, TimeSpan timeout)
    {
        var show = !cx.Json || cx.Verbose;
        var clock = Stopwatch.StartNew();
        var last = instances.ToDictionary(v => v.Id, v => (v.State, v.Ready));
        // An event older than the last look at its instance is news already shown (the stream can lag behind a look).
        var seen = instances.ToDictionary(v => v.Id, v => v.UpdatedAt);
        void Show(long id, string name, string state, bool ready, string? why)
        {
            if (show) cx.Err.WriteLine($"{clock.Elapsed.TotalSeconds,6:0.0}s  instance {id} {name}: {state}{(ready ? " (ready)" : "")}{(why is null ? "" : "  " + why)}");
        }
        static bool Finished(string state, bool ready) => ready || state is "FAILED" or "DONE";
        // A launch only goes forward: an event for an earlier step than the one already shown arrived late.
        static int Step(string state) => state switch { "PENDING" => 0, "PROLOG" => 1, "BOOT" => 2, "RUNNING" => 3, _ => 4 };
        static bool Behind(string state, bool ready, (string State, bool Ready) shown) =>
            Step(state) < Step(shown.State) || (state == shown.State && shown.Ready && !ready);
        foreach (var v in instances) Show(v.Id, v.Name, v.State, v.Ready, null);
        var waiting = instances.Where(v => !Finished(v.State, v.Ready)).Select(v => v.Id).ToHashSet();
        using var deadline = new CancellationTokenSource(timeout);
        if (watch is not null)
        {
            // The stream says when something changed; a look at the instances themselves says where they are (an event
            // may carry another instance's change, and readiness may come without one), at least every 2 s.
            var lines = System.Threading.Channels.Channel.CreateUnbounded<string>();
            var pump = Task.Run(async () =>
            {
                try { while (await watch._reader.ReadLineAsync(deadline.Token) is { } line) lines.Writer.TryWrite(line); }
                catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException) { }
                finally { lines.Writer.TryComplete(); }
            });
            while (waiting.Count > 0 && !deadline.IsCancellationRequested)
            {
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
                tick.CancelAfter(TimeSpan.FromSeconds(2));
                try
                {
                    await lines.Reader.WaitToReadAsync(tick.Token);
                    while (lines.Reader.TryRead(out var line))
                    {
                        if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                        var e = JsonSerializer.Deserialize<StateEvent>(line[6..], ApiClient.Json);
                        if (e is null || !last.TryGetValue(e.Id, out var before) || e.Time < seen[e.Id] || before == (e.State, e.Ready) || Behind(e.State, e.Ready, before)) continue;
                        last[e.Id] = (e.State, e.Ready);
                        seen[e.Id] = e.Time;
                        Show(e.Id, e.Name, e.State, e.Ready, e.FailureReason is null ? null : $"{e.FailedStep}: {e.FailureReason}");
                        if (Finished(e.State, e.Ready)) waiting.Remove(e.Id);
                    }
                }
                catch (OperationCanceledException) { }
                foreach (var id in waiting.ToList())
                {
                    var v = await cx.Api.GetAsync<InstanceView>($"api/v1/instances/{id}");
                    if (v.UpdatedAt > seen[id]) seen[id] = v.UpdatedAt;
                    if (last[id] != (v.State, v.Ready))
                    {
                        last[id] = (v.State, v.Ready);
                        Show(v.Id, v.Name, v.State, v.Ready, v.FailureReason is null ? null : $"{v.FailedStep}: {v.FailureReason}");
                    }
                    if (Finished(v.State, v.Ready)) waiting.Remove(id);
                }
            }
            await deadline.CancelAsync();
            watch.Dispose();
            await pump;
        }
        else
        {
            foreach (var id in waiting)
            {
                var left = Math.Max(1, (int)(timeout - clock.Elapsed).TotalSeconds);
                await cx.Api.GetAsync<InstanceView>($"api/v1/instances/{id}/wait?state=ready&timeout={Math.Min(left, 600)}");
            }
        }
        var views = new List<InstanceView>();
        foreach (var v in instances) views.Add(await cx.Api.GetAsync<InstanceView>($"api/v1/instances/{v.Id}"));
        return views;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        response.Dispose();
        _reader.Dispose();
    }

    bool _disposed;
}
