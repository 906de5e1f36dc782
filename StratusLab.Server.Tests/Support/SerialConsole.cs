using System.Net.WebSockets;
using System.Text;

namespace StratusLab.Server.Tests.Support;

/// <summary>Types into a running guest's serial shell through the console WebSocket (…/console/ws), as a user at the console would.</summary>
public static class SerialConsole
{
    /// <summary>
    /// Connects as <paramref name="token"/>, types <paramref name="command"/> (again every 3 s, for a shell that is still
    /// starting) until <paramref name="expected"/> shows in the output, and returns all that was received. Gives up after
    /// <paramref name="timeout"/> and returns what came (the caller asserts on it).
    /// </summary>
    public static async Task<string> RunAsync(TestServer server, string token, long instance, string command, string expected, TimeSpan timeout)
    {
        using var ws = new ClientWebSocket();
        ws.Options.SetRequestHeader("Authorization", "Bearer " + token);
        using var deadline = new CancellationTokenSource(timeout);
        await ws.ConnectAsync(Uri(server, instance), deadline.Token);
        var received = new StringBuilder();
        var found = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // One receive loop for the whole session: cancelling a pending WebSocket receive would abort the socket.
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var r = await ws.ReceiveAsync(buffer, deadline.Token);
                    if (r.MessageType == WebSocketMessageType.Close) return;
                    lock (received)
                    {
                        received.Append(Encoding.UTF8.GetString(buffer, 0, r.Count));
                        if (received.ToString().Contains(expected, StringComparison.Ordinal)) { found.TrySetResult(); return; }
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
            finally { found.TrySetResult(); }
        });
        try
        {
            // The shell may still be starting: the command is typed again every 3 s until its answer shows.
            while (!found.Task.IsCompleted && ws.State == WebSocketState.Open)
            {
                await ws.SendAsync(Encoding.ASCII.GetBytes(command + "\n"), WebSocketMessageType.Binary, true, deadline.Token);
                await Task.WhenAny(found.Task, Task.Delay(TimeSpan.FromSeconds(3), deadline.Token));
            }
            if (ws.State == WebSocketState.Open)
                await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", deadline.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
        await reading.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        lock (received) return received.ToString();
    }

    public static Uri Uri(TestServer server, long instance) =>
        new UriBuilder(new Uri(server.BaseAddress, $"/api/v1/instances/{instance}/console/ws")) { Scheme = "ws" }.Uri;
}
