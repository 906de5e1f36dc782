using Dapper;
using StratusLab.Server.Platform.Data;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

/// <summary>The hot queries find their rows through an index, never by scanning the table.</summary>
public class StoreIndexTests
{
    string _dir = "";
    Store _store = null!;

    [OneTimeSetUp]
    public void Create()
    {
        _dir = TempDir.Create("indexes");
        _store = new Store(Path.Combine(_dir, "stratuslab.db"), 5000);
        Migrator.Migrate(_store, Program.StoreSchemas());
    }

    [OneTimeTearDown]
    public void Remove()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        TempDir.Delete(_dir);
    }

    string PlanOf(string sql, object parameters)
    {
        using var c = _store.Open();
        return string.Join("\n", c.Query<(long Id, long Parent, long NotUsed, string Detail)>("EXPLAIN QUERY PLAN " + sql, parameters).Select(r => r.Detail));
    }

    [TestCase("SELECT id FROM compute_instances WHERE 1 = 1 AND state IN @states ORDER BY id LIMIT @limit OFFSET @offset", "compute_instances",
        TestName = "Listing instances by state searches an index")]
    [TestCase("UPDATE compute_instances SET state = 'DONE' WHERE state IN @states AND id > 0", "compute_instances",
        TestName = "Changing instances by state searches an index")]
    [TestCase("SELECT address FROM net_leases WHERE network_id = @id ORDER BY address LIMIT 100", "net_leases",
        TestName = "Listing the leases of a network searches an index")]
    [TestCase("SELECT port FROM net_ports WHERE network_id = @id ORDER BY port", "net_ports",
        TestName = "Listing the forwarded ports of a network searches an index")]
    [TestCase("SELECT port FROM net_ports WHERE network_id = @id AND address = @address", "net_ports",
        TestName = "The foreign key lookup of a lease's ports searches an index")]
    [TestCase("SELECT count(*) FROM sched_allocations WHERE host = @host", "sched_allocations",
        TestName = "Counting the allocations of a host searches an index")]
    public void Hot_query_uses_an_index(string sql, string table)
    {
        var plan = PlanOf(sql, new { states = new[] { "PENDING", "RUNNING" }, limit = 10, offset = 0, id = 1, address = 167772161, host = "local" });
        Assert.That(plan, Does.Match($@"SEARCH {table} USING (COVERING )?INDEX"), plan);
        Assert.That(plan, Does.Not.Contain($"SCAN {table}"), plan);
    }

    [Test]
    public void Every_foreign_key_has_an_index_on_its_child_columns()
    {
        using var c = _store.Open();
        var missing = new List<string>();
        foreach (var table in c.Query<string>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'qrtz_%'"))
        {
            var keys = c.Query<(long Id, long Seq, string Parent, string From)>($"SELECT id, seq, \"table\", \"from\" FROM pragma_foreign_key_list('{table}')")
                .GroupBy(k => k.Id).Select(g => g.OrderBy(k => k.Seq).Select(k => k.From).ToList());
            var indexes = c.Query<string>($"SELECT name FROM pragma_index_list('{table}')")
                .Select(i => c.Query<string>($"SELECT name FROM pragma_index_info('{i}') ORDER BY seqno").ToList()).ToList();
            // A rowid (INTEGER PRIMARY KEY) column is its own index.
            var rowid = c.Query<(string Name, string Type, long Pk)>($"SELECT name, type, pk FROM pragma_table_info('{table}')")
                .Where(col => col.Pk == 1 && col.Type.Equals("INTEGER", StringComparison.OrdinalIgnoreCase)).Select(col => col.Name).ToList();
            foreach (var columns in keys)
                if (!indexes.Any(i => i.Take(columns.Count).SequenceEqual(columns)) && !(columns.Count == 1 && rowid.Contains(columns[0])))
                    missing.Add($"{table} ({string.Join(", ", columns)})");
        }
        Assert.That(missing, Is.Empty, "deleting a parent row scans these tables");
    }
}
