using System.Net.Http.Json;
using System.Text;
using StratusLab.Server.Modules.Occi;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Occi;

/// <summary>The GFD.185 text rendering parser (pure), and malformed renderings over HTTP: each a 4xx naming the problem, never a 500.</summary>
public class OcciRenderingTests
{
    const string Infra = "http://schemas.ogf.org/occi/infrastructure#";

    [Test]
    public void A_category_with_every_parameter_parses()
    {
        var c = OcciRendering.ParseCategory(
            $"compute; scheme=\"{Infra}\"; class=\"kind\"; title=\"Compute; \\\"big\\\"\"; rel=\"http://schemas.ogf.org/occi/core#resource\"; location=\"/compute/\"; attributes=\"occi.compute.cores occi.compute.state{{immutable}}\"; actions=\"a b\"");
        Assert.That(c.Term, Is.EqualTo("compute"));
        Assert.That(c.Id, Is.EqualTo(Infra + "compute"));
        Assert.That(c.Title, Is.EqualTo("Compute; \"big\""));
        Assert.That(c.Attributes, Is.EqualTo(new[] { "occi.compute.cores", "occi.compute.state{immutable}" }));
        Assert.That(c.Actions, Is.EqualTo(new[] { "a", "b" }));
        Assert.That(OcciRendering.ParseCategory(OcciRendering.Render(c)), Is.EqualTo(c).Using<OcciCategory>((a, b) =>
            a.Id == b.Id && a.Title == b.Title && a.Location == b.Location && a.Attributes!.SequenceEqual(b.Attributes!)), "render and parse round-trip");
    }

    [TestCase("occi.compute.cores=2", "2", false)]
    [TestCase("occi.compute.memory=1.5", "1.5", false)]
    [TestCase("occi.core.title=\"a, b; \\\"c\\\"\"", "a, b; \"c\"", true)]
    [TestCase("org.stratuslab.ready=true", "true", false)]
    [TestCase("occi.compute.hostname = \"foobar\"", "foobar", true)]
    public void Attribute_values_parse(string text, string value, bool isString)
    {
        var (_, v) = OcciRendering.ParseAttribute(text);
        Assert.That(v.Text, Is.EqualTo(value));
        Assert.That(v.IsString, Is.EqualTo(isString));
    }

    [Test]
    public void A_link_parses_with_its_attributes()
    {
        var link = OcciRendering.ParseLink($"</network/1>; rel=\"{Infra}network\"; self=\"/link/networkinterface/1_0\"; category=\"{Infra}networkinterface\"; occi.networkinterface.interface=\"eth0\"");
        Assert.That(link.Target, Is.EqualTo("/network/1"));
        Assert.That(link.Self, Is.EqualTo("/link/networkinterface/1_0"));
        Assert.That(link.Attributes.Single().Key, Is.EqualTo("occi.networkinterface.interface"));
    }

    [Test]
    public void A_comma_inside_a_quoted_value_does_not_split_a_text_occi_header()
    {
        var headers = new Microsoft.AspNetCore.Http.HeaderDictionary { ["X-OCCI-Attribute"] = "occi.core.title=\"a, b\", occi.compute.cores=2" };
        var input = OcciRendering.FromHeaders(headers);
        Assert.That(input.Attributes["occi.core.title"].Text, Is.EqualTo("a, b"));
        Assert.That(input.Attributes["occi.compute.cores"].Text, Is.EqualTo("2"));
    }

    // The malformed-rendering table: header, value, the status, and a fragment of the answer that names the problem.
    static readonly object[] Malformed =
    [
        new object[] { "Category", "compute", 400, "Category: the category 'compute' has no scheme" },
        new object[] { "Category", $"compute; scheme=\"{Infra}\"", 400, "has no class" },
        new object[] { "Category", $"compute; scheme=\"{Infra}\"; class=\"thing\"", 400, "class=\"thing\"" },
        new object[] { "Category", $"com pute; scheme=\"{Infra}\"; class=\"kind\"", 400, "is not a term" },
        new object[] { "Category", $"compute; scheme=\"{Infra}; class=\"kind\"", 400, "Category: " },
        new object[] { "Category", $"compute; scheme={Infra}; class=\"kind\"", 400, "neither a quoted string" },
        new object[] { "Category", "compute; scheme=\"ftp://example.com/x#\"; class=\"kind\"", 400, "is not an http(s) URI ending with '#'" },
        new object[] { "Category", "compute; scheme=\"http://example.com/x\"; class=\"kind\"", 400, "ending with '#'" },
        new object[] { "Category", $"compute; scheme=\"{Infra}\"; class=\"kind\"; colour=\"red\"", 400, "'colour' is not a Category parameter" },
        new object[] { "Category", $"compute; scheme=\"{Infra}\"; class=\"kind\"; class=\"kind\"", 400, "given twice" },
        new object[] { "Category", $"compute; scheme=\"{Infra}\"; class=\"kind\",", 400, "an empty element" },
        new object[] { "Category", "compute; scheme=\"http://example.com/unknown#\"; class=\"kind\"", 400, "Unknown kind" },
        new object[] { "Category", $"compute; scheme=\"{Infra}\"; class=\"kind\", thing; scheme=\"http://example.com/unknown#\"; class=\"mixin\"", 400, "Unknown mixin" },
        new object[] { "X-OCCI-Attribute", "occi.compute.cores", 400, "X-OCCI-Attribute: 'occi.compute.cores' has no value" },
        new object[] { "X-OCCI-Attribute", "occi.compute.cores=", 400, "has an empty value" },
        new object[] { "X-OCCI-Attribute", "occi.core.title=\"unclosed", 400, "X-OCCI-Attribute: a quoted string is not closed" },
        new object[] { "X-OCCI-Attribute", "occi.core.title=unquoted text", 400, "put strings in double quotes" },
        new object[] { "X-OCCI-Attribute", "occi.core.title=\"a\"b", 400, "text after its closing quote" },
        new object[] { "X-OCCI-Attribute", "Occi.Compute.Cores=2", 400, "is not an attribute name" },
        new object[] { "X-OCCI-Attribute", "occi.compute.cores=2, occi.compute.cores=3", 400, "given twice" },
        new object[] { "X-OCCI-Attribute", "occi.compute.cores=\"two\"", 400, "must be a number" },
        new object[] { "X-OCCI-Attribute", "occi.compute.cores=2.5", 400, "whole number of cores" },
        new object[] { "Link", "/network/1; rel=\"x\"", 400, "Link: '/network/1' is not a link target" },
        new object[] { "Link", "</network/1>; rel=x y", 400, "Link: " },
        new object[] { "Link", "</nowhere/1>", 400, "neither /network/<id> nor /storage/<uuid>" },
        new object[] { "X-OCCI-Location", "not a location", 400, "X-OCCI-Location: 'not a location' is not a location" },
        new object[] { "X-OCCI-Attribute", "occi.core.title=\"" + new string('x', 9000) + "\"", 400, "at most 8192 are accepted" },
    ];

