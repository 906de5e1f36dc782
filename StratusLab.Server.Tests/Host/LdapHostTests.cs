using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Host;

/// <summary>
/// Host tier: a real Debian slapd started here on a loopback port with its own mdb database in a temp dir, and a
/// server with Identity:Ldap pointed at it (search mode: UserFilter under BaseDn, then bind as the user; groups from
/// groupOfNames). Checks sign-in, group mapping, wrong passwords, unknown users, filter injection, the directory
/// going down (local users unaffected) and the short-lived cache of successful binds.
/// </summary>
[NonParallelizable]
public class LdapHostTests
{
    const string Suffix = "dc=test,dc=example";
    Slapd _slapd = null!;
    TestServer _server = null!;
    readonly ServerLog _log = new();

    [OneTimeSetUp]
    public async Task Start()
    {
        if (!File.Exists("/usr/sbin/slapd") || !File.Exists("/usr/bin/ldapadd"))
            Assert.Ignore("slapd/ldap-utils are not installed: run scripts/install-deps.sh --test");
        _slapd = await Slapd.StartAsync($$"""
            dn: {{Suffix}}
            objectClass: dcObject
            objectClass: organization
            o: test
            dc: test

            dn: ou=people,{{Suffix}}
            objectClass: organizationalUnit
            ou: people

            dn: ou=groups,{{Suffix}}
            objectClass: organizationalUnit
            ou: groups

            dn: uid=alice,ou=people,{{Suffix}}
            objectClass: inetOrgPerson
            uid: alice
            cn: Alice
            sn: A
            userPassword: alice-pw

            dn: uid=bob,ou=people,{{Suffix}}
            objectClass: inetOrgPerson
            uid: bob
            cn: Bob
            sn: B
            userPassword: bob-pw

            dn: uid=carol,ou=people,{{Suffix}}
            objectClass: inetOrgPerson
            uid: carol
            cn: Carol
            sn: C
            userPassword: carol-pw

            dn: uid=dave,ou=people,{{Suffix}}
            objectClass: inetOrgPerson
            uid: dave
            cn: Dave
            sn: D
            userPassword: dave-pw

            dn: uid=grace,ou=people,{{Suffix}}
            objectClass: inetOrgPerson
            uid: grace
            cn: Grace
            sn: G
            userPassword: grace-pw

            dn: uid=erin,ou=people,{{Suffix}}
            objectClass: inetOrgPerson
            uid: erin
            cn: Erin
            sn: E
            userPassword: erin-pw

            dn: cn=builders,ou=groups,{{Suffix}}
            objectClass: groupOfNames
            cn: builders
            member: uid=alice,ou=people,{{Suffix}}
            member: uid=erin,ou=people,{{Suffix}}

            dn: cn=not-here-locally,ou=groups,{{Suffix}}
            objectClass: groupOfNames
            cn: not-here-locally
            member: uid=alice,ou=people,{{Suffix}}

            dn: cn=testers,ou=groups,{{Suffix}}
            objectClass: groupOfNames
            cn: testers
            member: uid=bob,ou=people,{{Suffix}}
            """);
        _server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Identity:Ldap:Enabled"] = "true",
            ["Identity:Ldap:Url"] = _slapd.Url,
            ["Identity:Ldap:BaseDn"] = "ou=people," + Suffix,
            ["Identity:Ldap:UserFilter"] = "(&(objectClass=inetOrgPerson)(uid={0}))",
            ["Identity:Ldap:GroupBaseDn"] = "ou=groups," + Suffix,
            ["Identity:Ldap:CacheSeconds"] = "300",
            ["Identity:Ldap:TimeoutSeconds"] = "5",
        }, configure: b => b.Logging.AddProvider(_log));
        using var admin = _server.Client();
        await (await admin.PostAsJsonAsync("/api/v1/groups", new { name = "builders" })).Json(201);
        await _server.CreateUserAsync("localadmin", "admin");
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_server is not null) await _server.DisposeAsync();
        if (_slapd is not null) await _slapd.DisposeAsync();
    }

    async Task<(int Status, string Body)> TokenAsync(string user, string password)
    {
        using var http = _server.Client(token: null);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        var response = await http.PostAsJsonAsync("/api/v1/tokens", new { });
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    async Task<JsonNode> UserAsync(string name)
    {
        using var admin = _server.Client();
        return await (await admin.GetAsync($"/api/v1/users/{name}")).Json(200);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_directory_user_with_the_right_password_gets_a_token_and_the_directory_groups_that_exist_here()
    {
        var (status, body) = await TokenAsync("alice", "alice-pw");
        Assert.That(status, Is.EqualTo(201), body);
        var token = JsonNode.Parse(body)!["token"]!.GetValue<string>();
        using var alice = _server.Client(token);
        var me = await (await alice.GetAsync("/api/v1/users/alice")).Json(200);
        Assert.That(me["role"]!.GetValue<string>(), Is.EqualTo("user"));
        var groups = me["groups"]!.AsArray().Select(g => g!.GetValue<string>()).ToList();
        Assert.That(groups, Does.Contain("builders"), "the directory group builders maps to the local group of that name");
        Assert.That(groups, Has.None.EqualTo("not-here-locally"), "directory groups without a local group are not created");
        Assert.That(_log.Contains("alice", "not-here-locally"), Is.False);
        var seen = await UserAsync("alice");
        Assert.That(seen["source"]!.GetValue<string>(), Is.EqualTo("ldap"), "an admin sees that alice comes from the directory");
        Assert.That(seen["directorySyncedAt"], Is.Not.Null);
        var local = await UserAsync("localadmin");
        Assert.That(local["source"]!.GetValue<string>(), Is.EqualTo("local"));
        Assert.That(local["directorySyncedAt"], Is.Null);
        var output = new StringWriter();
        Assert.That(await ClientCli.RunAsync(["describe-users", "alice", "localadmin", "--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken],
            output, new StringWriter()), Is.EqualTo(0));
        var lines = output.ToString().Split('\n');
        Assert.That(lines[1], Does.StartWith("alice").And.Contain(" ldap ").And.Contain("builders"), output.ToString());
        Assert.That(lines[2], Does.StartWith("localadmin").And.Contain(" local "), output.ToString());
    }

    [Test, CancelAfter(120_000)]
    public async Task A_cached_sign_in_reads_the_groups_again_after_GroupRefreshSeconds_and_keeps_them_while_the_directory_is_down()
    {
        const int refresh = 4;
        var log = new ServerLog();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["Identity:Ldap:Enabled"] = "true",
            ["Identity:Ldap:Url"] = _slapd.Url,
            ["Identity:Ldap:BaseDn"] = "ou=people," + Suffix,
            ["Identity:Ldap:GroupBaseDn"] = "ou=groups," + Suffix,
            ["Identity:Ldap:CacheSeconds"] = "600",
            ["Identity:Ldap:GroupRefreshSeconds"] = refresh.ToString(),
        }, configure: b => b.Logging.AddProvider(log));
        using (var admin = server.Client()) await (await admin.PostAsJsonAsync("/api/v1/groups", new { name = "builders" })).Json(201);
        async Task<int> SignInAsync()
        {
            using var http = server.Client(token: null);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("erin:erin-pw")));
            return (int)(await http.PostAsJsonAsync("/api/v1/tokens", new { })).StatusCode;
        }
        async Task<JsonNode> ErinAsync()
        {
            using var admin = server.Client();
            return await (await admin.GetAsync("/api/v1/users/erin")).Json(200);
        }
        static List<string> Groups(JsonNode user) => user["groups"]!.AsArray().Select(g => g!.GetValue<string>()).ToList();

        Assert.That(await SignInAsync(), Is.EqualTo(201), log.Dump());
        var first = await ErinAsync();
        Assert.That(Groups(first), Does.Contain("builders"));
        var started = Stopwatch.StartNew();
        await _slapd.ModifyAsync($"""
            dn: cn=builders,ou=groups,{Suffix}
            changetype: modify
            delete: member
            member: uid=erin,ou=people,{Suffix}
            """);
        try
        {
            Assert.That(await SignInAsync(), Is.EqualTo(201));
            if (started.Elapsed < TimeSpan.FromSeconds(refresh - 1))
            {
                var cached = await ErinAsync();
                Assert.That(Groups(cached), Does.Contain("builders"), "within GroupRefreshSeconds the cache answers: the directory is not asked");
                Assert.That(cached["directorySyncedAt"]!.GetValue<DateTimeOffset>(), Is.EqualTo(first["directorySyncedAt"]!.GetValue<DateTimeOffset>()));
            }
            await Task.Delay(TimeSpan.FromSeconds(refresh) + TimeSpan.FromMilliseconds(500));
            Assert.That(await SignInAsync(), Is.EqualTo(201));
            var refreshed = await ErinAsync();
            Assert.That(Groups(refreshed), Has.None.EqualTo("builders"), "after GroupRefreshSeconds the groups are read again, though the bind was cached");
            Assert.That(refreshed["directorySyncedAt"]!.GetValue<DateTimeOffset>(), Is.GreaterThan(first["directorySyncedAt"]!.GetValue<DateTimeOffset>()));

            await Task.Delay(TimeSpan.FromSeconds(refresh) + TimeSpan.FromMilliseconds(500));
            await _slapd.StopAsync();
            try
            {
                Assert.That(await SignInAsync(), Is.EqualTo(201), "refresh due but the directory down: the cached bind still answers");
                Assert.That(log.Contains("erin", "answered from the bind cache: the directory is down"), Is.True, log.Dump());
                Assert.That((await ErinAsync())["directorySyncedAt"]!.GetValue<DateTimeOffset>(),
                    Is.EqualTo(refreshed["directorySyncedAt"]!.GetValue<DateTimeOffset>()), "groups kept as last read");
            }
            finally
            {
                await _slapd.RestartAsync();
            }
        }
        finally
        {
            await _slapd.ModifyAsync($"""
                dn: cn=builders,ou=groups,{Suffix}
                changetype: modify
                add: member
                member: uid=erin,ou=people,{Suffix}
                """);
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task A_wrong_password_and_an_unknown_user_are_refused()
    {
        Assert.That((await TokenAsync("bob", "not-bobs")).Status, Is.EqualTo(401));
        Assert.That(_log.Contains("bob", "wrong password"), Is.True, _log.Dump());
        Assert.That((await TokenAsync("mallory", "anything")).Status, Is.EqualTo(401));
        Assert.That(_log.Contains("mallory", "no such user in the directory"), Is.True, _log.Dump());
        Assert.That((await TokenAsync("bob", "")).Status, Is.EqualTo(401), "an empty password is an anonymous bind, never a sign-in");
        using var admin = _server.Client();
        Assert.That((int)(await admin.GetAsync("/api/v1/users/mallory")).StatusCode, Is.EqualTo(404), "a refused sign-in creates no user");
        Assert.That((int)(await admin.GetAsync("/api/v1/users/bob")).StatusCode, Is.EqualTo(404));
        Assert.That((await TokenAsync("bob", "bob-pw")).Status, Is.EqualTo(201), "the right password still works afterwards");
        Assert.That((await UserAsync("bob"))["groups"]!.AsArray(), Is.Empty, "testers has no local group");
    }

    [Test, CancelAfter(60_000)]
    public async Task Filter_metacharacters_in_the_user_name_cannot_match_someone_else()
    {
        // Unescaped, (uid=al*) would match alice alone and her password would then bind: the log would show the
        // later "not a valid local user name" refusal instead of "no such user".
        foreach (var name in new[] { "al*", "*)(uid=alice", "alice)(|(uid=*", "*" })
        {
            Assert.That((await TokenAsync(name, "alice-pw")).Status, Is.EqualTo(401), name);
            Assert.That(_log.Contains(name, "no such user in the directory"), Is.True, name + "\n" + _log.Dump());
        }
        Assert.That((await TokenAsync("alice\u0001", "alice-pw")).Status, Is.EqualTo(401), "control characters are refused");
        using var admin = _server.Client();
        var users = (await (await admin.GetAsync("/api/v1/users")).Json(200)).AsArray().Select(u => u!["name"]!.GetValue<string>());
        Assert.That(users, Has.None.Contains("*").And.None.Contains("("));
    }

    [Test, CancelAfter(90_000)]
    public async Task With_the_directory_down_directory_users_are_refused_with_a_reason_cached_binds_still_work_and_local_users_are_unaffected()
    {
        Assert.That((await TokenAsync("carol", "carol-pw")).Status, Is.EqualTo(201));
        await _slapd.StopAsync();
        try
        {
            Assert.That((await TokenAsync("carol", "carol-pw")).Status, Is.EqualTo(201), "a bind within CacheSeconds is answered from the cache");
            Assert.That((await TokenAsync("carol", "wrong")).Status, Is.EqualTo(401), "the cache never accepts another password");
            Assert.That((await TokenAsync("dave", "dave-pw")).Status, Is.EqualTo(401));
            Assert.That(_log.Contains("dave", "unreachable"), Is.True, _log.Dump());
            Assert.That((await TokenAsync("localadmin", "password-localadmin")).Status, Is.EqualTo(201), "local users do not need the directory");
        }
        finally
        {
            await _slapd.RestartAsync();
        }
        Assert.That((await TokenAsync("dave", "dave-pw")).Status, Is.EqualTo(201), "back up: directory users sign in again");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_local_user_is_checked_locally_even_when_the_directory_has_the_same_name()
    {
        using var admin = _server.Client();
        await (await admin.PostAsJsonAsync("/api/v1/users", new { name = "grace", password = "local-grace-pw" })).Json(201);
        Assert.That((await TokenAsync("grace", "grace-pw")).Status, Is.EqualTo(401), "the directory's password does not open a local account");
        Assert.That((await TokenAsync("grace", "local-grace-pw")).Status, Is.EqualTo(201));
    }

    /// <summary>Captures the server's log lines (Information and up) so tests can check the reasons it gives.</summary>
    internal sealed class ServerLog : ILoggerProvider
    {
        readonly ConcurrentQueue<string> _lines = new();
        public ILogger CreateLogger(string categoryName) => new Logger(this);
        public void Dispose() { }
        public bool Contains(string a, string b) => _lines.Any(l => l.Contains(a, StringComparison.Ordinal) && l.Contains(b, StringComparison.Ordinal));
        public string Dump() => string.Join("\n", _lines.TakeLast(30));

        sealed class Logger(ServerLog owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) owner._lines.Enqueue(formatter(state, exception));
            }
        }
    }
}

