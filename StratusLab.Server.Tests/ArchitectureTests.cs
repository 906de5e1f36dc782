using System.Reflection;
using NetArchTest.Rules;

namespace StratusLab.Server.Tests;

/// <summary>
/// The module boundaries, checked on the compiled types (NetArchTest over the assembly, not the source text):
/// a module uses another only through its Contracts; Platform uses no module; Cli uses modules' Contracts only;
/// no two modules depend on each other; only the command runner touches CliWrap.
/// </summary>
public class ArchitectureTests
{
    const string ModulesPrefix = "StratusLab.Server.Modules.";
    static readonly Assembly Server = typeof(Program).Assembly;

    /// <summary>The modules: the namespaces right under StratusLab.Server.Modules.</summary>
    public static IReadOnlyList<string> Modules(Assembly server) => server.GetTypes()
        .Select(t => t.Namespace ?? "")
        .Where(n => n.StartsWith(ModulesPrefix, StringComparison.Ordinal))
        .Select(n => n[ModulesPrefix.Length..].Split('.')[0])
        .Distinct().Order().ToList();

    static bool IsContract(string? ns, string module) =>
        ns is not null && (ns == $"{ModulesPrefix}{module}.Contracts" || ns.StartsWith($"{ModulesPrefix}{module}.Contracts.", StringComparison.Ordinal));

    /// <summary>Full names of a module's types that are not in its Contracts: what nobody outside the module may use.</summary>
    static string[] InternalsOf(Assembly server, string module) => server.GetTypes()
        .Where(t => !t.IsNested && t.Namespace is { } ns && (ns == ModulesPrefix + module || ns.StartsWith($"{ModulesPrefix}{module}.", StringComparison.Ordinal)))
        .Where(t => !IsContract(t.Namespace, module))
        .Select(t => t.FullName!).ToArray();

    /// <summary>
    /// Every type in <paramref name="subject"/> that breaks a boundary: a type of module A (or of Cli) using a type of
    /// module B outside B's Contracts, or a type of Platform using any module. <paramref name="server"/> says what the modules are.
    /// </summary>
    public static IReadOnlyList<string> Violations(Assembly subject, Assembly server)
    {
        var types = Types.InAssembly(subject);
        var modules = Modules(server);
        var violations = new List<string>();
        foreach (var module in modules)
        {
            var forbidden = modules.Where(m => m != module).SelectMany(m => InternalsOf(server, m)).ToArray();
            var result = types.That().ResideInNamespace(ModulesPrefix + module).ShouldNot().HaveDependencyOnAny(forbidden).GetResult();
            violations.AddRange((result.FailingTypeNames ?? []).Select(t => $"{t} (module {module}) uses another module's internals"));
        }
        var everyInternal = modules.SelectMany(m => InternalsOf(server, m)).ToArray();
        var cli = types.That().ResideInNamespace("StratusLab.Server.Cli").ShouldNot().HaveDependencyOnAny(everyInternal).GetResult();
        violations.AddRange((cli.FailingTypeNames ?? []).Select(t => $"{t} (Cli) uses a module's internals; Cli talks HTTP or uses Contracts"));
        var platform = types.That().ResideInNamespace("StratusLab.Server.Platform").ShouldNot().HaveDependencyOn("StratusLab.Server.Modules").GetResult();
        violations.AddRange((platform.FailingTypeNames ?? []).Select(t => $"{t} (Platform) uses a module; Platform uses none"));
        return violations;
    }

    /// <summary>Which modules each module depends on (through Contracts or not).</summary>
    public static IReadOnlyDictionary<string, IReadOnlySet<string>> ModuleGraph(Assembly server)
    {
        var types = Types.InAssembly(server);
        var modules = Modules(server);
        return modules.ToDictionary(a => a, a => (IReadOnlySet<string>)modules.Where(b => b != a)
            .Where(b => !types.That().ResideInNamespace(ModulesPrefix + a).ShouldNot().HaveDependencyOn(ModulesPrefix + b).GetResult().IsSuccessful)
            .ToHashSet());
    }

    [Test]
    public void Modules_use_each_other_only_through_Contracts_and_Platform_and_Cli_keep_out()
    {
        var violations = Violations(Server, Server);
        Assert.That(violations, Is.Empty, string.Join("\n", violations));
    }

    [Test]
    public void The_check_catches_a_Compute_class_that_takes_another_modules_internals()
    {
        // ArchitectureProbe (below, compiled into this test assembly) sits in Compute's namespace and takes Images', Pdisk's
        // and Networking's internal classes through their short namespaces, as the issue's probe did.
        var violations = Violations(typeof(ArchitectureTests).Assembly, Server);
        Assert.That(violations, Has.Some.Contains("StratusLab.Server.Modules.Compute.ArchitectureProbe"));
        Assert.That(violations, Has.Some.Contains("StratusLab.Server.Platform.ArchitectureProbe"));
        Assert.That(violations, Has.Some.Contains("StratusLab.Server.Cli.ArchitectureProbe"));
        Assert.That(violations, Has.None.Contains("ContractsOnlyProbe"), "using another module's Contracts is allowed");
    }

    [Test]
    public void No_two_modules_depend_on_each_other()
    {
        var graph = ModuleGraph(Server);
        var pairs = graph.SelectMany(a => a.Value.Where(b => string.CompareOrdinal(a.Key, b) < 0 && graph[b].Contains(a.Key)).Select(b => $"{a.Key} <-> {b}")).ToList();
        TestContext.Out.WriteLine(string.Join("\n", graph.Select(g => $"{g.Key} -> {string.Join(", ", g.Value.Order())}")));
        Assert.That(pairs, Is.Empty, "modules that call each other both ways");
    }

    [Test]
    public void The_pair_check_sees_a_dependency()
    {
        // Compute provisions through Images, Pdisk and Networking: the graph must show it, or the pair test proves nothing.
        var graph = ModuleGraph(Server);
        Assert.That(graph["Compute"], Is.SupersetOf(new[] { "Images", "Pdisk", "Networking", "Scheduling", "Identity" }));
    }

    [Test]
    public void Only_the_command_runner_touches_CliWrap()
    {
        var result = Types.InAssembly(Server).That().DoNotHaveName("CommandRunner").And().DoNotHaveNameStartingWith("<")
            .ShouldNot().HaveDependencyOn("CliWrap").GetResult();
        Assert.That(result.FailingTypeNames ?? [], Is.Empty);
    }
}
