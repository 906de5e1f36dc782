using Microsoft.Extensions.Logging.Abstractions;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Tests.Platform;

public class CommandRunnerTests
{
    readonly CommandRunner _runner = new(NullLogger<CommandRunner>.Instance);

    [Test]
    public async Task Output_is_captured_and_arguments_are_passed_without_a_shell()
    {
        var result = await _runner.RunAsync(new ToolCommand("/bin/echo", ["a b", "$HOME", ";", "c"]));
        Assert.That(result.StandardOutput, Is.EqualTo("a b $HOME ; c\n"));
    }

    [Test]
    public async Task The_locale_is_C_UTF8()
    {
        var result = await _runner.RunAsync(new ToolCommand("/bin/sh", ["-c", "echo $LC_ALL"]));
        Assert.That(result.StandardOutput.Trim(), Is.EqualTo("C.UTF-8"));
    }

    [Test]
    public void A_failing_tool_raises_with_its_exit_code_and_stderr()
    {
        var e = Assert.ThrowsAsync<ToolFailedException>(() => _runner.RunAsync(new ToolCommand("/bin/sh", ["-c", "echo broken disk >&2; exit 3"])));
        Assert.That(e!.ExitCode, Is.EqualTo(3));
        Assert.That(e.Message, Does.Contain("broken disk").And.Contain("exit code 3"));
    }

    [Test]
    public async Task Accepted_exit_codes_are_not_failures()
    {
        var result = await _runner.RunAsync(new ToolCommand("/bin/sh", ["-c", "exit 1"]) { AcceptedExitCodes = [1] });
        Assert.That(result.ExitCode, Is.EqualTo(1));
    }

    [Test]
    public void A_missing_tool_says_how_to_install_it()
    {
        var e = Assert.ThrowsAsync<ToolMissingException>(() => _runner.RunAsync(new ToolCommand("no-such-tool-xyz", [])));
        Assert.That(e!.Message, Does.Contain("no-such-tool-xyz").And.Contain("install"));
    }

    [Test]
    public void A_tool_past_its_timeout_is_stopped()
    {
        var started = DateTime.UtcNow;
        Assert.ThrowsAsync<ToolTimeoutException>(() => _runner.RunAsync(new ToolCommand("/bin/sleep", ["30"]) { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public async Task Standard_input_is_fed_to_the_tool()
    {
        var result = await _runner.RunAsync(new ToolCommand("/bin/cat", []) { StandardInput = "hello\n" });
        Assert.That(result.StandardOutput, Is.EqualTo("hello\n"));
    }

    [TestCase(new[] { "info", "--output=json", "/x y/disk.qcow2" }, "qemu-img info --output=json '/x y/disk.qcow2'")]
    [TestCase(new[] { "it's" }, "qemu-img 'it'\\''s'")]
    public void Commands_print_as_copy_pasteable_lines(string[] args, string expected) =>
        Assert.That(new ToolCommand("qemu-img", args).ToString(), Is.EqualTo(expected));
}