/// <summary>A throwaway slapd: own config and mdb database in a temp dir, listening on 127.0.0.1:&lt;free port&gt;, in the foreground.</summary>
sealed class Slapd : IAsyncDisposable
{
    public const string RootDn = "cn=admin,dc=test,dc=example", RootPassword = "root-secret";
    readonly string _dir;
    readonly int _port;
    readonly int? _ldapsPort;
    Process? _process;

    Slapd(string dir, int port, int? ldapsPort) { _dir = dir; _port = port; _ldapsPort = ldapsPort; }

    public string Url => $"ldap://127.0.0.1:{_port}";

    /// <summary>The ldaps:// listener (TLS from the first byte), when started with one.</summary>
    public string LdapsUrl => _ldapsPort is { } p ? $"ldaps://127.0.0.1:{p}" : throw new InvalidOperationException("this slapd has no ldaps listener");

    public string Directory => _dir;

    public static async Task<Slapd> StartAsync(string ldif, Func<string, Task<string>>? extraConfig = null, bool ldaps = false)
    {
        var dir = TempDir.Create("slapd");
        var extra = extraConfig is null ? "" : await extraConfig(dir);
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "db"));
        File.WriteAllText(Path.Combine(dir, "slapd.conf"), $"""
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include /etc/ldap/schema/nis.schema
            modulepath /usr/lib/ldap
            moduleload back_mdb
            pidfile {dir}/slapd.pid
            {extra}
            database mdb
            maxsize 16777216
            directory {dir}/db
            suffix "dc=test,dc=example"
            rootdn "{RootDn}"
            rootpw {RootPassword}
            """);
        static int FreePort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }
        var slapd = new Slapd(dir, FreePort(), ldaps ? FreePort() : null);
        try
        {
            await slapd.RestartAsync();
            File.WriteAllText(Path.Combine(dir, "data.ldif"), ldif.Replace("\r\n", "\n") + "\n");
            var (exit, output, error) = await HostTools.RunAsync("ldapadd",
                ["-x", "-H", slapd.Url, "-D", RootDn, "-w", RootPassword, "-f", Path.Combine(dir, "data.ldif")], TimeSpan.FromSeconds(30));
            Assert.That(exit, Is.EqualTo(0), output + error);
            return slapd;
        }
        catch
        {
            await slapd.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts slapd (again) on the same port and database; returns once it accepts connections.</summary>
    public async Task RestartAsync()
    {
        var psi = new ProcessStartInfo("/usr/sbin/slapd") { RedirectStandardOutput = true, RedirectStandardError = true };
        var urls = _ldapsPort is null ? Url : $"{Url} {LdapsUrl}";
        foreach (var a in new[] { "-f", Path.Combine(_dir, "slapd.conf"), "-h", urls, "-d", "0" }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            Assert.That(_process.HasExited, Is.False, "slapd exited at start");
            try
            {
                foreach (var port in new[] { _port, _ldapsPort ?? _port })
                {
                    using var probe = new TcpClient();
                    await probe.ConnectAsync(IPAddress.Loopback, port);
                }
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline) { await Task.Delay(100); }
        }
    }

    /// <summary>Applies an LDIF change (changetype: ...) as the root DN.</summary>
    public async Task ModifyAsync(string ldif)
    {
        var file = Path.Combine(_dir, $"change-{Guid.NewGuid():N}.ldif");
        File.WriteAllText(file, ldif.Replace("\r\n", "\n") + "\n");
        var (exit, output, error) = await HostTools.RunAsync("ldapmodify", ["-x", "-H", Url, "-D", RootDn, "-w", RootPassword, "-f", file], TimeSpan.FromSeconds(30));
        Assert.That(exit, Is.EqualTo(0), output + error);
    }

    public async Task StopAsync()
    {
        if (_process is null) return;
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        TempDir.Delete(_dir);
    }
}

