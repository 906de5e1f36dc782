namespace StratusLab.Server.Tests.Support;

/// <summary>Sends the in-process server's warnings and errors to the test output, so a 500 in a test shows its cause.</summary>
public sealed class TestLoggerProvider : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new TestLogger(categoryName);
    public void Dispose() { }

    sealed class TestLogger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            TestContext.Progress.WriteLine($"[server {logLevel}] {category}: {formatter(state, exception)}{(exception is null ? "" : "\n" + exception)}");
        }
    }
}
