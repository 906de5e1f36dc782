using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using CliWrap;
using CliWrap.Buffered;
using StratusLab.Server.Platform.Telemetry;

namespace StratusLab.Server.Platform.Host;

/// <summary>An immutable description of one external tool invocation (argument array, never a shell string).</summary>
public sealed record ToolCommand(string Tool, IReadOnlyList<string> Arguments)
{
    public string? WorkingDirectory { get; init; }
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);
    public string? StandardInput { get; init; }
    /// <summary>Exit codes that are not failures (0 always is).</summary>
    public IReadOnlyList<int> AcceptedExitCodes { get; init; } = [];

    public override string ToString() => Tool + " " + string.Join(' ', Arguments.Select(Quote));

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@+%".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}

/// <summary>What a finished tool printed and returned.</summary>
public sealed record ToolResult(int ExitCode, string StandardOutput, string StandardError, TimeSpan Duration);

/// <summary>A tool exited with a failure code; the message carries its stderr.</summary>
public sealed class ToolFailedException(ToolCommand command, int exitCode, string standardError)
    : Exception($"{command.Tool} failed (exit code {exitCode}): {Summarize(standardError)}")
{
    public ToolCommand Command { get; } = command;
    public int ExitCode { get; } = exitCode;
    public string StandardError { get; } = standardError;

    static string Summarize(string stderr)
    {
        var text = stderr.Trim();
        return text.Length == 0 ? "(no error output)" : text.Length > 2000 ? text[..2000] + "..." : text;
    }
}

/// <summary>A tool is not installed on this host.</summary>
public sealed class ToolMissingException(string tool)
    : Exception($"{tool} is not installed on this host; run scripts/install-deps.sh (or install the Debian package that provides it).")
{
    public string Tool { get; } = tool;
}

/// <summary>A tool ran longer than its timeout and was killed.</summary>
public sealed class ToolTimeoutException(ToolCommand command)
    : Exception($"{command.Tool} did not finish within {command.Timeout.TotalSeconds:0.#} s and was stopped.")
{
    public ToolCommand Command { get; } = command;
}

/// <summary>The only way the server runs external programs.</summary>
public interface ICommandRunner
{
    Task<ToolResult> RunAsync(ToolCommand command, CancellationToken ct = default);
}

/// <summary>Runs tools through CliWrap: C locale, exit code checked, stderr in the error, one span and one debug line per call.</summary>
public sealed class CommandRunner(ILogger<CommandRunner> logger) : ICommandRunner
{
    public async Task<ToolResult> RunAsync(ToolCommand command, CancellationToken ct = default)
    {
        using var activity = Telemetry.Telemetry.Source.StartActivity("exec " + Path.GetFileName(command.Tool));
        activity?.SetTag("process.executable.name", command.Tool);
        activity?.SetTag("process.command_args", string.Join(' ', command.Arguments));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(command.Timeout);

        var environment = new Dictionary<string, string?>(command.Environment) { ["LC_ALL"] = "C.UTF-8" };
        var cli = CliWrap.Cli.Wrap(command.Tool)
            .WithArguments(command.Arguments)
            .WithEnvironmentVariables(environment)
            .WithValidation(CommandResultValidation.None);
        if (command.WorkingDirectory is not null) cli = cli.WithWorkingDirectory(command.WorkingDirectory);
        if (command.StandardInput is not null) cli = cli.WithStandardInputPipe(PipeSource.FromString(command.StandardInput));

        var stopwatch = Stopwatch.StartNew();
        BufferedCommandResult result;
        try
        {
            result = await cli.ExecuteBufferedAsync(Encoding.UTF8, Encoding.UTF8, timeout.Token);
        }
        catch (Win32Exception)
        {
            activity?.SetStatus(ActivityStatusCode.Error, "not installed");
            throw new ToolMissingException(command.Tool);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            activity?.SetStatus(ActivityStatusCode.Error, "timeout");
            throw new ToolTimeoutException(command);
        }
        var elapsed = stopwatch.Elapsed;
        Telemetry.Telemetry.ToolCalls.Add(1, new KeyValuePair<string, object?>("tool", Path.GetFileName(command.Tool)));
        Telemetry.Telemetry.ToolDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("tool", Path.GetFileName(command.Tool)));
        logger.LogDebug("{Command} exited {ExitCode} in {ElapsedMs} ms", command.ToString(), result.ExitCode, (long)elapsed.TotalMilliseconds);
        activity?.SetTag("process.exit.code", result.ExitCode);

        if (result.ExitCode != 0 && !command.AcceptedExitCodes.Contains(result.ExitCode))
        {
            activity?.SetStatus(ActivityStatusCode.Error, result.StandardError);
            throw new ToolFailedException(command, result.ExitCode, result.StandardError);
        }
        return new ToolResult(result.ExitCode, result.StandardOutput, result.StandardError, elapsed);
    }
}