/// <summary>StartTLS and ldaps://: slapd with a certificate from a CA made here; the server trusts that CA only through TrustedCertificatesDirectory.</summary>
[NonParallelizable]
public class LdapStartTlsHostTests
{
    Slapd _slapd = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        if (!File.Exists("/usr/sbin/slapd") || !File.Exists("/usr/bin/ldapadd") || !File.Exists("/usr/bin/openssl"))
            Assert.Ignore("slapd/ldap-utils/openssl are not installed: run scripts/install-deps.sh --test");
        _slapd = await Slapd.StartAsync("""
            dn: dc=test,dc=example
            objectClass: dcObject
            objectClass: organization
            o: test
            dc: test

            dn: uid=alice,dc=test,dc=example
            objectClass: inetOrgPerson
            uid: alice
            cn: Alice
            sn: A
            userPassword: alice-pw
            """, async dir =>
        {
            async Task Run(params string[] args)
            {
                var (exit, o, e) = await HostTools.RunAsync("openssl", args, TimeSpan.FromSeconds(60));
                Assert.That(exit, Is.EqualTo(0), o + e);
            }
            var cas = System.IO.Directory.CreateDirectory(Path.Combine(dir, "cas")).FullName;
            await Run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ldap-ca",
                "-keyout", Path.Combine(dir, "ca.key"), "-out", Path.Combine(cas, "ca.pem"));
            await Run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", Path.Combine(dir, "server.key"), "-out", Path.Combine(dir, "server.csr"));
            File.WriteAllText(Path.Combine(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
            await Run("x509", "-req", "-in", Path.Combine(dir, "server.csr"), "-CA", Path.Combine(cas, "ca.pem"), "-CAkey", Path.Combine(dir, "ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", Path.Combine(dir, "san.ext"), "-out", Path.Combine(dir, "server.pem"));
            await Run("rehash", cas);
            return $"TLSCACertificateFile {cas}/ca.pem\nTLSCertificateFile {dir}/server.pem\nTLSCertificateKeyFile {dir}/server.key";
        }, ldaps: true);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_slapd is not null) await _slapd.DisposeAsync();
    }

