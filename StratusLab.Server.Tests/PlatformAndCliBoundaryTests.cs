using System.Text.RegularExpressions;

namespace StratusLab.Server.Tests;

/// <summary>Platform stands under every module and uses none; the CLI reaches modules only through their Contracts.</summary>
public partial class PlatformAndCliBoundaryTests
{
    static string SourceRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "stratuslab.sln"))) dir = dir.Parent;
        Assert.That(dir, Is.Not.Null, "cannot find the repository root");
        return Path.Combine(dir!.FullName, "StratusLab.Server");
    }

    /// <summary>Each module reference under <paramref name="folder"/> that <paramref name="allowed"/> refuses, as "file:line uses X".</summary>
    public static IReadOnlyList<string> Violations(string sourceRoot, string folder, Func<string, bool> allowed)
    {
        var root = Path.Combine(sourceRoot, folder);
        var violations = new List<string>();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
                foreach (Match m in ModuleReference().Matches(lines[i]))
                    if (!allowed(m.Groups[2].Value))
                        violations.Add($"{Path.GetRelativePath(sourceRoot, file)}:{i + 1} uses {m.Value}");
        }
        return violations;
    }

    static bool ContractsOnly(string rest) => rest == ".Contracts" || rest.StartsWith(".Contracts.", StringComparison.Ordinal);

    [Test]
    public void Platform_uses_no_module()
    {
        var violations = Violations(SourceRoot(), "Platform", _ => false);
        Assert.That(violations, Is.Empty, "Platform must not depend on any module:\n" + string.Join("\n", violations));
    }

    [Test]
    public void The_CLI_uses_modules_only_through_their_Contracts()
    {
        var violations = Violations(SourceRoot(), "Cli", ContractsOnly);
        Assert.That(violations, Is.Empty, "the CLI talks HTTP, or to a module's Contracts for local work:\n" + string.Join("\n", violations));
    }

    [Test]
    public void The_CLI_check_catches_a_reach_into_a_module()
    {
        var root = Path.Combine(Path.GetTempPath(), "arch-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "Cli"));
            File.WriteAllText(Path.Combine(root, "Cli", "Bad.cs"),
                "using StratusLab.Server.Modules.Identity;\nusing StratusLab.Server.Modules.Marketplace.Contracts;\nclass X { StratusLab.Server.Modules.Marketplace.Metadata.MetadataXml? x; }\n");
            var violations = Violations(root, "Cli", ContractsOnly);
            Assert.That(violations, Has.Count.EqualTo(2));
            Assert.That(violations[0], Does.Contain("Modules.Identity"));
            Assert.That(violations[1], Does.Contain("Modules.Marketplace.Metadata"));
        }
        finally { Directory.Delete(root, true); }
    }

    [GeneratedRegex(@"StratusLab\.Server\.Modules\.([A-Za-z]+)((?:\.[A-Za-z]+)*)")]
    private static partial Regex ModuleReference();
}
