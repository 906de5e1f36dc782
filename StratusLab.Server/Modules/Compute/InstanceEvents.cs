using System.Threading.Channels;
using StratusLab.Server.Modules.Identity.Contracts;

namespace StratusLab.Server.Modules.Compute;

/// <summary>A lifecycle change, as sent on /api/v1/events.</summary>
internal sealed record InstanceEvent(long Id, string Name, string State, bool Ready, string? FailedStep, string? FailureReason, DateTimeOffset Time)
{
    internal Ownership Ownership { get; init; } = new(0, 0, default);
}

/// <summary>Fans lifecycle changes out to subscribers (server-sent events, wait long-polls).</summary>
internal sealed class InstanceEvents
{
    readonly object _lock = new();
    readonly List<Channel<InstanceEvent>> _subscribers = [];

    public Subscription Subscribe()
    {
        var channel = Channel.CreateBounded<InstanceEvent>(new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropOldest });
        lock (_lock) _subscribers.Add(channel);
        return new Subscription(this, channel);
    }

    public void Publish(InstanceEvent evt)
    {
        lock (_lock)
            foreach (var s in _subscribers) s.Writer.TryWrite(evt);
    }

    void Unsubscribe(Channel<InstanceEvent> channel)
    {
        lock (_lock) _subscribers.Remove(channel);
        channel.Writer.TryComplete();
    }

    public sealed class Subscription(InstanceEvents owner, Channel<InstanceEvent> channel) : IDisposable
    {
        public ChannelReader<InstanceEvent> Reader => channel.Reader;
        public void Dispose() => owner.Unsubscribe(channel);
    }
}
