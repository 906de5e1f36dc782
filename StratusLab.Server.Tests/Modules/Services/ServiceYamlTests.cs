using System.Text;
using System.Text.Json.Nodes;
using StratusLab.Server.Cli;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Services;

/// <summary>Service templates in YAML (application/yaml, and service-create FILE.yaml): the same service as JSON, the same validation, positions as line and column.</summary>
public partial class ServiceApiTests
{
    static StringContent Yaml(string text) => new(text, Encoding.UTF8, "application/yaml");

    [Test]
    public async Task A_yaml_template_with_snake_case_keys_deploys_its_roles_in_dependency_order_like_json()
    {
        const string template = """
            # the demonstrator's shape, in YAML
            name: yaml-shop
            roles:
              - name: web
                type: t1.tiny
                cardinality: {min: 1, max: 3, initial: 2}
                context:
                  STRATUSLAB_PROBE_INTERVAL: 5
                  MY_SETTING: "keep as written"
                elasticity:
                  - expression: avg(rps, 30s) > 5
                    periods: 2
                    adjustment: "+1"
                    cooldown_seconds: 30
              - name: lb
                type: t1.tiny
                depends_on: [web]
                ready_gate: running
            """;
        var created = await (await _admin.PostAsync("/api/v1/services", Yaml(template))).Json(201);
        var id = created["id"]!.GetValue<long>();
        try
        {
            var stored = created["template"]!;
            Assert.That(stored["roles"]![1]!["dependsOn"]!.AsArray().Select(d => d!.GetValue<string>()), Is.EqualTo(new[] { "web" }), stored.ToJsonString());
            Assert.That(stored["roles"]![1]!["readyGate"]!.GetValue<string>(), Is.EqualTo("running"));
            Assert.That(stored["roles"]![0]!["elasticity"]![0]!["cooldownSeconds"]!.GetValue<int>(), Is.EqualTo(30));
            Assert.That(stored["roles"]![0]!["cardinality"]!["initial"]!.GetValue<int>(), Is.EqualTo(2));
            Assert.That(stored["roles"]![0]!["context"]!["STRATUSLAB_PROBE_INTERVAL"]!.GetValue<string>(), Is.EqualTo("5"), "context keys and values stay as written");
            var up = await WaitForAsync(_admin, id, s => s["state"]!.GetValue<string>() == "RUNNING", "RUNNING");
            var web = Members(up, "web");
            var lb = Members(up, "lb").Single();
            Assert.That(web, Has.Count.EqualTo(2));
            Assert.That(lb["instanceId"]!.GetValue<long>(), Is.GreaterThan(web.Max(m => m["instanceId"]!.GetValue<long>())), "lb starts after web");
        }
        finally { await _admin.DeleteAsync($"/api/v1/services/{id}"); }
    }

