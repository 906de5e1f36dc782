using System.Reflection;
using Microsoft.Extensions.Options;

namespace StratusLab.Server.Platform.Configuration;

/// <summary>An invalid configuration value; the message names the key and the accepted values.</summary>
public sealed class ConfigurationException(string message) : Exception(message);

/// <summary>
/// Builds the configuration in precedence order: embedded defaults, --config file,
/// STRATUSLAB__ environment variables, command-line flags; then binds and validates it.
/// </summary>
public static class ServerConfiguration
{
    static readonly string[] KnownFlags = ["--data-dir", "--urls", "--config"];

    public static IConfigurationBuilder AddStratusLabSources(this IConfigurationBuilder builder, string[] args)
    {
        var flags = ParseFlags(args);
        builder.AddJsonStream(OpenEmbeddedDefaults());
        if (flags.TryGetValue("--config", out var file))
        {
            if (!File.Exists(file))
                throw new ConfigurationException($"--config: the file '{file}' does not exist; give the path of a JSON configuration file.");
            builder.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
        }
        builder.AddEnvironmentVariables("STRATUSLAB__");
        var overrides = new Dictionary<string, string?>();
        if (flags.TryGetValue("--data-dir", out var dataDir)) overrides["DataDir"] = dataDir;
        if (flags.TryGetValue("--urls", out var urls)) overrides["Urls"] = urls;
        builder.AddInMemoryCollection(overrides);
        return builder;
    }

    static Dictionary<string, string> ParseFlags(string[] args)
    {
        var flags = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string name, value;
            var eq = arg.IndexOf('=');
            if (arg.StartsWith("--") && eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            else
            {
                name = arg;
                if (!KnownFlags.Contains(name))
                    throw new ConfigurationException($"unknown option '{arg}'; 'stratuslab serve' accepts {string.Join(", ", KnownFlags)}.");
                if (i + 1 >= args.Length)
                    throw new ConfigurationException($"{name} needs a value.");
                value = args[++i];
            }
            if (!KnownFlags.Contains(name))
                throw new ConfigurationException($"unknown option '{name}'; 'stratuslab serve' accepts {string.Join(", ", KnownFlags)}.");
            flags[name] = value;
        }
        return flags;
    }

    static Stream OpenEmbeddedDefaults() =>
        Assembly.GetExecutingAssembly().GetManifestResourceStream("config/stratuslab.json")
        ?? throw new InvalidOperationException("the embedded default configuration is missing from the binary");

    /// <summary>
    /// Binds and validates Platform's keys; throws <see cref="ConfigurationException"/> listing every invalid one.
    /// Checked here, at once, because registration and Build already use them (URLs, Kestrel limits, telemetry exporters).
    /// </summary>
    public static ServerOptions Bind(IConfiguration configuration)
    {
        var options = new ServerOptions();
        try
        {
            configuration.Bind(options, o => o.ErrorOnUnknownConfiguration = false);
        }
        catch (InvalidOperationException e)
        {
            // The binder names the key in its message ("Failed to convert configuration value at 'Store:BusyTimeoutMs' ...").
            throw new ConfigurationException(e.Message + " Give a whole number.");
        }
        options.DataDir = ResolveDataDir(options.DataDir);
        var problems = Problems(options).ToList();
        if (problems.Count > 0) throw ModuleOptions.Invalid(problems);
        return options;
    }

    /// <summary>
    /// Validates every module's options registered with <see cref="ModuleOptions.AddModuleOptions{T}"/> now, rather than when
    /// the host starts; throws <see cref="ConfigurationException"/> listing every invalid key, so 'stratuslab serve' refuses
    /// a bad configuration before it touches the data dir.
    /// </summary>
    public static void ValidateAtStartup(IServiceProvider services)
    {
        try
        {
            services.GetRequiredService<IStartupValidator>().Validate();
        }
        catch (OptionsValidationException e)
        {
            throw ModuleOptions.Invalid(e.Failures);
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is OptionsValidationException))
        {
            throw ModuleOptions.Invalid(e.InnerExceptions.Cast<OptionsValidationException>().SelectMany(i => i.Failures));
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
        {
            // As in Bind: the binder names the module's key ("... at 'Compute:BootTimeoutSeconds' ...").
            throw new ConfigurationException(e.Message + " Give a whole number.");
        }
    }

    public static string ResolveDataDir(string configured)
    {
        if (!string.IsNullOrWhiteSpace(configured)) return Path.GetFullPath(configured);
        var env = Environment.GetEnvironmentVariable("STRATUSLAB_DATA");
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".local", "share", "stratuslab");
    }

    internal static IEnumerable<string> Problems(ServerOptions o)
    {
        var problems = new ConfigurationProblems();
        foreach (var url in o.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url.Replace("*", "0.0.0.0").Replace("+", "0.0.0.0"), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                problems.Add($"Urls = '{url}' is not accepted; accepted values: http(s) URLs such as http://127.0.0.1:8440, separated by ';'.");
        }
        if (o.Urls.Trim().Length == 0) problems.Add("Urls is empty; accepted values: http(s) URLs such as http://127.0.0.1:8440.");
        if (o.PublicUrl.Length > 0 && !(Uri.TryCreate(o.PublicUrl, UriKind.Absolute, out var pub) && pub.Scheme is "http" or "https"))
            problems.Add($"PublicUrl = '{o.PublicUrl}' is not accepted; accepted values: empty, or an http(s) URL.");
        problems.Range("Store:BusyTimeoutMs", o.Store.BusyTimeoutMs, 100, 600_000);
        problems.Range("Http:MaxRequestBodyBytes", o.Http.MaxRequestBodyBytes, 1024, 1L << 30);
        problems.Range("Disk:MinFreeMiB", o.Disk.MinFreeMiB, 0, 1L << 20);
        problems.Range("Tls:GuestHttpPort", o.Tls.GuestHttpPort, -1, 65535);
        if (o.Tls.KeyFile.Length > 0 && o.Tls.CertificateFile.Length == 0)
            problems.Add("Tls:KeyFile is set but Tls:CertificateFile is empty; give both, or neither for a self-signed certificate.");
        foreach (var (key, file) in new[] { ("Tls:CertificateFile", o.Tls.CertificateFile), ("Tls:KeyFile", o.Tls.KeyFile) })
            if (file.Length > 0 && !File.Exists(file))
                problems.Add($"{key} = '{file}' does not exist; give the path of a PEM file, or leave it empty for a self-signed certificate.");
        if (o.Telemetry.OtlpEndpoint.Length > 0 && !Uri.TryCreate(o.Telemetry.OtlpEndpoint, UriKind.Absolute, out _))
            problems.Add($"Telemetry:OtlpEndpoint = '{o.Telemetry.OtlpEndpoint}' is not accepted; accepted values: empty, or a URL such as http://127.0.0.1:4317.");
        return problems;
    }
}
