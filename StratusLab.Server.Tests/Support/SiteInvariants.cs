using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using StratusLab.Server.Cli;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// What must hold on a site after any fault, checked from the outside (the store file, /proc, ip, tgtadm) and not
/// through the server's own code: every QEMU, tap, lease, port, target and live clone has a live owner, stored quota
/// usage equals the sum of what holds it, and 'admin check' is clean.
/// </summary>
public static class SiteInvariants
{
    static readonly string[] Ended = ["DONE", "FAILED"];

    /// <summary>The broken invariants, one line each (empty when the site is sound).</summary>
    public static async Task<IReadOnlyList<string>> ViolationsAsync(string dataDir)
    {
        var problems = new List<string>();
        var db = Path.Combine(dataDir, "stratuslab.db");
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        var instances = connection.Query<(long Id, string State, string Driver, long QuotaHeld)>(
            "SELECT id, state, driver, quota_held FROM compute_instances").ToDictionary(i => i.Id);
        bool Live(long id) => instances.TryGetValue(id, out var i) && !Ended.Contains(i.State);

        // QEMU: each process of this data dir belongs to an instance whose state may have a VM.
        foreach (var pid in HostTools.QemuProcesses(dataDir))
        {
            var id = InstanceOfQemu(pid);
            if (id is null || !instances.TryGetValue(id.Value, out var row) || row.State is not ("BOOT" or "RUNNING" or "SHUTDOWN" or "SUSPENDED"))
                problems.Add($"qemu pid {pid} (instance {id?.ToString(CultureInfo.InvariantCulture) ?? "?"}, state {(id is { } i && instances.TryGetValue(i, out var r) ? r.State : "none")}) has no live owner");
        }
        foreach (var row in instances.Values.Where(i => i.Driver == "qemu" && i.State is "RUNNING" or "SUSPENDED"))
            if (!HostTools.QemuProcesses(dataDir).Any(p => InstanceOfQemu(p) == row.Id))
                problems.Add($"instance {row.Id} is {row.State} but no QEMU runs for it");

        foreach (var (network, address, instance) in connection.Query<(long, long, long)>(
                     "SELECT network_id, address, instance_id FROM net_leases WHERE state = 'used'"))
            if (!Live(instance)) problems.Add($"lease {network}/{address} is used by instance {instance}, which is not live");
        foreach (var (port, instance) in connection.Query<(long, long)>("SELECT port, instance_id FROM net_ports"))
            if (!Live(instance)) problems.Add($"PAT port {port} is held for instance {instance}, which is not live");
        foreach (var (volume, instance) in connection.Query<(string, long)>("SELECT volume_uuid, instance_id FROM pdisk_mounts"))
            if (!Live(instance)) problems.Add($"volume {volume} is mounted by instance {instance}, which is not live");
        foreach (var (uuid, type) in connection.Query<(string, string)>(
                     """
                     SELECT v.uuid, v.type FROM pdisk_volumes v
                     WHERE v.state = 'READY' AND v.type LIKE '%_LIVE'
                       AND NOT EXISTS (SELECT 1 FROM pdisk_mounts m WHERE m.volume_uuid = v.uuid)
                     """))
            problems.Add($"live clone {uuid} ({type}) is READY but nothing mounts it");
        foreach (var row in instances.Values.Where(i => i.QuotaHeld == 1 && Ended.Contains(i.State)))
            problems.Add($"instance {row.Id} is {row.State} but still holds quota");

        // Quota: stored usage equals the sum of what holds it.
        var usage = connection.Query<(long User, long Vms, long Cpus, long Memory, long Storage)>(
            "SELECT user_id, vms, cpus, memory_mib, storage_gib FROM id_quota_usage").ToDictionary(u => u.User);
        var held = connection.Query<(long User, long Vms, long Cpus, long Memory)>(
            "SELECT owner_id, COUNT(*), SUM(cpu), SUM(memory_mib) FROM compute_instances WHERE quota_held = 1 GROUP BY owner_id").ToDictionary(h => h.User);
        var storage = connection.Query<(long User, long Gib)>(
            "SELECT owner_id, SUM(quota_gib) FROM pdisk_volumes GROUP BY owner_id").ToDictionary(s => s.User, s => s.Gib);
        foreach (var user in usage.Keys.Union(held.Keys).Union(storage.Keys))
        {
            usage.TryGetValue(user, out var u);
            held.TryGetValue(user, out var h);
            storage.TryGetValue(user, out var s);
            if ((u.Vms, u.Cpus, u.Memory, u.Storage) != (h.Vms, h.Cpus, h.Memory, s))
                problems.Add($"user {user}: stored usage vms={u.Vms} cpus={u.Cpus} memory={u.Memory} MiB storage={u.Storage} GiB, " +
                             $"but what holds it sums to vms={h.Vms} cpus={h.Cpus} memory={h.Memory} MiB storage={s} GiB");
        }

        // Taps of this site's instances exist only for live ones (tap names carry the instance id).
        var ip = await HostTools.RunAsync("ip", ["-o", "link", "show"], TimeSpan.FromSeconds(10));
        foreach (var line in ip.Out.Split('\n'))
        {
            var name = line.Split(':', 3) is { Length: 3 } parts ? parts[1].Trim().Split('@')[0] : "";
            if (name.StartsWith("sltap-", StringComparison.Ordinal) && name[6..].Split('-')[0] is var digits
                && long.TryParse(digits, CultureInfo.InvariantCulture, out var id) && instances.ContainsKey(id) && !Live(id))
                problems.Add($"tap {name} belongs to instance {id}, which is not live");
        }

        // iSCSI targets naming one of this site's volumes: that volume exists and is READY.
        var volumes = connection.Query<(string Uuid, string State, string Sharing)>("SELECT uuid, state, sharing FROM pdisk_volumes")
            .ToDictionary(v => v.Uuid, StringComparer.OrdinalIgnoreCase);
        var tgt = File.Exists("/usr/sbin/tgtadm")
            ? await HostTools.RunAsync("tgtadm", ["--lld", "iscsi", "--op", "show", "--mode", "target"], TimeSpan.FromSeconds(10))
            : (0, "", "");
        foreach (var line in tgt.Item2.Split('\n').Where(l => l.StartsWith("Target ", StringComparison.Ordinal)))
        {
            var iqn = line.Split(' ', 3).ElementAtOrDefault(2)?.Trim() ?? "";
            const string prefix = "iqn.2011-01.eu.stratuslab:";
            if (!iqn.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var uuid = iqn[prefix.Length..];
            if (volumes.TryGetValue(uuid, out var v) && v.State != "READY")
                problems.Add($"iSCSI target {iqn} exports volume {uuid}, which is {v.State}");
        }

        connection.Close();
        var output = new StringWriter();
        var rc = await AdminCli.RunAsync(["check", "--data-dir", dataDir], output, output);
        if (rc != 0) problems.Add($"'admin check' exited {rc}: {output.ToString().Trim()}");
        return problems;
    }

    /// <summary>The instance id a QEMU process was started for (from its -name stratuslab-ID).</summary>
    static long? InstanceOfQemu(int pid)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            var name = args.SkipWhile(a => a != "-name").Skip(1).FirstOrDefault() ?? "";
            var first = name.Split(',')[0];
            return first.StartsWith("stratuslab-", StringComparison.Ordinal) && long.TryParse(first["stratuslab-".Length..], CultureInfo.InvariantCulture, out var id) ? id : null;
        }
        catch (IOException) { return null; }
    }
}