    async Task<int> SignInAsync(TestServer server)
    {
        using var http = server.Client(token: null);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:alice-pw")));
        return (int)(await http.PostAsJsonAsync("/api/v1/tokens", new { })).StatusCode;
    }

    Dictionary<string, string?> Settings(string? cas, bool ldaps = false) => new()
    {
        ["Identity:Ldap:Enabled"] = "true",
        ["Identity:Ldap:Url"] = ldaps ? _slapd.LdapsUrl : _slapd.Url,
        ["Identity:Ldap:StartTls"] = ldaps ? "false" : "true",
        ["Identity:Ldap:BindDnTemplate"] = "uid={0},dc=test,dc=example",
        ["Identity:Ldap:TrustedCertificatesDirectory"] = cas,
        ["Identity:Ldap:CacheSeconds"] = "0",
    };

    [Test, CancelAfter(60_000)]
    public async Task StartTls_signs_in_when_the_directory_certificate_is_trusted_and_refuses_when_it_is_not()
    {
        var trustingLog = new LdapHostTests.ServerLog();
        await using (var trusting = await TestServer.StartAsync(Settings(Path.Combine(_slapd.Directory, "cas")), configure: b => b.Logging.AddProvider(trustingLog)))
            Assert.That(await SignInAsync(trusting), Is.EqualTo(201), trustingLog.Dump());
        var untrustingLog = new LdapHostTests.ServerLog();
        await using (var untrusting = await TestServer.StartAsync(Settings(null), configure: b => b.Logging.AddProvider(untrustingLog)))
            Assert.That(await SignInAsync(untrusting), Is.EqualTo(401), "a certificate from an unknown CA is not accepted");
        Assert.That(untrustingLog.Contains("alice", "StartTLS with " + _slapd.Url + " failed"), Is.True, untrustingLog.Dump());
        Assert.That(untrustingLog.Contains("alice", "wrong password"), Is.False, "refused for the certificate, not the password");
    }

