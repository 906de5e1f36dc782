using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Tests.Support;

/// <summary>A command runner for unit tests: records every command and answers from a script of canned results.</summary>
public sealed class RecordingCommandRunner : ICommandRunner
{
    readonly List<(Func<ToolCommand, bool> Match, Func<ToolCommand, ToolResult> Answer)> _answers = [];
    public List<ToolCommand> Commands { get; } = [];

    /// <summary>Commands whose tool and first arguments match get this output.</summary>
    public RecordingCommandRunner On(string tool, string[] argumentPrefix, string stdout = "", int exitCode = 0, string stderr = "")
    {
        _answers.Add((c => Path.GetFileName(c.Tool) == tool && c.Arguments.Take(argumentPrefix.Length).SequenceEqual(argumentPrefix),
            _ => new ToolResult(exitCode, stdout, stderr, TimeSpan.Zero)));
        return this;
    }

    public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken ct = default)
    {
        Commands.Add(command);
        var answer = _answers.LastOrDefault(a => a.Match(command)).Answer?.Invoke(command) ?? new ToolResult(0, "", "", TimeSpan.Zero);
        if (answer.ExitCode != 0 && !command.AcceptedExitCodes.Contains(answer.ExitCode))
            throw new ToolFailedException(command, answer.ExitCode, answer.StandardError);
        return Task.FromResult(answer);
    }

    /// <summary>The recorded commands as shell-like lines, for readable assertions.</summary>
    public IReadOnlyList<string> Lines => Commands.Select(c => c.ToString()).ToList();
}
