using StratusLab.Server.Modules.Context;
using StratusLab.Server.Modules.Context.Contracts;

namespace StratusLab.Server.Tests.Modules.Context;

public class ContextScriptTests
{
    [Test]
    public void Variables_are_single_quoted_and_sourceable_by_sh()
    {
        var text = ContextScript.Render([new("HOSTNAME", "web-1"), new("MOTD", "it's $HOME `id`\nsecond line")]);
        Assert.That(text, Does.Contain("HOSTNAME='web-1'\n"));
        Assert.That(text, Does.Contain("MOTD='it'\\''s $HOME `id`\nsecond line'\n"));
    }

    [Test]
    public async Task Sh_reads_back_exactly_the_values_written()
    {
        var value = "it's $HOME `id` \"quoted\" \\ back";
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, ContextScript.Render([new("VALUE", value)]));
            var psi = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", $". {file}; printf %s \"$VALUE\""]) { RedirectStandardOutput = true };
            using var sh = System.Diagnostics.Process.Start(psi)!;
            var output = await sh.StandardOutput.ReadToEndAsync();
            await sh.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.That(output, Is.EqualTo(value));
        }
        finally { File.Delete(file); }
    }

    [TestCase("lower")]
    [TestCase("1ABC")]
    [TestCase("A-B")]
    [TestCase("A B")]
    [TestCase("")]
    public void Invalid_names_are_refused(string name)
    {
        Assert.That(ContextVariables.IsValidName(name), Is.False);
        Assert.Throws<ArgumentException>(() => ContextScript.Render([new(name, "x")]));
    }

    [Test]
    public void The_genisoimage_arguments_label_the_cd_CONTEXT() =>
        Assert.That(string.Join(' ', ContextMediaBuilder.Arguments("/d/context.iso", "/d/context.d")),
            Is.EqualTo("-quiet -o /d/context.iso -V CONTEXT -J -R -input-charset utf-8 /d/context.d"));
}
