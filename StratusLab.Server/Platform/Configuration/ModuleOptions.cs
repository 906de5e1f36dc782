using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace StratusLab.Server.Platform.Configuration;

/// <summary>A module's options section that lists its own invalid values; each message names the key and the accepted values.</summary>
public interface IValidatedOptions
{
    /// <summary>Every invalid value in the section, in the "&lt;key&gt; = ... is not accepted; accepted values: ..." form; empty when valid.</summary>
    IEnumerable<string> Problems();
}

/// <summary>Registers a module's options section: bound, validated at start-up, and injectable as the plain class.</summary>
public static class ModuleOptions
{
    /// <summary>
    /// Binds <paramref name="section"/> to <typeparamref name="T"/>, validates it with <see cref="IValidatedOptions.Problems"/>
    /// at start-up (<see cref="ServerConfiguration.ValidateAtStartup"/>, right after Build), and registers the bound
    /// <typeparamref name="T"/> itself so consumers inject it directly.
    /// </summary>
    public static IServiceCollection AddModuleOptions<T>(this IServiceCollection services, IConfiguration configuration, string section)
        where T : class, IValidatedOptions
    {
        services.AddOptions<T>().Bind(configuration.GetSection(section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<T>, ProblemsValidator<T>>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<T>>().Value);
        return services;
    }

    /// <summary>The message 'stratuslab serve' prints for invalid values: one indented line per problem.</summary>
    public static ConfigurationException Invalid(IEnumerable<string> problems) =>
        new("invalid configuration:\n  " + string.Join("\n  ", problems));

    sealed class ProblemsValidator<T> : IValidateOptions<T> where T : class, IValidatedOptions
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var problems = options.Problems().ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}

/// <summary>Collects configuration problems with the house wording: the key, the value, and the accepted values.</summary>
public sealed class ConfigurationProblems : IEnumerable<string>
{
    readonly List<string> _problems = [];

    /// <summary>A problem worded by the caller, for checks the helpers below do not cover.</summary>
    public void Add(string problem) => _problems.Add(problem);

    /// <summary>"&lt;key&gt; = &lt;value&gt; is out of range; accepted values: min..max." unless min &lt;= value &lt;= max.</summary>
    public void Range(string key, long value, long min, long max)
    {
        if (value < min || value > max)
            _problems.Add($"{key} = {value.ToString(CultureInfo.InvariantCulture)} is out of range; accepted values: {min}..{max}.");
    }

    /// <summary>"&lt;key&gt; = '&lt;value&gt;' is not accepted; accepted values: ..." unless the value is one of <paramref name="accepted"/> (case-sensitive).</summary>
    public void OneOf(string key, string value, params string[] accepted)
    {
        if (!accepted.Contains(value, StringComparer.Ordinal))
            _problems.Add($"{key} = '{value}' is not accepted; accepted values: {string.Join(", ", accepted)}.");
    }

    /// <summary>"&lt;key&gt; contains '&lt;value&gt;', which is not accepted; ..." for each value that does not match <paramref name="pattern"/>.</summary>
    public void EachMatches(string key, IEnumerable<string> values, string pattern, string accepted)
    {
        foreach (var v in values)
            if (!Regex.IsMatch(v, pattern))
                _problems.Add($"{key} contains '{v}', which is not accepted; accepted values: {accepted}.");
    }

    public IEnumerator<string> GetEnumerator() => _problems.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
