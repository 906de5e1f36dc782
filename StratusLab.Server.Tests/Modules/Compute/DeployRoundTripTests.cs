using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Compute;

/// <summary>A deployment's store round trips, as the server measures them (stratuslab.compute.deploy.store_round_trips).</summary>
[NonParallelizable]
public class DeployRoundTripTests
{
    // Measured on the code before the architecture change (0a5e292), same server set-up, simulated driver:
    // 19 connections + 28 commands = 47 round trips from PENDING to RUNNING.
    const int RoundTripsBefore = 47;

    [Test, CancelAfter(60_000)]
    public async Task A_deploy_makes_at_most_half_the_store_round_trips_it_used_to()
    {
        var recorded = new ConcurrentQueue<long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "stratuslab.compute.deploy.store_round_trips") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => recorded.Enqueue(value));
        listener.Start();

        await using var server = await TestServer.StartAsync();
        await TestImages.RegisterDefaultAsync(server);
        using var http = server.Client();
        var created = await (await http.PostAsJsonAsync("/api/v1/instances", new { name = "trips" })).Json(201);
        var id = created["id"]!.GetValue<long>();
        var running = await (await http.GetAsync($"/api/v1/instances/{id}/wait?state=RUNNING&timeout=30")).Json(200);
        Assert.That(running["state"]!.GetValue<string>(), Is.EqualTo("RUNNING"));

        Assert.That(recorded, Is.Not.Empty, "the deploy records its round trips");
        var trips = recorded.Max();
        TestContext.Out.WriteLine($"deploy store round trips: {trips} (before: {RoundTripsBefore})");
        Assert.That(trips, Is.LessThanOrEqualTo(RoundTripsBefore / 2));
    }
}
