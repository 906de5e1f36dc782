namespace StratusLab.Server.Tests.Support;

/// <summary>Sends the in-process server's warnings and errors to the test output, so a 500 in a test shows its cause.</summary>
public sealed class TestLoggerProvider : ILoggerProvider
{
    /// <summary>Set STRATUSLAB_TEST_DEBUG_LOG to a file to get every server's debug log there too (to diagnose a test that fails only under load).</summary>
    public static readonly string? DebugFile = Environment.GetEnvironmentVariable("STRATUSLAB_TEST_DEBUG_LOG") is { Length: > 0 } f ? f : null;
    static readonly object DebugGate = new();

    public ILogger CreateLogger(string categoryName) => new TestLogger(categoryName);
    public void Dispose() { }

    sealed class TestLogger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= (DebugFile is null ? LogLevel.Warning : LogLevel.Debug);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var line = $"[server {logLevel}] {category}: {formatter(state, exception)}{(exception is null ? "" : "\n" + exception)}";
            if (DebugFile is not null)
                lock (DebugGate) File.AppendAllText(DebugFile, $"{DateTime.UtcNow:HH:mm:ss.fff} {line}\n");
            if (logLevel >= LogLevel.Warning) TestContext.Progress.WriteLine(line);
        }
    }
}
