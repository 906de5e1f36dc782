using System.Diagnostics;
using System.Text;
using StratusLab.Server.Modules.Context;
using StratusLab.Server.Modules.Context.Contracts;
using StratusLab.Server.Platform.Contracts;
using YamlDotNet.RepresentationModel;

namespace StratusLab.Server.Tests.Modules.Context;

/// <summary>What cloud-init's OpenNebula and NoCloud datasources read, as the builder writes it.</summary>
public class CloudInitMediaTests
{
    const string Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0jZ2Wc6vYp6hJqkF1bUQp3m6w1kq2a8V9n3i0xRmH test@host";

    static ContextRequest Request(string? userData, ContextMethod method = ContextMethod.OpenNebula) =>
        new("/unused", [new("STRATUSLAB_TOKEN", "slg_abc"), new("MY_SETTING", "x")], userData)
        {
            Method = method,
            InstanceUid = "i-0123456789abcdef",
            Hostname = "web-1",
            SshKeys = [Key],
            Nics = [new ContextNic(0, "02:00:0a:00:02:0f", "10.0.2.15", "255.255.255.0", "10.0.2.2", ["10.0.2.3"], 1500)],
            PhoneHomeUrl = "http://10.0.2.2:8440/guest/v1/phone-home/slg_abc",
        };

