using Dapper;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

public class StoreRoundTripsTests
{
    string _dir = "";
    Store _store = null!;

    [SetUp]
    public void Create()
    {
        _dir = TempDir.Create("roundtrips");
        _store = new Store(Path.Combine(_dir, "stratuslab.db"), 5000);
        using var c = _store.Open();
        c.Execute("CREATE TABLE t (x INTEGER)");
    }

    [TearDown]
    public void Remove()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        TempDir.Delete(_dir);
    }

    [Test]
    public async Task A_scope_counts_the_connections_and_commands_of_its_flow_across_awaits()
    {
        using var trips = _store.CountRoundTrips();
        await using (var c = await _store.OpenAsync())
        {
            await c.ExecuteAsync("INSERT INTO t (x) VALUES (1)");
            await Task.Yield();
            await c.QueryAsync<long>("SELECT x FROM t");
        }
        await Task.Delay(1);
        using (var c = _store.Open()) c.ExecuteScalar<long>("SELECT count(*) FROM t");

        Assert.That(trips.ConnectionsOpened, Is.EqualTo(2), "the set-up pragmas of a connection are not counted as commands");
        Assert.That(trips.CommandsExecuted, Is.EqualTo(3));
        Assert.That(trips.Total, Is.EqualTo(5));
    }

    [Test]
    public async Task A_write_transaction_counts_its_begin_and_commit()
    {
        using var trips = _store.CountRoundTrips();
        await _store.WriteAsync((c, tx) => c.ExecuteAsync("INSERT INTO t (x) VALUES (2)", transaction: tx));
        Assert.That(trips.ConnectionsOpened, Is.EqualTo(1));
        Assert.That(trips.CommandsExecuted, Is.EqualTo(3), "BEGIN, the insert, COMMIT");
    }

    [Test]
    public async Task Work_outside_the_scope_or_after_it_is_not_counted()
    {
        var unrelated = new TaskCompletionSource();
        var other = Task.Run(async () =>
        {
            await unrelated.Task;
            using var c = _store.Open();
            c.Execute("INSERT INTO t (x) VALUES (3)");
        });
        StoreRoundTrips trips;
        using (trips = _store.CountRoundTrips())
        {
            unrelated.SetResult();
            await other;
            using var c = _store.Open();
            c.Execute("INSERT INTO t (x) VALUES (4)");
        }
        using (var c = _store.Open()) c.Execute("INSERT INTO t (x) VALUES (5)");
        Assert.That(trips.ConnectionsOpened, Is.EqualTo(1), "a task started before the scope is another flow");
        Assert.That(trips.CommandsExecuted, Is.EqualTo(1));
    }

    [Test]
    public async Task Tasks_started_inside_a_scope_count_in_it_and_nested_scopes_count_in_the_outer_one()
    {
        using var outer = _store.CountRoundTrips();
        StoreRoundTrips inner;
        using (inner = _store.CountRoundTrips())
        {
            await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
            {
                await using var c = await _store.OpenAsync();
                await c.ExecuteAsync("INSERT INTO t (x) VALUES (@i)", new { i });
            })));
        }
        using (var c = _store.Open()) c.Execute("INSERT INTO t (x) VALUES (9)");
        Assert.That((inner.ConnectionsOpened, inner.CommandsExecuted), Is.EqualTo((8, 8)));
        Assert.That((outer.ConnectionsOpened, outer.CommandsExecuted), Is.EqualTo((9, 9)));
    }

    [Test]
    public void A_scope_counts_only_its_own_store_and_the_statistics_count_every_flow()
    {
        var otherStore = new Store(Path.Combine(_dir, "other.db"), 5000);
        var before = (_store.Statistics.ConnectionsOpened, _store.Statistics.CommandsExecuted);
        using var trips = _store.CountRoundTrips();
        using (var c = otherStore.Open()) c.Execute("CREATE TABLE u (x INTEGER)");
        Task.Run(() => { using var c = _store.Open(); c.Execute("INSERT INTO t (x) VALUES (6)"); }).Wait();
        Assert.That(trips.Total, Is.EqualTo(2), "the task ran inside the scope; the other store's trips are not counted");
        Assert.That(_store.Statistics.ConnectionsOpened - before.ConnectionsOpened, Is.EqualTo(1));
        Assert.That(_store.Statistics.CommandsExecuted - before.CommandsExecuted, Is.EqualTo(1));
    }
}