    [Test, CancelAfter(60_000)]
    public async Task Ldaps_signs_in_when_the_directory_certificate_is_trusted_and_refuses_with_a_reason_when_it_is_not()
    {
        var trustingLog = new LdapHostTests.ServerLog();
        await using (var trusting = await TestServer.StartAsync(Settings(Path.Combine(_slapd.Directory, "cas"), ldaps: true), configure: b => b.Logging.AddProvider(trustingLog)))
            Assert.That(await SignInAsync(trusting), Is.EqualTo(201), trustingLog.Dump());
        var untrustingLog = new LdapHostTests.ServerLog();
        await using (var untrusting = await TestServer.StartAsync(Settings(null, ldaps: true), configure: b => b.Logging.AddProvider(untrustingLog)))
            Assert.That(await SignInAsync(untrusting), Is.EqualTo(401), "a certificate from an unknown CA is not accepted");
        Assert.That(untrustingLog.Contains("alice", _slapd.LdapsUrl + " is unreachable or not answering"), Is.True, untrustingLog.Dump());
        Assert.That(untrustingLog.Contains("alice", "its TLS certificate is not from a CA in Identity:Ldap:TrustedCertificatesDirectory"), Is.True, untrustingLog.Dump());
        Assert.That(untrustingLog.Contains("alice", "wrong password"), Is.False, "refused for the certificate, not the password");
    }
}

