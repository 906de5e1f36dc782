using Microsoft.Extensions.Logging.Abstractions;
using StratusLab.Server.Modules.Pdisk;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>The iSCSI sharing's tgtadm sequences against a scripted tgtd (no daemon needed).</summary>
public class IscsiSharingTests
{
    static readonly Guid Volume = Guid.Parse("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b");
    static readonly string Iqn = "iqn.2011-01.eu.stratuslab:" + Volume;

    /// <summary>A pretend tgtd: a list of targets that tgtadm commands change, plus failures to inject.</summary>
    sealed class FakeTgtd : ICommandRunner
    {
        public readonly List<(int Tid, string Name, string? Backing)> Targets = [];
        public bool Running = true;
        public Func<ToolCommand, string?> Fail = _ => null;
        public List<string> Lines { get; } = [];

        public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken ct = default)
        {
            Lines.Add(command.ToString());
            var a = command.Arguments;
            string Arg(string name) => a[a.ToList().IndexOf(name) + 1];
            if (Fail(command) is { } error) throw new ToolFailedException(command, 22, error);
            if (command.Tool == "tgtd")
            {
                Running = true;
                return Ok();
            }
            if (!Running) throw new ToolFailedException(command, 107, "tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected");
            var op = Arg("--op");
            var mode = Arg("--mode");
            switch (op, mode)
            {
                case ("show", "target"):
                    return Ok(string.Concat(Targets.Select(t =>
                        $"Target {t.Tid}: {t.Name}\n    System information:\n        Driver: iscsi\n    LUN information:\n        LUN: 0\n            Type: controller\n            Backing store path: None\n" +
                        (t.Backing is null ? "" : $"        LUN: 1\n            Type: disk\n            Readonly: No\n            Backing store path: {t.Backing}\n") +
                        "    Account information:\n    ACL information:\n")));
                case ("new", "target"):
                    var tid = int.Parse(Arg("--tid"));
                    if (Targets.Any(t => t.Tid == tid || t.Name == Arg("-T"))) throw new ToolFailedException(command, 22, "tgtadm: this target already exists");
                    Targets.Add((tid, Arg("-T"), null));
                    return Ok();
                case ("new", "logicalunit"):
                    var i = Targets.FindIndex(t => t.Tid == int.Parse(Arg("--tid")));
                    Targets[i] = Targets[i] with { Backing = Arg("-b") };
                    return Ok();
                case ("delete", "target"):
                    if (Targets.RemoveAll(t => t.Tid == int.Parse(Arg("--tid"))) == 0) throw new ToolFailedException(command, 22, "tgtadm: can't find the target");
                    return Ok();
                default:
                    return Ok();
            }
        }

