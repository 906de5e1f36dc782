using System.Diagnostics;
using System.Net.WebSockets;

namespace StratusLab.Server.Cli;

/// <summary>The serial console: its log (console-log, --follow) and the interactive console (connect-instance --console).</summary>
public static class ConsoleCommands
{
    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("console-log", "ID [--tail N] [--follow]", "print an instance's serial console log (--follow: keep printing new lines until it ends)", ConsoleLog) { Example = "stratuslab console-log 3 --tail 50\nstratuslab console-log 3 -f" },
    ];

    /// <summary>Ctrl-] ends an interactive console session, as in telnet.</summary>
    const byte Escape = 0x1d;

    static async Task<int> ConsoleLog(CliContext cx)
    {
        cx.Args.AllowOnly("--tail", "--follow");
        var id = Id(cx.Args.Positional(0, "the instance ID"));
        var tail = cx.Args.Option("--tail");
        // The server checks the number too; the query carries it as typed so both say the same.
        var query = tail is null ? "" : "tail=" + Uri.EscapeDataString(tail);
        if (!cx.Args.Has("--follow"))
        {
            using var response = await cx.Api.GetStreamAsync($"api/v1/instances/{id}/console?{query}", "text/plain");
            await cx.Out.WriteAsync(await response.Content.ReadAsStringAsync());
            await cx.Out.FlushAsync();
            return 0;
        }
        using var cancel = new CancellationTokenSource();
        System.Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        using var stream = await cx.Api.GetStreamAsync($"api/v1/instances/{id}/console?follow=true{(query.Length > 0 ? "&" + query : "")}", "text/event-stream", cancel.Token);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cancel.Token));
        var evt = "";
        try
        {
            while (await reader.ReadLineAsync(cancel.Token) is { } line)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) evt = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    if (evt == "end")
                    {
                        await System.Console.Error.WriteLineAsync($"[instance {id} is {line[6..]}; end of console]");
                        return 0;
                    }
                    await cx.Out.WriteLineAsync(line[6..]);
                    await cx.Out.FlushAsync();
                }
            }
        }
        catch (OperationCanceledException) { }
        return 0;
    }

    /// <summary>connect-instance ID --console: stdin to the guest's serial port, its output to stdout; Ctrl-] quits.</summary>
    public static async Task<int> InteractiveAsync(CliContext cx, long id)
    {
        using var ws = await cx.Api.ConnectWebSocketAsync($"api/v1/instances/{id}/console/ws");
        var tty = !System.Console.IsInputRedirected;
        var saved = tty ? Stty("-g")?.Trim() : null;
        if (tty)
        {
            Stty("raw", "-echo");
            await System.Console.Error.WriteAsync($"[connected to the serial console of instance {id}; Ctrl-] quits]\r\n");
        }
        try
        {
            using var done = new CancellationTokenSource();
            var output = System.Console.OpenStandardOutput();
            var fromGuest = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                try
                {
                    while (true)
                    {
                        var r = await ws.ReceiveAsync(buffer, done.Token);
                        if (r.MessageType == WebSocketMessageType.Close) return;
                        await output.WriteAsync(buffer.AsMemory(0, r.Count), done.Token);
                        await output.FlushAsync(done.Token);
                    }
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
            });
            var toGuest = Task.Run(async () =>
            {
                var input = System.Console.OpenStandardInput();
                var buffer = new byte[1024];
                try
                {
                    while (true)
                    {
                        var n = await input.ReadAsync(buffer, done.Token);
                        if (n == 0) return;
                        var quit = Array.IndexOf(buffer, Escape, 0, n);
                        if (quit >= 0 && tty)
                        {
                            if (quit > 0) await ws.SendAsync(buffer.AsMemory(0, quit), WebSocketMessageType.Binary, true, done.Token);
                            return;
                        }
                        await ws.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Binary, true, done.Token);
                    }
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { }
            });
            await Task.WhenAny(fromGuest, toGuest);
            // Piped input ended: give the guest a moment to answer what was sent before closing.
            if (toGuest.IsCompleted && !tty) await Task.WhenAny(fromGuest, Task.Delay(TimeSpan.FromSeconds(2)));
            // Close, then let the receive loop see the server's close frame; cancelling a pending receive would abort the socket.
            if (ws.State == WebSocketState.Open)
            {
                try
                {
                    await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
                    await fromGuest.WaitAsync(TimeSpan.FromSeconds(5));
                }
                catch (Exception e) when (e is WebSocketException or TimeoutException) { }
            }
            await done.CancelAsync();
        }
        finally
        {
            if (saved is { Length: > 0 }) Stty(saved);
            if (tty) await System.Console.Error.WriteLineAsync($"\n[console of instance {id} closed]");
        }
        return 0;
    }

    // The terminal's line discipline is stty's business; the console needs raw bytes (Ctrl-C goes to the guest).
    static string? Stty(params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo("stty") { UseShellExecute = false, RedirectStandardOutput = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi);
            if (p is null) return null;
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit(5000);
            return text;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    static long Id(string text) => long.TryParse(text, out var id) && id > 0 ? id : throw new UsageException($"'{text}' is not an instance ID (a positive number).");
}
