namespace StratusLab.Server.Platform.Data;

/// <summary>Process-wide totals of a store's round trips; thread-safe, always on (two interlocked increments per use).</summary>
public sealed class StoreStatistics
{
    long _connections;
    long _commands;

    /// <summary>Connections opened (each Open / OpenAsync, WriteAsync included).</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connections);

    /// <summary>SQL commands created on the store's connections after their set-up pragmas, BEGIN and COMMIT included.</summary>
    public long CommandsExecuted => Interlocked.Read(ref _commands);

    internal void ConnectionOpened() => Interlocked.Increment(ref _connections);
    internal void CommandExecuted() => Interlocked.Increment(ref _commands);
}

/// <summary>
/// Counts a store's round trips made by one async flow: <c>using var trips = store.CountRoundTrips();</c>, then the work,
/// then read <see cref="ConnectionsOpened"/>, <see cref="CommandsExecuted"/> or <see cref="Total"/>.
/// The scope lives in an <see cref="AsyncLocal{T}"/>: it follows the flow across awaits and into tasks started inside it
/// (Task.Run, fire-and-forget work), but not into work that was already running before it began (hosted services,
/// Quartz jobs, the scheduler loop) nor into a request served by a real Kestrel; count those with
/// <see cref="Store.Statistics"/> (before/after) instead. Scopes nest: an inner scope's trips count in the outer one too.
/// Thread-safe: tasks inside the scope may count concurrently.
/// </summary>
public sealed class StoreRoundTrips : IDisposable
{
    static readonly AsyncLocal<StoreRoundTrips?> Current = new();

    readonly Store _store;
    readonly StoreRoundTrips? _outer;
    int _connections;
    int _commands;
    bool _disposed;

    StoreRoundTrips(Store store, StoreRoundTrips? outer) => (_store, _outer) = (store, outer);

    /// <summary>Connections the flow opened on the store while the scope was active.</summary>
    public int ConnectionsOpened => Volatile.Read(ref _connections);

    /// <summary>SQL commands the flow ran on the store while the scope was active (BEGIN and COMMIT included).</summary>
    public int CommandsExecuted => Volatile.Read(ref _commands);

    /// <summary>Connections plus commands.</summary>
    public int Total => ConnectionsOpened + CommandsExecuted;

    internal static StoreRoundTrips Begin(Store store)
    {
        var scope = new StoreRoundTrips(store, Current.Value);
        Current.Value = scope;
        return scope;
    }

    internal static void ConnectionOpened(Store store)
    {
        for (var s = Current.Value; s is not null; s = s._outer)
            if (!s._disposed && ReferenceEquals(s._store, store)) Interlocked.Increment(ref s._connections);
    }

    internal static void CommandExecuted(Store store)
    {
        for (var s = Current.Value; s is not null; s = s._outer)
            if (!s._disposed && ReferenceEquals(s._store, store)) Interlocked.Increment(ref s._commands);
    }

    /// <summary>Stops counting; the counts stay readable.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        // Only the flow that began the scope restores the outer one; a child flow's copy of the context is its own.
        if (ReferenceEquals(Current.Value, this)) Current.Value = _outer;
    }

    public override string ToString() => $"{ConnectionsOpened} connection(s), {CommandsExecuted} command(s)";
}
