using System.Text.RegularExpressions;

namespace StratusLab.Server.Platform.Data;

/// <summary>One numbered schema migration of a module: the SQL of <c>Modules/&lt;Module&gt;/Migrations/NNNN_name.sql</c>.</summary>
public sealed record Migration(int Version, string Name, string Sql);

/// <summary>
/// A module's own schema: its numbered migrations, applied in order and recorded as the module's version in
/// <c>platform_schema</c>. A module registers it from its AddXModule (<see cref="ModuleSchemaRegistration.AddStoreSchema"/>);
/// the <see cref="Migrator"/> applies the schemas in registration order, which is the module order of Program.cs.
/// </summary>
/// <param name="Module">The module's key in <c>platform_schema</c>, lower case (<c>compute</c>).</param>
/// <param name="Migrations">Numbered 1..N without gaps.</param>
/// <param name="LegacyUserVersions">
/// For stores written before per-module versions (one global PRAGMA user_version): entry i is the global version that
/// contained this module's migration i + 1, so such a store is adopted at the right module version without re-running anything.
/// </param>
public sealed partial record ModuleSchema(string Module, IReadOnlyList<Migration> Migrations, IReadOnlyList<int> LegacyUserVersions)
{
    public int LatestVersion => Migrations.Count;

    /// <summary>The module's version in a store at the old global <paramref name="userVersion"/>.</summary>
    public int VersionAtLegacy(int userVersion) => LegacyUserVersions.Count(v => v <= userVersion);

    /// <summary>The migrations embedded as <c>migrations/&lt;module&gt;/NNNN_name.sql</c> (see the csproj).</summary>
    public static ModuleSchema Embedded(string module, IReadOnlyList<int>? legacyUserVersions = null)
    {
        var assembly = typeof(ModuleSchema).Assembly;
        var list = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            var match = ResourceName().Match(resource);
            if (!match.Success || match.Groups[1].Value != module) continue;
            using var reader = new StreamReader(assembly.GetManifestResourceStream(resource)!);
            list.Add(new Migration(int.Parse(match.Groups[2].Value), match.Groups[3].Value, reader.ReadToEnd()));
        }
        return Create(module, list, legacyUserVersions ?? []);
    }

    /// <summary>A schema from migrations given in code (tests); checks the numbering.</summary>
    public static ModuleSchema Create(string module, IEnumerable<Migration> migrations, IReadOnlyList<int>? legacyUserVersions = null)
    {
        var list = migrations.OrderBy(m => m.Version).ToList();
        if (list.Count == 0)
            throw new InvalidOperationException($"module '{module}' registers a store schema but has no migrations (embedded as migrations/{module}/NNNN_name.sql)");
        for (var i = 0; i < list.Count; i++)
            if (list[i].Version != i + 1)
                throw new InvalidOperationException($"the migrations of module '{module}' are not numbered 1..N: found {list[i].Version} at position {i + 1}");
        legacyUserVersions ??= [];
        if (legacyUserVersions.Count > list.Count)
            throw new InvalidOperationException($"module '{module}' maps {legacyUserVersions.Count} legacy versions but has only {list.Count} migrations");
        return new ModuleSchema(module, list, legacyUserVersions);
    }

    /// <summary>The schemas registered in a service collection, in registration order (for tools that migrate without a server).</summary>
    public static IReadOnlyList<ModuleSchema> RegisteredIn(IServiceCollection services) =>
        services.Where(d => d.ServiceType == typeof(ModuleSchema)).Select(d => (ModuleSchema)d.ImplementationInstance!).ToList();

    [GeneratedRegex(@"^migrations/([a-z0-9_]+)/(\d{4})_([a-z0-9_]+)\.sql$")]
    private static partial Regex ResourceName();
}