        static Task<ToolResult> Ok(string stdout = "") => Task.FromResult(new ToolResult(0, stdout, "", TimeSpan.Zero));
    }

    static (IscsiSharing Sharing, FakeTgtd Tgtd) Sharing(Action<PdiskOptions>? configure = null)
    {
        var options = new PdiskOptions();
        configure?.Invoke(options);
        var tgtd = new FakeTgtd();
        return (new IscsiSharing(tgtd, options, NullLogger<IscsiSharing>.Instance), tgtd);
    }

    [Test]
    public async Task A_volume_gets_the_lowest_free_target_id_its_lun_read_only_the_throughput_settings_and_the_hosts_acl()
    {
        var (sharing, tgtd) = Sharing();
        tgtd.Targets.AddRange([(1, "iqn.2003-01.org.other:a", "/other/a"), (2, "iqn.2003-01.org.other:b", "/other/b")]);
        await sharing.ShareAsync(new ShareRequest(Volume, "/srv/stratuslab/volumes/a.raw", ReadOnly: true), CancellationToken.None);
        Assert.That(tgtd.Lines, Is.EqualTo(new[]
        {
            "tgtadm --lld iscsi --op show --mode target",
            $"tgtadm --lld iscsi --op new --mode target --tid 3 -T {Iqn}",
            "tgtadm --lld iscsi --op new --mode logicalunit --tid 3 --lun 1 -b /srv/stratuslab/volumes/a.raw",
            "tgtadm --lld iscsi --op update --mode logicalunit --tid 3 --lun 1 --params readonly=1",
            "tgtadm --lld iscsi --op update --mode target --tid 3 -n MaxRecvDataSegmentLength -v 4194304",
            "tgtadm --lld iscsi --op update --mode target --tid 3 -n MaxXmitDataSegmentLength -v 4194304",
            "tgtadm --lld iscsi --op update --mode target --tid 3 -n FirstBurstLength -v 4194304",
            "tgtadm --lld iscsi --op update --mode target --tid 3 -n MaxBurstLength -v 16776192",
            "tgtadm --lld iscsi --op update --mode target --tid 3 -n InitialR2T -v No",
            "tgtadm --lld iscsi --op update --mode target --tid 3 -n ImmediateData -v Yes",
            "tgtadm --lld iscsi --op bind --mode target --tid 3 -I 127.0.0.1",
        }));
        Assert.That(sharing.TurlOf(Volume, "/ignored"), Is.EqualTo($"iscsi://127.0.0.1:3260/{Iqn}/1"));
    }

    [Test]
    public async Task Configured_initiators_are_bound_instead_of_the_portal_address()
    {
        var (sharing, tgtd) = Sharing(o => o.Iscsi.Initiators = ["10.0.0.5", "10.0.1.0/24"]);
        await sharing.ShareAsync(new ShareRequest(Volume, "/v/a.raw", false), CancellationToken.None);
        Assert.That(tgtd.Lines.Where(l => l.Contains("bind")), Is.EqualTo(new[]
        {
            "tgtadm --lld iscsi --op bind --mode target --tid 1 -I 10.0.0.5",
            "tgtadm --lld iscsi --op bind --mode target --tid 1 -I 10.0.1.0/24",
        }));
        Assert.That(tgtd.Lines.Any(l => l.Contains("readonly")), Is.False, "a writable volume's LUN stays writable");
    }

    [Test]
    public async Task A_target_id_taken_by_another_process_meanwhile_is_retried_with_the_next_one()
    {
        var (sharing, tgtd) = Sharing();
        var raced = false;
        tgtd.Fail = c =>
        {
            if (raced || !c.ToString().Contains("--op new --mode target --tid 1")) return null;
            raced = true;
            tgtd.Targets.Add((1, "iqn.2003-01.org.other:racer", "/other/r"));
            return "tgtadm: this target already exists";
        };
        await sharing.ShareAsync(new ShareRequest(Volume, "/v/a.raw", false), CancellationToken.None);
        Assert.That(tgtd.Targets.Single(t => t.Name == Iqn).Tid, Is.EqualTo(2));
        Assert.That(tgtd.Targets.Single(t => t.Name == Iqn).Backing, Is.EqualTo("/v/a.raw"));
    }

    [Test]
    public void A_failure_after_the_target_was_made_removes_the_target_again()
    {
        var (sharing, tgtd) = Sharing();
        tgtd.Fail = c => c.ToString().Contains("--mode logicalunit") ? "tgtadm: invalid request" : null;
        Assert.ThrowsAsync<ToolFailedException>(() => sharing.ShareAsync(new ShareRequest(Volume, "/v/a.raw", false), CancellationToken.None));
        Assert.That(tgtd.Targets, Is.Empty);
        Assert.That(tgtd.Lines.Last(), Is.EqualTo("tgtadm --lld iscsi --op delete --mode target --tid 1 --force"));
    }

    [Test]
    public async Task Tgtd_is_started_on_the_portal_when_tgtadm_cannot_reach_it()
    {
        var (sharing, tgtd) = Sharing();
        tgtd.Running = false;
        await sharing.ShareAsync(new ShareRequest(Volume, "/v/a.raw", false), CancellationToken.None);
        Assert.That(tgtd.Lines.Take(3), Is.EqualTo(new[]
        {
            "tgtadm --lld iscsi --op show --mode target",
            "tgtd --iscsi portal=127.0.0.1:3260",
            "tgtadm --lld iscsi --op show --mode target",
        }));
        Assert.That(tgtd.Targets.Single().Name, Is.EqualTo(Iqn));
    }

    [Test]
    public void Without_permission_to_start_tgtd_sharing_is_unavailable_with_a_clear_reason()
    {
        var (sharing, tgtd) = Sharing(o => o.Iscsi.StartTgtd = false);
        tgtd.Running = false;
        var error = Assert.CatchAsync<StratusLab.Server.Platform.Contracts.DomainException>(() => sharing.ShareAsync(new ShareRequest(Volume, "/v/a.raw", false), CancellationToken.None));
        Assert.That(error!.Kind, Is.EqualTo(StratusLab.Server.Platform.Contracts.Rejection.Unavailable));
        Assert.That(error.Detail, Does.Contain("iSCSI target service (tgtd)").And.Contain("not running").And.Contain("StartTgtd"));
        Assert.That(error.Field, Is.Null, "a dead tgtd is not the request's fault");
        Assert.That(error.Extensions["service"], Is.EqualTo("tgtd"));
    }

    [Test]
    public async Task Sharing_again_is_a_no_op_and_unsharing_removes_only_the_volumes_target()
    {
        var (sharing, tgtd) = Sharing();
        tgtd.Targets.Add((1, "iqn.2003-01.org.other:a", "/other/a"));
        await sharing.ShareAsync(new ShareRequest(Volume, "/v/a.raw", false), CancellationToken.None);
        var before = tgtd.Lines.Count;
        await sharing.ShareAsync(new ShareRequest(Volume, "/v/a.raw", false), CancellationToken.None);
        Assert.That(tgtd.Lines.Count, Is.EqualTo(before + 1), "only a show");
        await sharing.UnshareAsync(Volume, CancellationToken.None);
        await sharing.UnshareAsync(Volume, CancellationToken.None);
        Assert.That(tgtd.Targets.Select(t => t.Name), Is.EqualTo(new[] { "iqn.2003-01.org.other:a" }));
    }

    [Test]
    public async Task Reconciliation_lists_only_stratuslab_targets_whose_backing_store_is_this_servers()
    {
        var (sharing, tgtd) = Sharing();
        tgtd.Targets.AddRange([(1, Iqn, "/srv/stratuslab/volumes/a.raw"), (2, "iqn.2011-01.eu.stratuslab:11111111-2222-3333-4444-555555555555", "/other/server/volumes/b.raw"),
            (3, "iqn.2003-01.org.other:c", "/srv/stratuslab/volumes/c.raw")]);
        var exports = await sharing.ListAsync(p => p.StartsWith("/srv/stratuslab/volumes/"), CancellationToken.None);
        Assert.That(exports.Select(e => e.Uuid), Is.EqualTo(new[] { Volume }));
    }

    [Test]
    public async Task Nothing_is_listed_and_nothing_started_when_tgtd_is_not_running()
    {
        var (sharing, tgtd) = Sharing();
        tgtd.Running = false;
        Assert.That(await sharing.ListAsync(_ => true, CancellationToken.None), Is.Empty);
        await sharing.UnshareAsync(Volume, CancellationToken.None);
        Assert.That(tgtd.Lines.Any(l => l.StartsWith("tgtd")), Is.False);
    }
}