    [TestCaseSource(nameof(Malformed))]
    public async Task A_malformed_rendering_is_a_4xx_that_names_the_problem(string header, string value, int status, string fragment)
    {
        await using var server = await Shared.ServerAsync();
        foreach (var kind in new[] { "text/occi", "text/plain" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/compute/");
            request.Headers.TryAddWithoutValidation("Accept", "text/plain");
            var kindLine = header == "Category" ? "" : $"Category: compute; scheme=\"{Infra}\"; class=\"kind\"\n";
            if (kind == "text/occi")
            {
                if (kindLine.Length > 0) request.Headers.TryAddWithoutValidation("Category", kindLine["Category: ".Length..].TrimEnd());
                request.Headers.TryAddWithoutValidation(header, value);
                request.Content = new ByteArrayContent([]);
                request.Content.Headers.TryAddWithoutValidation("Content-Type", "text/occi");
            }
            else
                request.Content = new StringContent($"{kindLine}{header}: {value}\n", Encoding.UTF8, "text/plain");
            using var response = await server.Http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.That((int)response.StatusCode, Is.EqualTo(status), $"{kind}: {body}");
            Assert.That(body, Does.Contain(fragment), kind);
            Assert.That(response.Headers.Server.ToString(), Does.Contain("OCCI/1.1"));
        }
    }

    [TestCase("Category: compute; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; class=\"kind\"\nnot a line\n", "line 2")]
    [TestCase("\u0000\u0001binary\n", "line 1")]
    [TestCase("Category:\n", "Category: an empty element")]
    public async Task A_text_plain_body_that_is_not_a_rendering_is_400_naming_the_line(string body, string fragment)
    {
        await using var server = await Shared.ServerAsync();
        using var response = await server.Http.PostAsync("/compute/", new StringContent(body, Encoding.UTF8, "text/plain"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(400), text);
        Assert.That(text, Does.Contain(fragment));
    }

    [Test]
    public async Task Random_bytes_in_every_header_and_the_body_never_give_a_500()
    {
        await using var server = await Shared.ServerAsync();
        var random = new Random(1185);
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 ;=\",<>/#.:{}\\_-";
        string Noise(int n) => new(Enumerable.Range(0, n).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
        string[] paths = ["/-/", "/compute/", "/compute/1", "/storage/", "/link/storagelink/", "/tags/x/", "/network/1"];
        string[] methods = ["GET", "POST", "PUT", "DELETE"];
        for (var i = 0; i < 300; i++)
        {
            using var request = new HttpRequestMessage(new HttpMethod(methods[random.Next(methods.Length)]), paths[random.Next(paths.Length)]);
            var header = OcciRendering.Headers[random.Next(OcciRendering.Headers.Length)];
            var value = (random.Next(3) == 0 ? $"compute; scheme=\"{Infra}\"; class=\"kind\"" : "") + Noise(random.Next(1, 80));
            if (random.Next(2) == 0)
            {
                request.Headers.TryAddWithoutValidation(header, value);
                request.Content = new ByteArrayContent([]);
                request.Content.Headers.TryAddWithoutValidation("Content-Type", "text/occi");
            }
            else
                request.Content = new StringContent($"{header}: {value}\n{Noise(random.Next(0, 40))}", Encoding.UTF8, "text/plain");
            using var response = await server.Http.SendAsync(request);
            Assert.That((int)response.StatusCode, Is.LessThan(500), $"{request.Method} {request.RequestUri} {header}: {value} -> {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>One server for the table (started once, shared by the cases).</summary>
    sealed class Shared : IAsyncDisposable
    {
        static TestServer? _server;
        static readonly SemaphoreSlim Lock = new(1, 1);
        public HttpClient Http { get; private init; } = null!;

        public static async Task<Shared> ServerAsync()
        {
            await Lock.WaitAsync();
            try
            {
                if (_server is null)
                {
                    _server = await TestServer.StartAsync();
                    await TestImages.RegisterDefaultAsync(_server, "occi-rendering");
                }
            }
            finally { Lock.Release(); }
            return new Shared { Http = _server.Client() };
        }

        public static async Task StopAsync()
        {
            if (_server is not null) await _server.DisposeAsync();
            _server = null;
        }

        public ValueTask DisposeAsync()
        {
            Http.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    [OneTimeTearDown]
    public Task Stop() => Shared.StopAsync();
}
