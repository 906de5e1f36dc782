using System.Collections.Concurrent;
using System.Text.Json.Nodes;

namespace StratusLab.Server.Modules.Compute.Drivers;

/// <summary>
/// QMP access per VM, one caller at a time: each use takes the VM's gate, connects, runs its commands, and lets go,
/// all within one deadline. A long job (a hot-unplug waiting for the guest) takes the gate once per attempt, so a
/// monitor query slips in between attempts instead of timing out behind it.
/// </summary>
internal sealed class QmpSessions
{
    /// <summary>How long one use (waiting for the gate, connecting, the commands) may take before it is given up.</summary>
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);

    readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);

    /// <summary>
    /// Runs <paramref name="work"/> on a fresh QMP connection to the VM whose socket is <paramref name="socketPath"/>,
    /// while no one else talks to that VM. Throws <see cref="QmpTimeoutException"/> when the gate, the connection or
    /// the commands take longer than <paramref name="timeout"/> (default <see cref="CommandTimeout"/>); a cancelled
    /// <paramref name="ct"/> throws <see cref="OperationCanceledException"/> as usual.
    /// </summary>
    public async Task<T> RunAsync<T>(string socketPath, Func<QmpClient, CancellationToken, Task<T>> work, CancellationToken ct, TimeSpan? timeout = null)
    {
        var gate = _gates.GetOrAdd(socketPath, _ => new SemaphoreSlim(1, 1));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout ?? CommandTimeout);
        try
        {
            await gate.WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new QmpTimeoutException($"another QMP command to this VM did not finish within {(timeout ?? CommandTimeout).TotalSeconds:0} s");
        }
        try
        {
            await using var qmp = await QmpClient.ConnectAsync(socketPath, deadline.Token);
            return await work(qmp, deadline.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new QmpTimeoutException($"QEMU did not answer QMP within {(timeout ?? CommandTimeout).TotalSeconds:0} s");
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode is System.Net.Sockets.SocketError.WouldBlock or System.Net.Sockets.SocketError.TryAgain)
        {
            // QEMU listens with a backlog of one: once an earlier connection waits unaccepted, a stopped QEMU refuses the
            // next one at once with EAGAIN. That is the same frozen VM, not a gone one.
            throw new QmpTimeoutException("QEMU is not accepting QMP connections (an earlier one is still waiting to be accepted)");
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Runs one command (see <see cref="RunAsync{T}"/>).</summary>
    public Task<JsonNode?> ExecuteAsync(string socketPath, string command, JsonObject? arguments, CancellationToken ct) =>
        RunAsync(socketPath, (qmp, token) => qmp.ExecuteAsync(command, arguments, token), ct);
}

/// <summary>QEMU did not answer QMP in time: the VM may be frozen (SIGSTOP, a wedged host) or just slow; it is not gone.</summary>
internal sealed class QmpTimeoutException(string message) : HypervisorException(message);