    [Test]
    public async Task The_yaml_demonstrator_is_the_same_template_as_the_json_one()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "stratuslab.sln"))) dir = dir.Parent;
        var examples = Path.Combine(dir!.FullName, "config", "examples");
        if ((await _admin.GetAsync("/api/v1/networks/lan")).StatusCode == System.Net.HttpStatusCode.NotFound)
            await (await _admin.PostAsync("/api/v1/networks", Http.RawJson("""{"name": "lan", "driver": "bridge", "cidr": "10.79.0.0/24", "gateway": "10.79.0.1"}"""))).Json(201);
        var templates = new List<string>();
        foreach (var content in new HttpContent[]
        {
            Http.RawJson(await File.ReadAllTextAsync(Path.Combine(examples, "service-balancer.json"))),
            Yaml(await File.ReadAllTextAsync(Path.Combine(examples, "service-balancer.yaml"))),
        })
        {
            var created = await (await _admin.PostAsync("/api/v1/services", content)).Json(201);
            templates.Add(created["template"]!.ToJsonString());
            await _admin.DeleteAsync($"/api/v1/services/{created["id"]}");
        }
        Assert.That(templates[1], Is.EqualTo(templates[0]));
    }

    // Lines and columns count from 1, as editors show them.
    [TestCase("name: bad\nroles:\n  - name: a\n    type: t1.tiny\n    cardinality:\n      min: 3\n      max: 2\n", "roles[0].cardinality.min", 6, 7, "greater than max")]
    [TestCase("name: bad\nroles:\n  - name: a\n    type: t1.tiny\n  - name: b\n    type: t1.tiny\n    elasticity:\n      - expression: avg(rps) >> 5\n        adjustment: '+1'\n",
        "roles[1].elasticity[0].expression", 8, 9, "avg(rps) >> 5")]
    [TestCase("name: bad\nroles:\n  - name: a\n    type: t1.tiny\n    depends_on: [b]\n  - name: b\n    type: t1.tiny\n    depends_on: [a]\n", "roles[0].dependsOn[0]", 5, 18, "cycle")]
    [TestCase("name: bad\nroles:\n  - name: a\n    type: t9.huge\n", "roles[0].type", 4, 5, "t9.huge")]
    [TestCase("name: bad\nroles:\n  - name: a\n    cardinality: 5\n", "roles[0].cardinality", 4, 5, "wrong type")]
    [TestCase("name: bad\nroles:\n  - name: a\n    colour: blue\n", "roles[0].colour", 4, 5, "unknown field")]
    [TestCase("name: bad\nroles: [a\n", "template", 3, 1, "does not parse")]
    public async Task Bad_yaml_templates_are_400_naming_the_field_with_its_line_and_column_and_nothing_is_created(string template, string field, int line, int column, string mention)
    {
        using var http = _server.Client(await _server.CreateUserAsync("yaml" + Guid.NewGuid().ToString("N")[..6]));
        var problem = await (await http.PostAsync("/api/v1/services", Yaml(template))).Problem(400);
        Assert.That(problem["field"]!.GetValue<string>(), Is.EqualTo(field), problem.ToJsonString());
        Assert.That(problem["detail"]!.GetValue<string>(), Does.Contain($"line {line}, column {column}").And.Contain(mention), problem.ToJsonString());
        Assert.That((await (await http.GetAsync("/api/v1/services")).Json(200)).AsArray(), Is.Empty, "nothing was created");
        Assert.That((await (await http.GetAsync("/api/v1/instances")).Json(200)).AsArray(), Is.Empty, "no instance was launched");
    }

    [Test]
    public async Task Service_create_sends_a_yml_file_as_yaml_and_shows_the_servers_line_and_column_when_it_is_refused()
    {
        var dir = TempDir.Create("svcyaml");
        try
        {
            async Task<(int Code, string Out, string Err)> Run(params string[] args)
            {
                var output = new StringWriter();
                var error = new StringWriter();
                var code = await ClientCli.RunAsync(["--endpoint", _server.BaseAddress.ToString(), "--token", _server.AdminToken, .. args], output, error);
                return (code, output.ToString(), error.ToString());
            }
            var good = Path.Combine(dir, "one.yml");
            await File.WriteAllTextAsync(good, "name: cli-yaml\nroles:\n  - name: solo\n    type: t1.tiny\n");
            var created = await Run("service-create", good, "--json");
            Assert.That(created.Code, Is.Zero, created.Err);
            var id = JsonNode.Parse(created.Out)!["id"]!.GetValue<long>();
            await _admin.DeleteAsync($"/api/v1/services/{id}");

            var bad = Path.Combine(dir, "bad.yaml");
            await File.WriteAllTextAsync(bad, "name: cli-bad\nroles:\n  - name: solo\n    type: t1.tiny\n    cardinality: {min: 2, max: 1}\n");
            var refused = await Run("service-create", bad);
            Assert.That(refused.Code, Is.EqualTo(1));
            Assert.That(refused.Err, Does.Contain("line 5, column 19").And.Contain("greater than max"), refused.Err);
        }
        finally { TempDir.Delete(dir); }
    }
}
