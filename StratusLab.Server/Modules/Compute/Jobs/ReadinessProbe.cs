using System.Net.Sockets;
using System.Text;
using StratusLab.Server.Modules.Compute.Contracts;
using StratusLab.Server.Modules.Compute.Drivers;

namespace StratusLab.Server.Modules.Compute.Jobs;

/// <summary>
/// Ready without an agent: a running guest that has not reported ready is probed every few seconds. Its SSH port
/// answering with an SSH banner marks it ready (source "ssh"), and so does the request's readyPort answering (source
/// "port"). Ports are reached through their PAT forward on the host (user-mode networks), else at the leased address
/// (bridge networks). The bundled appliance reports through the guest API itself, so its SSH port is not probed.
/// </summary>
internal sealed class ReadinessProbe(ComputeStore store, GuestInstances guests, IServiceProvider services, ComputeOptions options, ILogger<ReadinessProbe> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.ReadyProbeIntervalSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var rows = await store.ListRunningNotReadyAsync();
                await Task.WhenAll(rows.Where(HasRealGuest).Select(r => ProbeAsync(r, stoppingToken)));
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested) { logger.LogError(e, "Readiness probe pass failed"); }
        }
    }

    bool HasRealGuest(InstanceRow row)
    {
        try { return services.GetHypervisor(row.Driver).UsesRealMedia; }
        catch (InvalidOperationException) { return false; }
    }

    async Task ProbeAsync(InstanceRow row, CancellationToken ct)
    {
        if (row.Guest.ReadyPort is { } port && Target(row, port) is { } portTarget
            && await PortAnswersAsync(portTarget.Host, portTarget.Port, portTarget.ThroughPat, ct))
        {
            await MarkAsync(row, "port");
            return;
        }
        if (row.Image != Platform.Configuration.Appliance.Name && Target(row, 22) is { } ssh && await SshBannerAsync(ssh.Host, ssh.Port, ct))
            await MarkAsync(row, "ssh");
    }

    async Task MarkAsync(InstanceRow row, string source)
    {
        logger.LogInformation("Instance {Id} is ready: {Source} answered", row.Id, source);
        await guests.MarkReadyAsync(row.Id, source);
    }

    /// <summary>The guest port's PAT forward on the host, else the first NIC's leased address.</summary>
    static (string Host, int Port, bool ThroughPat)? Target(InstanceRow row, int guestPort)
    {
        if (row.PortForwards.FirstOrDefault(f => f.GuestPort == guestPort && f.Protocol == "tcp") is { } forward)
            return (forward.HostAddress is "0.0.0.0" or "" ? "127.0.0.1" : forward.HostAddress, forward.HostPort, true);
        return row.Nics.Count > 0 ? (row.Nics[0].Ip, guestPort, false) : null;
    }

    /// <summary>True when the port sends an SSH identification line ("SSH-2.0-...").</summary>
    public static async Task<bool> SshBannerAsync(string host, int port, CancellationToken ct)
    {
        var received = await ExchangeAsync(host, port, null, ct);
        return received is { } text && text.StartsWith("SSH-", StringComparison.Ordinal);
    }

    /// <summary>
    /// True when the port answers. At a leased address an accepted connection is an answer; a PAT forward accepts on the
    /// guest's behalf, so there the service must send something: first unprompted (SSH, SMTP...), else after a blank line (HTTP...).
    /// </summary>
    public static async Task<bool> PortAnswersAsync(string host, int port, bool throughPat, CancellationToken ct)
    {
        if (!throughPat) return await ExchangeAsync(host, port, null, ct, acceptIsEnough: true) is not null;
        return await ExchangeAsync(host, port, "\r\n\r\n", ct) is { Length: > 0 };
    }

    static async Task<string?> ExchangeAsync(string host, int port, string? nudge, CancellationToken ct, bool acceptIsEnough = false)
    {
        using var client = new TcpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(3));
        try
        {
            await client.ConnectAsync(host, port, timeout.Token);
            if (acceptIsEnough) return "";
            var stream = client.GetStream();
            var buffer = new byte[256];
            var read = await ReadSomeAsync(stream, buffer, TimeSpan.FromMilliseconds(1500), ct);
            if (read is null && nudge is not null)
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(nudge), timeout.Token);
                read = await ReadSomeAsync(stream, buffer, TimeSpan.FromMilliseconds(1500), ct);
            }
            return read is > 0 ? Encoding.ASCII.GetString(buffer, 0, read.Value) : null;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Bytes read, 0 when the peer closed, null when nothing came in time.</summary>
    static async Task<int?> ReadSomeAsync(NetworkStream stream, byte[] buffer, TimeSpan wait, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(wait);
        try { return await stream.ReadAsync(buffer, cts.Token); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return null; }
    }
}
