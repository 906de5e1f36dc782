using System.Text.RegularExpressions;

namespace StratusLab.Server.Tests;

/// <summary>Modules talk to each other only through their Contracts/ folders.</summary>
public partial class ArchitectureTests
{
    static string SourceRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "stratuslab.sln"))) dir = dir.Parent;
        Assert.That(dir, Is.Not.Null, "cannot find the repository root");
        return Path.Combine(dir!.FullName, "StratusLab.Server");
    }

    /// <summary>Every reference to another module that does not go through its Contracts namespace.</summary>
    public static IReadOnlyList<string> Violations(string sourceRoot)
    {
        var violations = new List<string>();
        var modulesDir = Path.Combine(sourceRoot, "Modules");
        foreach (var file in Directory.EnumerateFiles(modulesDir, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(modulesDir, file);
            var owner = relative.Split(Path.DirectorySeparatorChar)[0];
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                foreach (Match m in ModuleReference().Matches(lines[i]))
                {
                    var module = m.Groups[1].Value;
                    var rest = m.Groups[2].Value;
                    if (module == owner) continue;
                    if (rest == ".Contracts" || rest.StartsWith(".Contracts.", StringComparison.Ordinal)) continue;
                    violations.Add($"{relative}:{i + 1} uses {m.Value}");
                }
            }
        }
        return violations;
    }

    [Test]
    public void Modules_use_each_other_only_through_Contracts()
    {
        var violations = Violations(SourceRoot());
        Assert.That(violations, Is.Empty, "modules must depend on each other's Contracts/ only:\n" + string.Join("\n", violations));
    }

    [Test]
    public void The_check_catches_a_module_reaching_into_another()
    {
        var root = Path.Combine(Path.GetTempPath(), "arch-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "Modules", "Compute"));
            File.WriteAllText(Path.Combine(root, "Modules", "Compute", "Bad.cs"),
                "using StratusLab.Server.Modules.Identity;\nusing StratusLab.Server.Modules.Identity.Contracts;\nclass X { StratusLab.Server.Modules.Pdisk.Drivers.FileDriver? d; }\n");
            var violations = Violations(root);
            Assert.That(violations, Has.Count.EqualTo(2));
            Assert.That(violations[0], Does.Contain("Modules.Identity"));
            Assert.That(violations[1], Does.Contain("Modules.Pdisk.Drivers"));
        }
        finally { Directory.Delete(root, true); }
    }

    [Test]
    public void Only_the_command_runner_touches_CliWrap()
    {
        var offenders = Directory.EnumerateFiles(SourceRoot(), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .Where(f => File.ReadAllText(f).Contains("CliWrap") && !f.EndsWith("CommandRunner.cs"))
            .Select(f => Path.GetRelativePath(SourceRoot(), f)).ToList();
        Assert.That(offenders, Is.Empty);
    }

    [GeneratedRegex(@"StratusLab\.Server\.Modules\.([A-Za-z]+)((?:\.[A-Za-z]+)*)")]
    private static partial Regex ModuleReference();
}