    static Dictionary<string, string> Sourced(string script)
    {
        // Source the script with a real sh and print each variable: what cloud-init's datasource sees.
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, script);
            var names = "VMID SET_HOSTNAME HOSTNAME NETWORK ETH0_MAC ETH0_IP ETH0_MASK ETH0_GATEWAY ETH0_DNS ETH0_MTU SSH_PUBLIC_KEY USER_DATA USERDATA_ENCODING STRATUSLAB_TOKEN MY_SETTING".Split(' ');
            var psi = new ProcessStartInfo("/bin/sh", ["-c", $". {file}; for v in {string.Join(' ', names)}; do eval \"printf '%s=%s\\\\0' $v \\\"\\${{$v-}}\\\"\"; done"])
                { RedirectStandardOutput = true };
            using var sh = Process.Start(psi)!;
            var output = sh.StandardOutput.ReadToEnd();
            Assert.That(sh.WaitForExit(10_000), Is.True);
            return output.Split('\0', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        }
        finally { File.Delete(file); }
    }

    [Test]
    public void Context_sh_carries_what_the_OpenNebula_datasource_reads()
    {
        var userData = "#cloud-config\nruncmd:\n  - echo 'it''s here' > /marker\n";
        var files = ContextMediaBuilder.Files(Request(userData));
        Assert.That(files.Select(f => f.Name), Is.EqualTo(new[] { "context.sh" }));
        var vars = Sourced(files[0].Content);
        Assert.That(vars["VMID"], Is.EqualTo("i-0123456789abcdef"));
        Assert.That(vars["SET_HOSTNAME"], Is.EqualTo("web-1"));
        Assert.That(vars["HOSTNAME"], Is.EqualTo("web-1"));
        Assert.That(vars["NETWORK"], Is.EqualTo("YES"));
        Assert.That(vars["ETH0_MAC"], Is.EqualTo("02:00:0a:00:02:0f"));
        Assert.That(vars["ETH0_IP"], Is.EqualTo("10.0.2.15"));
        Assert.That(vars["ETH0_MASK"], Is.EqualTo("255.255.255.0"));
        Assert.That(vars["ETH0_GATEWAY"], Is.EqualTo("10.0.2.2"));
        Assert.That(vars["ETH0_DNS"], Is.EqualTo("10.0.2.3"));
        Assert.That(vars["ETH0_MTU"], Is.EqualTo("1500"));
        Assert.That(vars["SSH_PUBLIC_KEY"], Is.EqualTo(Key));
        Assert.That(vars["USERDATA_ENCODING"], Is.EqualTo("base64"));
        Assert.That(Encoding.UTF8.GetString(Convert.FromBase64String(vars["USER_DATA"])), Is.EqualTo(userData));
        Assert.That(vars["STRATUSLAB_TOKEN"], Is.EqualTo("slg_abc"));
        Assert.That(vars["MY_SETTING"], Is.EqualTo("x"));
    }

    [Test]
    public void Without_user_data_context_sh_has_no_USER_DATA()
    {
        var vars = Sourced(ContextMediaBuilder.Files(Request(null))[0].Content);
        Assert.That(vars["USER_DATA"], Is.Empty);
        Assert.That(vars["USERDATA_ENCODING"], Is.Empty);
    }

    [Test]
    public void The_NoCloud_seed_holds_meta_data_user_data_verbatim_vendor_data_and_network_config_v2()
    {
        var userData = "Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n--XX\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n--XX--\n";
        var files = ContextMediaBuilder.Files(Request(userData, ContextMethod.NoCloud)).ToDictionary(f => f.Name, f => f.Content);
        Assert.That(files.Keys, Is.EquivalentTo(new[] { "meta-data", "user-data", "vendor-data", "network-config", "context.sh" }));
        Assert.That(files["user-data"], Is.EqualTo(userData));

        var meta = Yaml(files["meta-data"]);
        Assert.That(Scalar(meta, "instance-id"), Is.EqualTo("i-0123456789abcdef"));
        Assert.That(Scalar(meta, "local-hostname"), Is.EqualTo("web-1"));
        Assert.That(((YamlSequenceNode)meta.Children[new YamlScalarNode("public-keys")]).Children.Select(c => ((YamlScalarNode)c).Value), Is.EqualTo(new[] { Key }));

        var network = Yaml(files["network-config"]);
        Assert.That(Scalar(network, "version"), Is.EqualTo("2"));
        var eth0 = (YamlMappingNode)((YamlMappingNode)network.Children[new YamlScalarNode("ethernets")]).Children[new YamlScalarNode("eth0")];
        Assert.That(Scalar((YamlMappingNode)eth0.Children[new YamlScalarNode("match")], "macaddress"), Is.EqualTo("02:00:0a:00:02:0f"));
        Assert.That(((YamlSequenceNode)eth0.Children[new YamlScalarNode("addresses")]).Children.Select(c => ((YamlScalarNode)c).Value), Is.EqualTo(new[] { "10.0.2.15/24" }));
        Assert.That(Scalar(eth0, "gateway4"), Is.EqualTo("10.0.2.2"));

        Assert.That(files["vendor-data"], Does.StartWith("#cloud-config\n"));
        var phoneHome = (YamlMappingNode)Yaml(files["vendor-data"]).Children[new YamlScalarNode("phone_home")];
        Assert.That(Scalar(phoneHome, "url"), Is.EqualTo("http://10.0.2.2:8440/guest/v1/phone-home/slg_abc"));

        // Agents that read context.sh from any CD (this cloud's appliance) still find it, without the user data.
        var vars = Sourced(files["context.sh"]);
        Assert.That(vars["STRATUSLAB_TOKEN"], Is.EqualTo("slg_abc"));
        Assert.That(vars["USER_DATA"], Is.Empty);
    }

    [Test]
    public void A_NoCloud_seed_without_user_data_still_has_an_empty_user_data_file() =>
        Assert.That(ContextMediaBuilder.Files(Request(null, ContextMethod.NoCloud)).Single(f => f.Name == "user-data").Content, Is.Empty);

    [TestCase("255.255.255.0", 24)]
    [TestCase("255.255.0.0", 16)]
    [TestCase("255.255.255.252", 30)]
    [TestCase("24", 24)]
    public void Masks_become_prefix_lengths(string mask, int prefix) => Assert.That(NoCloudSeed.PrefixLength(mask), Is.EqualTo(prefix));

    [TestCase(ContextMethod.OpenNebula, "CONTEXT")]
    [TestCase(ContextMethod.NoCloud, "cidata")]
    public async Task The_medium_is_a_real_ISO_with_the_label_the_datasource_looks_for(ContextMethod method, string label)
    {
        var dir = Path.Combine(Path.GetTempPath(), "ctx-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var builder = new ContextMediaBuilder(new StratusLab.Server.Platform.Host.CommandRunner(Microsoft.Extensions.Logging.Abstractions.NullLogger<StratusLab.Server.Platform.Host.CommandRunner>.Instance));
            var media = await builder.BuildAsync(Request("#cloud-config\n{}\n", method) with { Directory = dir });
            var psi = new ProcessStartInfo("isoinfo", ["-d", "-i", media.IsoPath]) { RedirectStandardOutput = true };
            using var isoinfo = Process.Start(psi)!;
            var output = await isoinfo.StandardOutput.ReadToEndAsync();
            Assert.That(isoinfo.WaitForExit(10_000), Is.True);
            Assert.That(output, Does.Contain("Volume id: " + label));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Test]
    public void User_data_over_64_KiB_is_refused()
    {
        var e = Assert.Throws<InvalidInputException>(() => UserDataRules.Check("#!/bin/sh\n" + new string('x', 64 * 1024)))!;
        Assert.That(e.Field, Is.EqualTo("userData"));
        Assert.That(e.Detail, Does.Contain("65546 bytes"));
    }

    [TestCase("#cloud-config\nruncmd: [unclosed\n")]
    [TestCase("#cloud-config\n\u0001\u0002\u00ff\u00fe garbage: : :\n\t- x")]
    [TestCase("#cloud-config\njust a string\n")]
    public void Declared_cloud_config_that_is_not_a_YAML_mapping_is_refused(string userData) =>
        Assert.That(Assert.Throws<InvalidInputException>(() => UserDataRules.Check(userData))!.Detail, Does.Contain("#cloud-config"));

    [TestCase("#cloud-config\nruncmd:\n  - echo hi\n")]
    [TestCase("#!/bin/sh\necho 'not yaml: : ['\n")]
    [TestCase("Content-Type: multipart/mixed; boundary=\"X\"\n\n--X--\n")]
    [TestCase("#cloud-config\n")]
    public void Valid_cloud_config_scripts_and_multipart_pass(string userData) => Assert.DoesNotThrow(() => UserDataRules.Check(userData));

    static YamlMappingNode Yaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    static string? Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node.Children[new YamlScalarNode(key)]).Value;
}
