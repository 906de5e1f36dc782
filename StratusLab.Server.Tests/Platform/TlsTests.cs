using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Security;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Platform;

/// <summary>https listeners: a real TLS handshake with curl and with the client, pinning, a changed certificate, the guest listener.</summary>
[NonParallelizable]
public class TlsTests
{
    string _home = "";

    [SetUp] public void Create() => _home = TempDir.Create("tls-client");
    [TearDown] public void Remove() => TempDir.Delete(_home);

    static Task<TestServer> StartHttpsAsync(int port, int guestPort, string? dataDir = null) => TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["Urls"] = $"https://127.0.0.1:{port}",
        ["Tls:GuestHttpPort"] = guestPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
    }, dataDir);

    static ApiClient Client(int port, string token, string knownServers, string? caFile = null, string? accept = null) =>
        new(new ClientSettings($"https://127.0.0.1:{port}", token, "test") { CaFile = caFile, AcceptFingerprint = accept }, knownServers);

    [Test, CancelAfter(180_000)]
    public async Task A_https_server_makes_a_self_signed_certificate_that_curl_trusts_with_cacert_and_stores_its_fingerprint()
    {
        var port = ServerProcessTests.FreePort();
        await using var server = await StartHttpsAsync(port, ServerProcessTests.FreePort());
        var cert = Path.Combine(server.DataDir, "tls", "server.crt");
        var stored = File.ReadAllText(Path.Combine(server.DataDir, "tls", "server.sha256")).Trim();
        Assert.That(File.GetUnixFileMode(Path.Combine(server.DataDir, "tls", "server.key")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.That(stored, Is.EqualTo(server.App.Services.GetRequiredService<ServerTls>().Fingerprint));

        var openssl = await HostTools.RunAsync("openssl", ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"], TimeSpan.FromSeconds(20));
        Assert.That(openssl.Out.Trim(), Does.EndWith("=" + stored), "the stored fingerprint is the certificate's SHA-256 as openssl computes it");

        var trusted = await HostTools.RunAsync("curl", ["-sS", "--max-time", "20", "--cacert", cert, "-H", "Authorization: Bearer " + server.AdminToken,
            $"https://127.0.0.1:{port}/api/v1/instances"], TimeSpan.FromSeconds(30));
        Assert.That(trusted.Exit, Is.EqualTo(0), trusted.Err);
        Assert.That(JsonNode.Parse(trusted.Out), Is.InstanceOf<JsonArray>(), trusted.Out);
        var byName = await HostTools.RunAsync("curl", ["-sS", "--max-time", "20", "--cacert", cert, $"https://localhost:{port}/health"], TimeSpan.FromSeconds(30));
        Assert.That(byName.Exit, Is.EqualTo(0), "the certificate names localhost too: " + byName.Err);

        var untrusted = await HostTools.RunAsync("curl", ["-sS", "--max-time", "20", $"https://127.0.0.1:{port}/health"], TimeSpan.FromSeconds(30));
        Assert.That(untrusted.Exit, Is.EqualTo(60), "without --cacert curl must refuse the self-signed certificate: " + untrusted.Err);
        var plain = await HostTools.RunAsync("curl", ["-sS", "--max-time", "20", $"http://127.0.0.1:{port}/health"], TimeSpan.FromSeconds(30));
        Assert.That(plain.Out, Does.Not.Contain("\"ok\""), "the https port does not answer plain HTTP");
    }

    [Test, CancelAfter(240_000)]
    public async Task The_client_pins_the_fingerprint_on_first_use_and_refuses_a_changed_certificate_with_both_fingerprints()
    {
        var port = ServerProcessTests.FreePort();
        var knownServers = Path.Combine(_home, "known_servers");
        string first;
        await using (var server = await StartHttpsAsync(port, ServerProcessTests.FreePort()))
        {
            first = server.App.Services.GetRequiredService<ServerTls>().Fingerprint;
            using (var unknown = Client(port, server.AdminToken, knownServers))
            {
                var refused = Assert.ThrowsAsync<CliException>(() => unknown.GetAsync("api/v1/instances"));
                Assert.That(refused!.Message, Does.Contain("not trusted").And.Contain(first).And.Contain("--accept-fingerprint"));
            }
            Assert.That(File.Exists(knownServers), Is.False, "nothing is pinned without the user's say");

            using (var wrong = Client(port, server.AdminToken, knownServers, accept: new string('A', 64)))
                Assert.That(Assert.ThrowsAsync<CliException>(() => wrong.GetAsync("api/v1/instances"))!.Message, Does.Contain("not the").And.Contain(first));

            using (var accepting = Client(port, server.AdminToken, knownServers, accept: first.Replace(":", "").ToLowerInvariant()))
                Assert.That(await accepting.GetAsync("api/v1/instances"), Is.InstanceOf<JsonArray>());
            Assert.That(File.ReadAllText(knownServers), Does.Contain($"127.0.0.1:{port} {first}"));

            using (var pinned = Client(port, server.AdminToken, knownServers))
                Assert.That(await pinned.GetAsync("api/v1/instances"), Is.InstanceOf<JsonArray>(), "the pin alone is enough the second time");
            var endpoint = $"https://127.0.0.1:{port}";
            var (refusedCode, _, refusedErr) = await CliAsync(["describe-instance", "--endpoint", endpoint, "--token", server.AdminToken]);
            Assert.That(refusedCode, Is.EqualTo(1));
            Assert.That(refusedErr, Does.Contain("--accept-fingerprint").And.Contain(first));
            var (acceptedCode, acceptedOut, acceptedErr) = await CliAsync(["describe-instance", "--endpoint", endpoint, "--token", server.AdminToken, "--accept-fingerprint", first]);
            Assert.That(acceptedCode, Is.Zero, acceptedErr);
            Assert.That(acceptedOut, Does.Contain("STATE"));
            Assert.That(File.ReadAllText(Path.Combine(_home, "xdg", "stratuslab", "known_servers")), Does.Contain($"127.0.0.1:{port} {first}"));
            var (caCode, _, caErr) = await CliAsync(["describe-instance", "--endpoint", $"https://localhost:{port}", "--token", server.AdminToken,
                "--ca-file", Path.Combine(server.DataDir, "tls", "server.crt")]);
            Assert.That(caCode, Is.Zero, caErr);
            // Transfers and the Marketplace's XML calls use their own HttpClient: the same trust (here the pin made above).
            var (xmlCode, _, xmlErr) = await CliAsync(["show-image", "NoSuchIdentifier0000000000A", "--format", "xml", "--endpoint", endpoint, "--token", server.AdminToken]);
            Assert.That(xmlCode, Is.EqualTo(1));
            Assert.That(xmlErr, Does.Not.Contain("certificate").And.Not.Contain("SSL"), "the TLS handshake went through on the pin");
            var (volumeCode, _, volumeErr) = await CliAsync(["download-volume", "00000000-0000-0000-0000-000000000000", "-o", Path.Combine(_home, "none.gz"), "--endpoint", endpoint, "--token", server.AdminToken]);
            Assert.That(volumeCode, Is.EqualTo(1));
            Assert.That(volumeErr, Does.Not.Contain("certificate").And.Not.Contain("SSL"), "the TLS handshake went through on the pin");
            using (var byCa = Client(port, server.AdminToken, Path.Combine(_home, "other"), caFile: Path.Combine(server.DataDir, "tls", "server.crt")))
                Assert.That(await byCa.GetAsync("api/v1/instances"), Is.InstanceOf<JsonArray>(), "the certificate as a CA file is trusted without a pin");
        }

        // Another server (another data dir: another self-signed certificate) on the same address.
        await using (var impostor = await StartHttpsAsync(port, ServerProcessTests.FreePort()))
        {
            // The command line as a user types it: the pin the CLI made with --accept-fingerprint refuses the new certificate.
            var (code, _, err) = await CliAsync(["describe-instance", "--endpoint", $"https://127.0.0.1:{port}", "--token", impostor.AdminToken]);
            Assert.That(code, Is.EqualTo(1), err);
            Assert.That(err, Does.Contain("HAS CHANGED").And.Contain(first));

            var second = impostor.App.Services.GetRequiredService<ServerTls>().Fingerprint;
            Assert.That(second, Is.Not.EqualTo(first));
            using var pinned = Client(port, impostor.AdminToken, knownServers);
            var refused = Assert.ThrowsAsync<CliException>(() => pinned.GetAsync("api/v1/instances"));
            Assert.That(refused!.Message, Does.Contain("HAS CHANGED").And.Contain(first).And.Contain(second).And.Contain(knownServers));
            using var accepting = Client(port, impostor.AdminToken, knownServers, accept: second);
            Assert.ThrowsAsync<CliException>(() => accepting.GetAsync("api/v1/instances"), "--accept-fingerprint does not silently replace an existing pin");
            Assert.That(await ServerTrust.FetchFingerprintAsync(new Uri($"https://127.0.0.1:{port}")), Is.EqualTo(second), "what a login prompt would show");
        }
    }

    /// <summary>Runs a client command with its config (known_servers, client.json) under this test's own directory.</summary>
    async Task<(int Code, string Out, string Err)> CliAsync(string[] args)
    {
        var previous = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", Path.Combine(_home, "xdg"));
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var code = await ClientCli.RunAsync(args, output, error);
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", previous);
        }
    }

    [Test, CancelAfter(180_000)]
    public async Task With_only_https_listeners_guests_reach_the_guest_api_on_a_loopback_plain_http_listener_that_serves_nothing_else()
    {
        var port = ServerProcessTests.FreePort();
        var guestPort = ServerProcessTests.FreePort();
        await using var server = await StartHttpsAsync(port, guestPort);
        Assert.That(server.App.Services.GetRequiredService<GuestApiAddress>().Url, Is.EqualTo($"http://10.0.2.2:{guestPort}"));

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{guestPort}") };
        var guest = await http.GetAsync("/guest/v1/context");
        Assert.That((int)guest.StatusCode, Is.EqualTo(401), "the guest API answers there (and wants its guest token)");
        http.DefaultRequestHeaders.Authorization = new("Bearer", server.AdminToken);
        var api = await http.GetAsync("/api/v1/instances");
        var problem = await api.Problem(404);
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain("only the guest API").And.Contain($"https://127.0.0.1:{port}"));
    }

    [TestCase("http://127.0.0.1:8440", new string[0])]
    [TestCase("http://[::1]:8440;https://0.0.0.0:8443", new string[0])]
    [TestCase("http://0.0.0.0:8440", new[] { "http://0.0.0.0:8440" })]
    [TestCase("http://*:8440;http://192.168.1.5:80", new[] { "http://*:8440", "http://192.168.1.5:80" })]
    public void Plain_http_off_the_loopback_is_reported_for_a_start_up_warning(string urls, string[] warned) =>
        Assert.That(GuestListener.PlainHttpOffLoopback(urls), Is.EqualTo(warned));

    [Test]
    public void A_self_signed_certificate_names_the_loopbacks_localhost_and_the_listeners_host()
    {
        using var cert = ServerTls.CreateSelfSigned(["lab.example.org", "192.0.2.7"], DateTimeOffset.UtcNow);
        var san = cert.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509SubjectAlternativeNameExtension>().Single();
        Assert.That(san.EnumerateDnsNames(), Does.Contain("localhost").And.Contain("lab.example.org"));
        Assert.That(san.EnumerateIPAddresses().Select(a => a.ToString()), Does.Contain("127.0.0.1").And.Contain("::1").And.Contain("192.0.2.7"));
        Assert.That(cert.HasPrivateKey, Is.True);
        Assert.That(cert.NotAfter, Is.GreaterThan(DateTime.UtcNow.AddYears(9)));
    }
}
