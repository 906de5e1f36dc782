using StratusLab.Server.Modules.Compute;
using StratusLab.Server.Modules.Identity;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

public class ConfigurationTests
{
    static IConfiguration Sources(string[] args, Dictionary<string, string?>? extra = null)
    {
        var builder = new ConfigurationBuilder().AddStratusLabSources(args);
        if (extra is not null) builder.AddInMemoryCollection(extra);
        return builder.Build();
    }

    static ServerOptions Load(string[] args, Dictionary<string, string?>? extra = null) => ServerConfiguration.Bind(Sources(args, extra));

    /// <summary>Platform's and the modules' options as 'stratuslab serve' registers and validates them, without starting a server.</summary>
    static ServiceProvider Modules(string[] args, Dictionary<string, string?>? extra = null)
    {
        var configuration = Sources(args, extra);
        ServerConfiguration.Bind(configuration);
        var services = new ServiceCollection();
        Program.AddModules(services, configuration);
        var provider = services.BuildServiceProvider();
        ServerConfiguration.ValidateAtStartup(provider);
        return provider;
    }

    [Test]
    public void The_embedded_defaults_need_no_file()
    {
        var options = Load([]);
        using var modules = Modules([]);
        Assert.Multiple(() =>
        {
            Assert.That(options.Urls, Is.EqualTo("http://127.0.0.1:8440"));
            Assert.That(modules.GetRequiredService<ComputeOptions>().Driver, Is.EqualTo("qemu"));
            Assert.That(options.DataDir, Is.Not.Empty);
            Assert.That(modules.GetRequiredService<IdentityOptions>().DefaultQuota.Vms, Is.GreaterThan(0));
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
            using var modules = Modules(["--config", file]);
            var compute = modules.GetRequiredService<ComputeOptions>();
            Assert.That(compute.Driver, Is.EqualTo("simulated"));
            Assert.That(compute.Accelerator, Is.EqualTo("auto"));
        }
        finally { File.Delete(file); }
    }

    [TestCase("Compute:Driver", "xen", "Compute:Driver = 'xen' is not accepted; accepted values: qemu, simulated.")]
    [TestCase("Compute:Accelerator", "hvf", "Compute:Accelerator = 'hvf' is not accepted; accepted values: auto, kvm, tcg.")]
    [TestCase("Store:BusyTimeoutMs", "5", "Store:BusyTimeoutMs = 5 is out of range; accepted values: 100..600000.")]
    [TestCase("Urls", "ftp://x", "Urls = 'ftp://x' is not accepted")]
    [TestCase("Disk:MinFreeMiB", "-1", "Disk:MinFreeMiB = -1 is out of range; accepted values: 0..1048576.")]
    [TestCase("Identity:ExpiredTokenRetentionDays", "0", "Identity:ExpiredTokenRetentionDays = 0 is out of range; accepted values: 1..3650.")]
    [TestCase("Identity:Ldap:Enabled", "true", "Identity:Ldap:Url must be ldap://host[:port] or ldaps://host[:port] when Identity:Ldap:Enabled is true.")]
    [TestCase("Images:MaxCacheMiB", "0", "Images:MaxCacheMiB = 0 is out of range; accepted values: 1..1073741824.")]
    [TestCase("Scheduling:SafetyNetSeconds", "0", "Scheduling:SafetyNetSeconds = 0 is out of range; accepted values: 1..3600.")]
    [TestCase("Scheduling:Policy", "random", "Scheduling:Policy = 'random' is not accepted; accepted values: packing, striping, load-aware, or rank:<expression>")]
    [TestCase("Marketplace:Mail:SmtpPort", "0", "Marketplace:Mail:SmtpPort = 0 is out of range; accepted values: 1..65535.")]
    [TestCase("Policy:WhitelistImages:0", "short", "Policy:WhitelistImages contains 'short', which is not accepted; accepted values: 27-character image identifiers.")]
    [TestCase("Pdisk:Backend", "nfs", "Pdisk:Backend = 'nfs' is not accepted; accepted values: file, lvm.")]
    [TestCase("Networking:PatAddress", "nowhere", "Networking:PatAddress = 'nowhere' is not accepted")]
    [TestCase("Networking:LinkedNetworks", "lab-a", "Networking:LinkedNetworks = 'lab-a' is not accepted; accepted values: empty, or groups of two or more network names")]
    [TestCase("Networking:DefaultNetwork:Cidr", "224.0.2.0/24", "Networking:DefaultNetwork:Cidr = '224.0.2.0/24' is not accepted: 224.0.2.0/24 lies in multicast addresses")]
    public void An_invalid_value_names_the_key_and_the_accepted_values(string key, string value, string expected)
    {
        var e = Assert.Throws<ConfigurationException>(() => Modules([], new() { [key] = value }).Dispose());
        Assert.That(e!.Message, Does.StartWith("invalid configuration:\n  ").And.Contain(expected));
    }

    [TestCase("Store:BusyTimeoutMs")]
    [TestCase("Compute:BootTimeoutSeconds")]
    [TestCase("Networking:PatPortFirst")]
    public void A_value_of_the_wrong_type_names_the_key(string key)
    {
        var e = Assert.Throws<ConfigurationException>(() => Modules([], new() { [key] = "soon" }).Dispose());
        Assert.That(e!.Message, Does.Contain(key).And.EndWith("Give a whole number."));
    }

    [Test]
    public void Serve_lists_the_invalid_keys_of_every_module_together_before_touching_the_data_dir()
    {
        var parent = TempDir.Create("config");
        var dataDir = Path.Combine(parent, "never-created");
        var e = Assert.ThrowsAsync<ConfigurationException>(() => Program.BuildServerAsync(["--data-dir", dataDir, "--urls", "http://127.0.0.1:0"], b =>
            b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Compute:Driver"] = "xen",
                ["Pdisk:Backend"] = "nfs",
                ["Networking:PatAddress"] = "nowhere",
                ["Scheduling:Policy"] = "random",
                ["Identity:ExpiredTokenRetentionDays"] = "0",
            })));
        var created = Directory.Exists(dataDir);
        TempDir.Delete(parent);
        Assert.That(created, Is.False, "the data dir was created for a server that refused to start");
        var lines = e!.Message.Split('\n');
        Assert.Multiple(() =>
        {
            Assert.That(lines[0], Is.EqualTo("invalid configuration:"));
            Assert.That(lines.Skip(1), Has.All.StartWith("  "));
            Assert.That(lines, Has.One.StartWith("  Compute:Driver = 'xen'"));
            Assert.That(lines, Has.One.StartWith("  Pdisk:Backend = 'nfs'"));
            Assert.That(lines, Has.One.StartWith("  Networking:PatAddress = 'nowhere'"));
            Assert.That(lines, Has.One.StartWith("  Scheduling:Policy = 'random'"));
            Assert.That(lines, Has.One.StartWith("  Identity:ExpiredTokenRetentionDays = 0"));
        });
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
