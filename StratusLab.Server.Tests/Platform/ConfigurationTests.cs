using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Tests.Platform;

public class ConfigurationTests
{
    static ServerOptions Load(string[] args, Dictionary<string, string?>? extra = null)
    {
        var builder = new ConfigurationBuilder().AddStratusLabSources(args);
        if (extra is not null) builder.AddInMemoryCollection(extra);
        return ServerConfiguration.Bind(builder.Build());
    }

    [Test]
    public void The_embedded_defaults_need_no_file()
    {
        var options = Load([]);
        Assert.Multiple(() =>
        {
            Assert.That(options.Urls, Is.EqualTo("http://127.0.0.1:8440"));
            Assert.That(options.Compute.Driver, Is.EqualTo("qemu"));
            Assert.That(options.DataDir, Is.Not.Empty);
            Assert.That(options.Identity.DefaultQuota.Vms, Is.GreaterThan(0));
        });
    }

    [Test]
    public void Flags_override_the_defaults()
    {
        var options = Load(["--data-dir", "/tmp/x-data", "--urls=http://127.0.0.1:9999"]);
        Assert.That(options.DataDir, Is.EqualTo("/tmp/x-data"));
        Assert.That(options.Urls, Is.EqualTo("http://127.0.0.1:9999"));
    }

    [Test]
    public void A_config_file_overrides_only_its_keys()
    {
        var file = Path.Combine(Path.GetTempPath(), $"sl-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, """{ "Compute": { "Driver": "simulated" } }""");
        try
        {
            var options = Load(["--config", file]);
            Assert.That(options.Compute.Driver, Is.EqualTo("simulated"));
            Assert.That(options.Compute.Accelerator, Is.EqualTo("auto"));
        }
        finally { File.Delete(file); }
    }

    [TestCase("Compute:Driver", "xen", "Compute:Driver = 'xen' is not accepted; accepted values: qemu, simulated.")]
    [TestCase("Compute:Accelerator", "hvf", "Compute:Accelerator = 'hvf' is not accepted; accepted values: auto, kvm, tcg.")]
    [TestCase("Store:BusyTimeoutMs", "5", "Store:BusyTimeoutMs = 5 is out of range; accepted values: 100..600000.")]
    [TestCase("Urls", "ftp://x", "Urls = 'ftp://x' is not accepted")]
    public void An_invalid_value_names_the_key_and_the_accepted_values(string key, string value, string expected)
    {
        var e = Assert.Throws<ConfigurationException>(() => Load([], new() { [key] = value }));
        Assert.That(e!.Message, Does.Contain(expected));
    }

    [Test]
    public void A_value_of_the_wrong_type_names_the_key()
    {
        var e = Assert.Throws<ConfigurationException>(() => Load([], new() { ["Store:BusyTimeoutMs"] = "soon" }));
        Assert.That(e!.Message, Does.Contain("Store:BusyTimeoutMs"));
    }

    [Test]
    public void An_unknown_flag_is_refused_with_the_accepted_ones()
    {
        var e = Assert.Throws<ConfigurationException>(() => Load(["--dta-dir", "/x"]));
        Assert.That(e!.Message, Does.Contain("--dta-dir").And.Contain("--data-dir"));
    }

    [Test]
    public void A_missing_config_file_is_named()
    {
        var e = Assert.Throws<ConfigurationException>(() => Load(["--config", "/nonexistent/stratuslab.json"]));
        Assert.That(e!.Message, Does.Contain("/nonexistent/stratuslab.json"));
    }

    [TestCase("http://127.0.0.1:8440", "http://10.0.2.2:8440")]
    [TestCase("http://0.0.0.0:8440", "http://10.0.2.2:8440")]
    [TestCase("http://192.0.2.10:8000", "http://192.0.2.10:8000")]
    public void Guests_reach_a_loopback_server_through_the_user_network_gateway(string urls, string expected) =>
        Assert.That(StratusLab.Server.Platform.Http.GuestApiAddress.UrlFor(urls), Is.EqualTo(expected));
}
