using System.CommandLine;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Cli;

/// <summary>The command line's tables: help for every command, one meaning per short flag, refusals with suggestions, completion.</summary>
public class CliParsingTests
{
    static IEnumerable<TestCaseData> EveryCommand() =>
        ClientCli.Commands.Where(c => !c.Name.StartsWith("__")).Select(c => new TestCaseData(new[] { c.Name }, c).SetName("Help renders for " + c.Name))
            .Concat(AdminCli.Commands.Select(c => new TestCaseData(new[] { "admin", c.Name }, c).SetName("Help renders for admin " + c.Name)));

    static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ClientCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [TestCaseSource(nameof(EveryCommand))]
    public async Task Every_command_has_help_with_its_options_and_an_example(string[] words, ClientCommand command)
    {
        var help = await Run([.. words, "--help"]);
        Assert.That(help.Code, Is.Zero, help.Err);
        Assert.That(help.Out, Does.StartWith($"usage: stratuslab {string.Join(' ', words)}"));
        Assert.That(help.Out, Does.Contain(command.Summary[..Math.Min(30, command.Summary.Length)]));
        foreach (var option in command.Spec.Options)
        {
            Assert.That(help.Out, Does.Contain(option.Name), $"{option.Name} is listed");
            Assert.That(CliOptions.Get(option.Name).Description, Is.Not.Empty);
        }
        Assert.That(help.Out, Does.Contain("Example:\n  stratuslab " + string.Join(' ', words)), "an example of the command itself");
        var shortForm = await Run([.. words, "-h"]);
        Assert.That(shortForm.Out, Is.EqualTo(help.Out));
    }

    [Test]
    public void Each_short_flag_has_one_meaning_across_all_commands()
    {
        var table = CliOptions.Table.Where(o => o.Short is not null).ToList();
        Assert.That(table.Select(o => o.Short), Is.Unique, "one long option per short flag in the table");
        var meaning = table.ToDictionary(o => o.Short!, o => o.Name);
        var tree = CommandTree.Build();
        var seen = 0;
        foreach (var command in tree.Specs.Keys)
            foreach (var option in command.Options)
                foreach (var alias in option.Aliases.Where(a => !a.StartsWith("--")))
                {
                    seen++;
                    Assert.That(meaning.TryGetValue(alias, out var name) && name == option.Name, $"{command.Name}: {alias} means {option.Name}, the table says {name}");
                }
        Assert.That(seen, Is.GreaterThan(10), "short flags are in use");
    }

    [Test]
    public async Task The_root_help_lists_every_command_by_family_and_the_exit_codes()
    {
        var help = await Run();
        Assert.That(help.Code, Is.Zero);
        foreach (var (family, commands) in ClientCli.Families)
        {
            Assert.That(help.Out, Does.Contain(family + ":"));
            foreach (var c in commands.Where(c => !c.Name.StartsWith("__"))) Assert.That(help.Out, Does.Contain("  " + c.Name + " "));
        }
        Assert.That(help.Out, Does.Contain("Exit codes: 0 ok, 1").And.Contain("admin"));
        Assert.That(help.Out, Does.Not.Contain("__complete"));
    }

    [TestCase(new[] { "describe-instances" }, "unknown command 'describe-instances' (did you mean 'describe-instance'")]
    [TestCase(new[] { "run-instanse", "--wait" }, "did you mean 'run-instance'")]
    [TestCase(new[] { "run-instance", "--cpus", "2" }, "unknown option '--cpus' for run-instance (did you mean '--cpu'")]
    [TestCase(new[] { "create-volume", "-s", "1", "--tga", "x" }, "(did you mean '--tag'")]
    [TestCase(new[] { "attach-volume", "-i", "1", "--instnce", "2" }, "did you mean '--instance'")]
    [TestCase(new[] { "admin", "chek" }, "unknown command 'chek' (did you mean 'check'")]
    [TestCase(new[] { "admin", "check", "--repiar" }, "did you mean '--repair'")]
    [TestCase(new[] { "serve", "--data", "/x" }, "did you mean '--data-dir'")]
    [TestCase(new[] { "completion", "fish" }, "'fish' is not a shell")]
    [TestCase(new[] { "instance-action", "3", "explode" }, "'explode' is not an action")]
    [TestCase(new[] { "instance-action", "3", "rebot" }, "(did you mean 'reboot'?)")]
    [TestCase(new[] { "run-instance", "--type" }, "--type")]
    public async Task Unknown_commands_and_flags_are_refused_with_a_suggestion_and_exit_code_2(string[] args, string message)
    {
        var result = await Run(args);
        Assert.That(result.Code, Is.EqualTo(2), result.Err);
        Assert.That(result.Err, Does.Contain(message));
        Assert.That(result.Err.Trim().Split('\n'), Has.Length.LessThanOrEqualTo(2), "short: the error and at most the usage");
        Assert.That(result.Out, Is.Empty, "nothing on stdout");
    }

