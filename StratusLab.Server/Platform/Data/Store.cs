using System.Data;
using Dapper;
using Microsoft.Data.Sqlite;

namespace StratusLab.Server.Platform.Data;

/// <summary>The one SQLite store every module shares (WAL, busy timeout, foreign keys on).</summary>
public sealed class Store
{
    public Store(string databasePath, int busyTimeoutMs)
    {
        DatabasePath = databasePath;
        BusyTimeoutMs = busyTimeoutMs;
        ConnectionString = BuildConnectionString(databasePath, busyTimeoutMs);
    }

    public string DatabasePath { get; }
    public int BusyTimeoutMs { get; }
    public string ConnectionString { get; }

    public static string BuildConnectionString(string path, int busyTimeoutMs) => new SqliteConnectionStringBuilder
    {
        DataSource = path,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Cache = SqliteCacheMode.Private,
        Pooling = true,
        ForeignKeys = true,
        // Microsoft.Data.Sqlite retries SQLITE_BUSY for this long.
        DefaultTimeout = Math.Max(1, busyTimeoutMs / 1000),
    }.ToString();

    /// <summary>Connections opened and commands executed by this store since it was created (process-wide, every flow).</summary>
    public StoreStatistics Statistics { get; } = new();

    /// <summary>
    /// Starts counting the round trips of the current async flow: connections this store opens and SQL commands run on
    /// them (BEGIN and COMMIT included) until the scope is disposed. See <see cref="StoreRoundTrips"/>.
    /// </summary>
    public StoreRoundTrips CountRoundTrips() => StoreRoundTrips.Begin(this);

    public SqliteConnection Open()
    {
        var connection = new CountedConnection(this);
        connection.Open();
        connection.Execute($"PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA synchronous = NORMAL;");
        connection.Opened();
        return connection;
    }

    public async Task<SqliteConnection> OpenAsync(CancellationToken ct = default)
    {
        var connection = new CountedConnection(this);
        await connection.OpenAsync(ct);
        await connection.ExecuteAsync($"PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA synchronous = NORMAL;");
        connection.Opened();
        return connection;
    }

    /// <summary>A connection that reports its commands to the store's counters once its set-up pragmas have run.</summary>
    sealed class CountedConnection(Store store) : SqliteConnection(store.ConnectionString)
    {
        bool _counting;

        public void Opened()
        {
            _counting = true;
            store.Statistics.ConnectionOpened();
            StoreRoundTrips.ConnectionOpened(store);
        }

        // Dapper and SqliteTransaction (BEGIN, COMMIT) create one command per statement batch they send.
        public override SqliteCommand CreateCommand()
        {
            if (_counting)
            {
                store.Statistics.CommandExecuted();
                StoreRoundTrips.CommandExecuted(store);
            }
            return base.CreateCommand();
        }
    }

    /// <summary>Runs <paramref name="work"/> in an IMMEDIATE transaction so read-check-write sequences cannot interleave.</summary>
    public async Task<T> WriteAsync<T>(Func<SqliteConnection, IDbTransaction, Task<T>> work, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        // BEGIN IMMEDIATE takes the write lock up front; a deferred transaction could fail to upgrade later.
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(IsolationLevel.Serializable, ct);
        var result = await work(connection, tx);
        await tx.CommitAsync(ct);
        return result;
    }

    public Task WriteAsync(Func<SqliteConnection, IDbTransaction, Task> work, CancellationToken ct = default) =>
        WriteAsync<bool>(async (c, t) => { await work(c, t); return true; }, ct);
}
