using System.Collections.Concurrent;

namespace StratusLab.Server.Modules.Identity;

/// <summary>
/// Slows password guessing for one user name without slowing the server: after <see cref="FreeFailures"/> wrong
/// passwords within <see cref="Window"/>, each further attempt for that name waits (asynchronously, holding no thread)
/// before it is checked, 2 s doubling per extra failure up to 30 s. A right password clears the name's record. Every
/// password path (web sign-in, HTTP Basic, and any other that goes through <see cref="CredentialValidator"/>) shares it.
/// </summary>
internal sealed class PasswordThrottle(TimeProvider clock)
{
    public const int FreeFailures = 5;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    static readonly TimeSpan FirstDelay = TimeSpan.FromSeconds(2), MaxDelay = TimeSpan.FromSeconds(30);
    const int MaxTracked = 10_000;

    readonly ConcurrentDictionary<string, Queue<DateTimeOffset>> _failures = new(StringComparer.Ordinal);

    /// <summary>How long an attempt for <paramref name="user"/> waits now (zero while under the limit).</summary>
    public TimeSpan DelayFor(string user)
    {
        if (!_failures.TryGetValue(user, out var times)) return TimeSpan.Zero;
        int recent;
        lock (times) recent = Prune(times, clock.GetUtcNow());
        if (recent < FreeFailures) return TimeSpan.Zero;
        var doubled = FirstDelay.TotalSeconds * Math.Pow(2, Math.Min(recent - FreeFailures, 10));
        return TimeSpan.FromSeconds(Math.Min(doubled, MaxDelay.TotalSeconds));
    }

    public void Failed(string user)
    {
        var now = clock.GetUtcNow();
        // Guessing across many names must not grow memory without bound: forget names whose failures have all expired.
        if (_failures.Count >= MaxTracked)
            foreach (var (name, old) in _failures)
                lock (old) if (Prune(old, now) == 0) _failures.TryRemove(name, out _);
        var times = _failures.GetOrAdd(user, _ => new Queue<DateTimeOffset>());
        lock (times)
        {
            Prune(times, now);
            times.Enqueue(now);
        }
    }

    public void Succeeded(string user) => _failures.TryRemove(user, out _);

    static int Prune(Queue<DateTimeOffset> times, DateTimeOffset now)
    {
        while (times.Count > 0 && now - times.Peek() > Window) times.Dequeue();
        return times.Count;
    }
}