/// <summary>
/// Search mode with a service account (ServiceBindDn + BaseDn + UserFilter): a directory whose ACL lets anonymous
/// clients only bind, so the user's entry can be found only by the service account, then the user binds.
/// </summary>
[NonParallelizable]
public class LdapServiceAccountHostTests
{
    const string Suffix = "dc=test,dc=example";
    Slapd _slapd = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        if (!File.Exists("/usr/sbin/slapd") || !File.Exists("/usr/bin/ldapadd"))
            Assert.Ignore("slapd/ldap-utils are not installed: run scripts/install-deps.sh --test");
        _slapd = await Slapd.StartAsync($$"""
            dn: {{Suffix}}
            objectClass: dcObject
            objectClass: organization
            o: test
            dc: test

            dn: cn=reader,{{Suffix}}
            objectClass: organizationalRole
            objectClass: simpleSecurityObject
            cn: reader
            userPassword: reader-pw

            dn: ou=staff,{{Suffix}}
            objectClass: organizationalUnit
            ou: staff

            dn: cn=Alice Smith,ou=staff,{{Suffix}}
            objectClass: inetOrgPerson
            cn: Alice Smith
            sn: Smith
            uid: asmith
            mail: alice@example.org
            userPassword: alice-pw

            dn: cn=operators,{{Suffix}}
            objectClass: groupOfNames
            cn: operators
            member: cn=Alice Smith,ou=staff,{{Suffix}}
            """,
            // Anonymous clients may bind and nothing else; bound users (the service account, a user) may read.
            _ => Task.FromResult("access to * by anonymous auth by users read"));
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_slapd is not null) await _slapd.DisposeAsync();
    }

    Dictionary<string, string?> Settings(string? serviceDn, string? servicePassword) => new()
    {
        ["Identity:Ldap:Enabled"] = "true",
        ["Identity:Ldap:Url"] = _slapd.Url,
        ["Identity:Ldap:ServiceBindDn"] = serviceDn,
        ["Identity:Ldap:ServiceBindPassword"] = servicePassword,
        ["Identity:Ldap:BaseDn"] = "ou=staff," + Suffix,
        ["Identity:Ldap:UserFilter"] = "(&(objectClass=inetOrgPerson)(uid={0}))",
        ["Identity:Ldap:GroupBaseDn"] = Suffix,
        ["Identity:Ldap:CacheSeconds"] = "0",
    };

    static async Task<int> SignInAsync(TestServer server, string user, string password)
    {
        using var http = server.Client(token: null);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return (int)(await http.PostAsJsonAsync("/api/v1/tokens", new { })).StatusCode;
    }

    [Test, CancelAfter(90_000)]
    public async Task The_service_account_finds_a_user_whose_DN_is_not_built_from_the_name_and_the_user_then_binds_with_their_own_password()
    {
        var log = new LdapHostTests.ServerLog();
        await using var server = await TestServer.StartAsync(Settings("cn=reader," + Suffix, "reader-pw"), configure: b => b.Logging.AddProvider(log));
        using (var admin = server.Client()) await (await admin.PostAsJsonAsync("/api/v1/groups", new { name = "operators" })).Json(201);
        Assert.That(await SignInAsync(server, "asmith", "alice-pw"), Is.EqualTo(201), log.Dump());
        Assert.That(await SignInAsync(server, "asmith", "reader-pw"), Is.EqualTo(401), "the service account's password is not the user's");
        Assert.That(log.Contains("asmith", "wrong password"), Is.True, log.Dump());
        Assert.That(await SignInAsync(server, "nobody", "alice-pw"), Is.EqualTo(401));
        Assert.That(log.Contains("nobody", "no such user in the directory"), Is.True, log.Dump());
        using var client = server.Client();
        var user = await (await client.GetAsync("/api/v1/users/asmith")).Json(200);
        Assert.That(user["source"]!.GetValue<string>(), Is.EqualTo("ldap"));
        Assert.That(user["groups"]!.AsArray().Select(g => g!.GetValue<string>()), Does.Contain("operators"), "groups read with the user's own bind");
    }

    [Test, CancelAfter(90_000)]
    public async Task Without_the_service_account_the_anonymous_search_finds_nobody_and_a_wrong_service_password_is_named_as_such()
    {
        var anonymousLog = new LdapHostTests.ServerLog();
        await using (var anonymous = await TestServer.StartAsync(Settings(null, null), configure: b => b.Logging.AddProvider(anonymousLog)))
            Assert.That(await SignInAsync(anonymous, "asmith", "alice-pw"), Is.EqualTo(401), "this directory hides its entries from anonymous searches");
        Assert.That(anonymousLog.Contains("asmith", "refused"), Is.True, anonymousLog.Dump());

        var wrongLog = new LdapHostTests.ServerLog();
        await using (var wrong = await TestServer.StartAsync(Settings("cn=reader," + Suffix, "not-the-reader-pw"), configure: b => b.Logging.AddProvider(wrongLog)))
        {
            Assert.That(await SignInAsync(wrong, "asmith", "alice-pw"), Is.EqualTo(401));
            await wrong.CreateUserAsync("localops", "user");
            Assert.That(await SignInAsync(wrong, "localops", "password-localops"), Is.EqualTo(201), "local users do not need the directory");
        }
        Assert.That(wrongLog.Contains("asmith", "the directory refused the service account 'cn=reader,dc=test,dc=example'"), Is.True, wrongLog.Dump());
        Assert.That(wrongLog.Contains("asmith", "ServiceBindPassword"), Is.True);
    }
}
