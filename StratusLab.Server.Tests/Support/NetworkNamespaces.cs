using System.Diagnostics;
using StratusLab.Server.Platform.Host;

namespace StratusLab.Server.Tests.Support;

/// <summary>
/// A network namespace a host test creates (unique name, loopback up) and always deletes, killing every process still in
/// it first (servers, QEMU, dnsmasq, socat): nothing of a test touches the host's own namespace.
/// </summary>
public sealed class NetworkNamespace : IAsyncDisposable
{
    NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    public static async Task<NetworkNamespace> CreateAsync(string prefix)
    {
        var ns = new NetworkNamespace($"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)]);
        await HostRunAsync("ip", ["netns", "add", ns.Name]);
        try { await ns.RunAsync("ip", ["link", "set", "lo", "up"]); }
        catch { await ns.DisposeAsync(); throw; }
        return ns;
    }

    /// <summary>Runs a tool inside the namespace; fails the test when it exits non-zero.</summary>
    public async Task<string> RunAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var (exit, output, error) = await HostTools.RunAsync("ip", ["netns", "exec", Name, tool, .. args], timeout ?? TimeSpan.FromSeconds(30));
        Assert.That(exit, Is.Zero, $"{tool} {string.Join(' ', args)} in {Name}: {error}");
        return output;
    }

    /// <summary>Runs a tool inside the namespace and returns what happened, whatever the exit code.</summary>
    public Task<(int Exit, string Out, string Err)> TryAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null) =>
        HostTools.RunAsync("ip", ["netns", "exec", Name, tool, .. args], timeout ?? TimeSpan.FromSeconds(30));

    /// <summary>Starts a long-running process inside the namespace (it is killed with the namespace).</summary>
    public Process Start(string tool, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, Action<string>? onLine = null)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", Name, tool }.Concat(args)) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onLine?.Invoke(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) onLine?.Invoke(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Pids of the processes inside the namespace.</summary>
    public async Task<IReadOnlyList<int>> PidsAsync()
    {
        var (_, output, _) = await HostTools.RunAsync("ip", ["netns", "pids", Name], TimeSpan.FromSeconds(10));
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var pids = await PidsAsync();
            if (pids.Count == 0) break;
            foreach (var pid in pids)
            {
                try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
            }
            await Task.Delay(100);
        }
        await HostTools.RunAsync("ip", ["netns", "del", Name], TimeSpan.FromSeconds(30));
    }

    static async Task HostRunAsync(string tool, IEnumerable<string> args)
    {
        var (exit, _, error) = await HostTools.RunAsync(tool, args, TimeSpan.FromSeconds(30));
        Assert.That(exit, Is.Zero, $"{tool} {string.Join(' ', args)}: {error}");
    }

    /// <summary>Whether this machine lets tests make namespaces (root, iproute2); the reason when it does not.</summary>
    public static async Task<string?> WhyUnavailableAsync()
    {
        if (Environment.UserName != "root" && !string.Equals(Environment.GetEnvironmentVariable("USER"), "root", StringComparison.Ordinal))
            return "network namespaces need root";
        try
        {
            var (exit, _, error) = await HostTools.RunAsync("ip", ["netns", "list"], TimeSpan.FromSeconds(10));
            return exit == 0 ? null : "ip netns does not work here: " + error;
        }
        catch (System.ComponentModel.Win32Exception) { return "iproute2 (ip) is not installed"; }
    }
}

/// <summary>Runs every tool inside a network namespace (ip netns exec), so a driver under test changes only that namespace.</summary>
public sealed class NamespacedCommandRunner(ICommandRunner inner, string ns) : ICommandRunner
{
    public Task<ToolResult> RunAsync(ToolCommand command, CancellationToken ct = default) =>
        inner.RunAsync(command with { Tool = "ip", Arguments = ["netns", "exec", ns, command.Tool, .. command.Arguments] }, ct);
}

/// <summary>An ILogger&lt;T&gt; over a plain logger, for constructing drivers by hand in tests.</summary>
public sealed class LoggerAdapter<T>(ILogger inner) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);
    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        inner.Log(logLevel, eventId, state, exception, formatter);
}
