using StratusLab.Server.Modules.Pdisk;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>Every Pdisk key is validated, and the message names the key and what it accepts.</summary>
public class PdiskConfigurationTests
{
    static List<string> Errors(Action<PdiskOptions> change)
    {
        var options = new PdiskOptions();
        change(options);
        return options.Problems().ToList();
    }

    [Test]
    public void The_defaults_are_valid() => Assert.That(Errors(_ => { }), Is.Empty);

    [TestCase("Backend", "nfs", "Pdisk:Backend = 'nfs' is not accepted; accepted values: file, lvm.")]
    [TestCase("FileFormat", "vmdk", "Pdisk:FileFormat = 'vmdk' is not accepted; accepted values: raw, qcow2.")]
    [TestCase("Sharing", "nbd", "Pdisk:Sharing = 'nbd' is not accepted; accepted values: local, iscsi.")]
    [TestCase("VolumesDir", "relative/dir", "Pdisk:VolumesDir = 'relative/dir' is not accepted")]
    [TestCase("VolumeGroup", "vg;rm", "Pdisk:VolumeGroup contains 'vg;rm'")]
    [TestCase("ThinPool", "../pool", "Pdisk:ThinPool contains '../pool'")]
    public void Bad_names_are_refused_naming_the_key_and_the_accepted_values(string key, string value, string message)
    {
        var errors = Errors(p => typeof(PdiskOptions).GetProperty(key)!.SetValue(p, value));
        Assert.That(errors, Has.One.StartsWith(message));
    }

    [Test]
    public void The_lvm_backend_needs_a_volume_group() =>
        Assert.That(Errors(p => p.Backend = "lvm"), Has.One.Contains("Pdisk:VolumeGroup is empty but Pdisk:Backend is lvm"));

    [Test]
    public void Iscsi_settings_are_checked()
    {
        Assert.That(Errors(p => p.Iscsi.PortalAddress = "localhost"), Has.One.Contains("Pdisk:Iscsi:PortalAddress = 'localhost'"));
        Assert.That(Errors(p => p.Iscsi.Port = 0), Has.One.Contains("Pdisk:Iscsi:Port = 0 is out of range; accepted values: 1..65535."));
        Assert.That(Errors(p => p.Iscsi.Initiators = ["10.0.0.5", "ALL", "10.1.0.0/16"]), Is.Empty);
        Assert.That(Errors(p => p.Iscsi.Initiators = ["host name"]), Has.One.Contains("Pdisk:Iscsi:Initiators contains 'host name'"));
    }

    [TestCase("0.0.0.0")]
    [TestCase("::")]
    [TestCase("node1.example")]
    public void Listen_addresses_must_be_addresses_of_this_machine_not_wildcards_or_names(string address) =>
        Assert.That(Errors(p => p.Iscsi.ListenAddresses = ["192.168.1.10", address]),
            Has.One.Contains($"Pdisk:Iscsi:ListenAddresses has '{address}', which is not accepted").And.One.Contains("not 0.0.0.0 or ::"));

    [Test]
    public void Listen_addresses_are_empty_by_default_so_tgtd_listens_on_loopback_only()
    {
        Assert.That(new StratusLab.Server.Modules.Pdisk.PdiskOptions().Iscsi.ListenAddresses, Is.Empty);
        Assert.That(Errors(p => p.Iscsi.ListenAddresses = ["192.168.1.10", "fd00::10"]), Is.Empty);
    }

    [TestCase("QuarantineMinutes", -1)]
    [TestCase("MaxVolumeGiB", 0)]
    [TestCase("MaxUploadBytes", 1)]
    [TestCase("MaxUrlDownloadBytes", 1)]
    [TestCase("UrlDownloadTimeoutMinutes", 0)]
    public void Numbers_out_of_range_are_refused(string key, long value)
    {
        var property = typeof(PdiskOptions).GetProperty(key)!;
        var errors = Errors(p => property.SetValue(p, property.PropertyType == typeof(int) ? (object)(int)value : value));
        Assert.That(errors, Has.One.StartsWith($"Pdisk:{key} = {value} is out of range; accepted values: "));
    }
}