    [TestCase("run-instance", "Give both 'cpu' and 'memoryMiB', or an 'instanceType'.", "Give both --cpu and --memory, or an --type.")]
    [TestCase("create-volume", "'size' = 99999 is out of range (1..1024).", "--size = 99999 is out of range (1..1024).")]
    [TestCase("create-volume", "Field 'tag': too long.", "--tag: too long.")]
    [TestCase("describe-instance", "'memoryMiB' is unknown here.", "'memoryMiB' is unknown here.")]
    public void Server_field_names_become_the_flags_that_set_them(string command, string detail, string expected)
    {
        var spec = ClientCli.Commands.Single(c => c.Name == command);
        Assert.That(ClientCli.FlagNames(detail, spec), Is.EqualTo(expected));
    }

    [TestCase(64L << 20, "64M")]
    [TestCase(1L, "1M")]
    [TestCase((1L << 30) - 1, "1024M")]
    [TestCase(1L << 30, "1G")]
    [TestCase(3L << 29, "1.5G")]
    public void Sizes_are_in_MiB_under_one_GiB(long bytes, string shown) => Assert.That(CliTerminal.Size(bytes), Is.EqualTo(shown));

    [TestCase(new[] { "3", "--ssh" }, "3", new string[0])]
    [TestCase(new[] { "3", "ls", "-la", "/tmp" }, "3", new[] { "ls", "-la", "/tmp" })]
    [TestCase(new[] { "--identity", "k", "3", "--", "uname", "-a" }, "3", new[] { "uname", "-a" })]
    [TestCase(new[] { "3", "-u", "debian", "--", "--ssh" }, "3", new[] { "--ssh" })]
    [TestCase(new[] { "--endpoint", "http://x", "3", "sh", "-c", "exit 3" }, "3", new[] { "sh", "-c", "exit 3" })]
    public void Connect_instance_passes_the_remote_command_through(string[] words, string id, string[] remote)
    {
        var (parsedId, parsedRemote) = ComputeCommands.SplitRemote(words);
        Assert.That(parsedId, Is.EqualTo(id));
        Assert.That(parsedRemote, Is.EqualTo(remote));
    }

    [TestCase(new[] { "0", "--", "run-in" }, "run-instance")]
    [TestCase(new[] { "1", "--", "run-instance", "--ty" }, "--type")]
    [TestCase(new[] { "2", "--", "run-instance", "--context-method", "no" }, "nocloud")]
    [TestCase(new[] { "1", "--", "admin", "ch" }, "check")]
    public async Task Completion_offers_commands_options_and_values(string[] words, string expected)
    {
        var result = await Run(["__complete", .. words]);
        Assert.That(result.Code, Is.Zero, result.Err);
        Assert.That(result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), Does.Contain(expected));
    }

    [Test, CancelAfter(60_000)]
    public async Task The_bash_completion_script_completes_with_the_real_binary()
    {
        var dir = TempDir.Create("cli-completion");
        try
        {
            var script = (await Run("completion", "bash")).Out;
            Assert.That(script, Does.Contain("complete -o default -F _stratuslab stratuslab"));
            File.WriteAllText(Path.Combine(dir, "completion.bash"), script);
            // The script calls 'stratuslab': the apphost next to the tests, found on PATH.
            var bin = TestContext.CurrentContext.TestDirectory;
            Assert.That(File.Exists(Path.Combine(bin, "stratuslab")), "the apphost is built next to the tests");
            var probe = $"export PATH='{bin}':$PATH; source '{dir}/completion.bash'; COMP_WORDS=(stratuslab describe-vol); COMP_CWORD=1; _stratuslab; printf '%s\\n' \"${{COMPREPLY[@]}}\"";
            var (exit, output, error) = await HostTools.RunAsync("bash", ["-c", probe], TimeSpan.FromSeconds(45));
            Assert.That(exit, Is.Zero, error);
            Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "describe-volumes" }));
        }
        finally { TempDir.Delete(dir); }
    }

    [Test]
    public async Task The_zsh_completion_script_is_a_compdef_function()
    {
        var script = (await Run("completion", "zsh")).Out;
        Assert.That(script, Does.StartWith("#compdef stratuslab").And.Contain("stratuslab __complete"));
    }
}
