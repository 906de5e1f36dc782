using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Identity;

/// <summary>Five wrong passwords in a minute slow that user down (every password door: HTTP Basic here), not the server or other users.</summary>
public class PasswordThrottleTests
{
    [Test, CancelAfter(120_000)]
    public async Task Five_wrong_passwords_in_a_minute_slow_that_user_and_no_other()
    {
        await using var server = await TestServer.StartAsync();
        await server.CreateUserAsync("carol");
        await server.CreateUserAsync("dave");
        async Task<(int Status, TimeSpan Took)> Basic(string user, string password)
        {
            using var http = server.Client(null);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
            var watch = Stopwatch.StartNew();
            var response = await http.GetAsync("/api/v1/instances");
            return ((int)response.StatusCode, watch.Elapsed);
        }

        for (var i = 0; i < 5; i++)
        {
            var (status, took) = await Basic("carol", "wrong");
            Assert.That(status, Is.EqualTo(401));
            Assert.That(took, Is.LessThan(TimeSpan.FromSeconds(1.5)), $"attempt {i + 1} is not slowed yet");
        }
        var slowed = await Basic("carol", "password-carol");
        Assert.That(slowed.Status, Is.EqualTo(200), "the right password still works, later");
        Assert.That(slowed.Took, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(1.9)), "the sixth attempt waits");

        var other = await Basic("dave", "password-dave");
        Assert.That(other.Status, Is.EqualTo(200));
        Assert.That(other.Took, Is.LessThan(TimeSpan.FromSeconds(1.5)), "another user is not slowed");

        // The right password cleared carol's record: the next try is fast again.
        Assert.That((await Basic("carol", "password-carol")).Took, Is.LessThan(TimeSpan.FromSeconds(1.5)));
    }

    [Test, CancelAfter(120_000)]
    public async Task A_slowed_user_does_not_hold_up_the_server()
    {
        await using var server = await TestServer.StartAsync();
        await server.CreateUserAsync("erin");
        using var basic = server.Client(null);
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("erin:wrong")));
        for (var i = 0; i < 5; i++) await basic.GetAsync("/api/v1/instances");
        // Many slowed attempts wait at once; meanwhile a token request is answered at once.
        var waiting = Enumerable.Range(0, 20).Select(_ => basic.GetAsync("/api/v1/instances")).ToList();
        using var admin = server.Client();
        var watch = Stopwatch.StartNew();
        var health = await admin.GetAsync("/api/v1/instances");
        Assert.That((int)health.StatusCode, Is.EqualTo(200));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
        await Task.WhenAll(waiting);
    }
}
