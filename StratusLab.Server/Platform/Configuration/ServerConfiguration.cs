using System.Globalization;
using System.Reflection;

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

    /// <summary>Binds and validates; throws <see cref="ConfigurationException"/> listing every invalid key.</summary>
    public static ServerOptions Bind(IConfiguration configuration)
    {
        var options = new ServerOptions();
        var errors = new List<string>();
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
        Validate(options, errors);
        if (errors.Count > 0)
            throw new ConfigurationException("invalid configuration:\n  " + string.Join("\n  ", errors));
        return options;
    }

    public static string ResolveDataDir(string configured)
    {
        if (!string.IsNullOrWhiteSpace(configured)) return Path.GetFullPath(configured);
        var env = Environment.GetEnvironmentVariable("STRATUSLAB_DATA");
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".local", "share", "stratuslab");
    }

    internal static void Validate(ServerOptions o, List<string> errors)
    {
        void Range(string key, long value, long min, long max)
        {
            if (value < min || value > max)
                errors.Add($"{key} = {value.ToString(CultureInfo.InvariantCulture)} is out of range; accepted values: {min}..{max}.");
        }
        void OneOf(string key, string value, params string[] accepted)
        {
            if (!accepted.Contains(value, StringComparer.Ordinal))
                errors.Add($"{key} = '{value}' is not accepted; accepted values: {string.Join(", ", accepted)}.");
        }

        foreach (var url in o.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url.Replace("*", "0.0.0.0").Replace("+", "0.0.0.0"), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                errors.Add($"Urls = '{url}' is not accepted; accepted values: http(s) URLs such as http://127.0.0.1:8440, separated by ';'.");
        }
        if (o.Urls.Trim().Length == 0) errors.Add("Urls is empty; accepted values: http(s) URLs such as http://127.0.0.1:8440.");
        if (o.PublicUrl.Length > 0 && !(Uri.TryCreate(o.PublicUrl, UriKind.Absolute, out var pub) && pub.Scheme is "http" or "https"))
            errors.Add($"PublicUrl = '{o.PublicUrl}' is not accepted; accepted values: empty, or an http(s) URL.");
        Range("Store:BusyTimeoutMs", o.Store.BusyTimeoutMs, 100, 600_000);
        Range("Http:MaxRequestBodyBytes", o.Http.MaxRequestBodyBytes, 1024, 1L << 30);
        Range("Identity:DefaultTokenLifetimeDays", o.Identity.DefaultTokenLifetimeDays, 0, 3650);
        Range("Identity:ExpiredTokenRetentionDays", o.Identity.ExpiredTokenRetentionDays, 1, 3650);
        Range("Identity:DefaultQuota:Vms", o.Identity.DefaultQuota.Vms, -1, 1_000_000);
        Range("Identity:DefaultQuota:Cpus", o.Identity.DefaultQuota.Cpus, -1, 1_000_000);
        Range("Identity:DefaultQuota:MemoryMiB", o.Identity.DefaultQuota.MemoryMiB, -1, 1L << 40);
        Range("Identity:DefaultQuota:StorageGiB", o.Identity.DefaultQuota.StorageGiB, -1, 1L << 30);
        if (o.Telemetry.OtlpEndpoint.Length > 0 && !Uri.TryCreate(o.Telemetry.OtlpEndpoint, UriKind.Absolute, out _))
            errors.Add($"Telemetry:OtlpEndpoint = '{o.Telemetry.OtlpEndpoint}' is not accepted; accepted values: empty, or a URL such as http://127.0.0.1:4317.");
        OneOf("Compute:Driver", o.Compute.Driver, "qemu", "simulated");
        OneOf("Compute:Accelerator", o.Compute.Accelerator, "auto", "kvm", "tcg");
        Range("Compute:ShutdownTimeoutSeconds", o.Compute.ShutdownTimeoutSeconds, 1, 3600);
        Range("Compute:SimulatedDelayMs", o.Compute.SimulatedDelayMs, 0, 600_000);
        Range("Images:MaxCacheMiB", o.Images.MaxCacheMiB, 1, 1L << 30);
        Range("Images:MaxIdleHours", o.Images.MaxIdleHours, 0, 24 * 3650);
        Range("Images:RevalidateAfterMinutes", o.Images.RevalidateAfterMinutes, 0, 60 * 24 * 3650);
        Range("Scheduling:PendingTimeoutSeconds", o.Scheduling.PendingTimeoutSeconds, 0, 86_400 * 30);
        Range("Scheduling:SafetyNetSeconds", o.Scheduling.SafetyNetSeconds, 1, 3600);
        if (o.Scheduling.CpuOvercommit is < 0.1 or > 100 || double.IsNaN(o.Scheduling.CpuOvercommit))
            errors.Add($"Scheduling:CpuOvercommit = {o.Scheduling.CpuOvercommit} is out of range; accepted values: 0.1..100.");
        Range("Compute:BootTimeoutSeconds", o.Compute.BootTimeoutSeconds, 5, 3600);
        Range("Compute:MonitorIntervalSeconds", o.Compute.MonitorIntervalSeconds, 1, 3600);
        Range("Compute:MaxConcurrentDeployments", o.Compute.MaxConcurrentDeployments, 1, 1024);
        if (o.Compute.ApplianceImage.Length > 0 && !File.Exists(o.Compute.ApplianceImage))
            errors.Add($"Compute:ApplianceImage = '{o.Compute.ApplianceImage}' does not exist; accepted values: empty (look in ~/.cache/stratuslab/appliance), or the path of a built appliance image.");
        void EachMatches(string key, IEnumerable<string> values, string pattern, string accepted)
        {
            foreach (var v in values)
                if (!System.Text.RegularExpressions.Regex.IsMatch(v, pattern))
                    errors.Add($"{key} contains '{v}', which is not accepted; accepted values: {accepted}.");
        }
        const string emailPattern = @"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$", colourPattern = @"^#[0-9A-Fa-f]{3}([0-9A-Fa-f]{3})?$";
        Range("Marketplace:MaxEntryBytes", o.Marketplace.MaxEntryBytes, 4096, 100L << 20);
        Range("Marketplace:SiteEntryValidDays", o.Marketplace.SiteEntryValidDays, 1, 36500);
        Range("Marketplace:MaxClockSkewMinutes", o.Marketplace.MaxClockSkewMinutes, 0, 1440);
        EachMatches("Marketplace:SiteEndorserEmail", [o.Marketplace.SiteEndorserEmail], emailPattern, "an e-mail address such as site-admin@localhost");
        EachMatches("Marketplace:WhitelistedCertificates", o.Marketplace.WhitelistedCertificates, "^([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$", "SHA-256 (or SHA-1) certificate fingerprints in hex");
        Range("Marketplace:Mail:SmtpPort", o.Marketplace.Mail.SmtpPort, 1, 65535);
        EachMatches("Marketplace:Mail:From", [o.Marketplace.Mail.From], emailPattern, "an e-mail address");
        EachMatches("Marketplace:Pages colours", [o.Marketplace.Pages.PrimaryColour, o.Marketplace.Pages.AccentColour, o.Marketplace.Pages.BackgroundColour], colourPattern, "#rgb or #rrggbb");
        if (o.Marketplace.Pages.LogoFile.Length > 0 && !File.Exists(o.Marketplace.Pages.LogoFile))
            errors.Add($"Marketplace:Pages:LogoFile = '{o.Marketplace.Pages.LogoFile}' does not exist; accepted values: empty (the built-in logo), or the path of a PNG, SVG or JPEG file.");
        EachMatches("Policy:WhitelistEndorsers", o.Policy.WhitelistEndorsers, emailPattern, "endorser e-mail addresses");
        EachMatches("Policy:BlacklistEndorsers", o.Policy.BlacklistEndorsers, emailPattern, "endorser e-mail addresses");
        EachMatches("Policy:WhitelistImages", o.Policy.WhitelistImages, "^[A-P][A-Za-z0-9_-]{26}$", "27-character image identifiers");
        EachMatches("Policy:BlacklistImages", o.Policy.BlacklistImages, "^[A-P][A-Za-z0-9_-]{26}$", "27-character image identifiers");
        EachMatches("Policy:WhitelistChecksums", o.Policy.WhitelistChecksums, "^([0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{56}|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{96}|[0-9A-Fa-f]{128})$", "hex MD5, SHA-1 or SHA-2 checksums");
        EachMatches("Policy:BlacklistChecksums", o.Policy.BlacklistChecksums, "^([0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{56}|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{96}|[0-9A-Fa-f]{128})$", "hex MD5, SHA-1 or SHA-2 checksums");
        OneOf("Pdisk:Backend", o.Pdisk.Backend, "file", "lvm");
        OneOf("Pdisk:FileFormat", o.Pdisk.FileFormat, "raw", "qcow2");
        OneOf("Pdisk:Sharing", o.Pdisk.Sharing, "local", "iscsi");
        if (o.Pdisk.VolumesDir.Length > 0 && !Path.IsPathFullyQualified(o.Pdisk.VolumesDir))
            errors.Add($"Pdisk:VolumesDir = '{o.Pdisk.VolumesDir}' is not accepted; accepted values: empty (<data-dir>/volumes), or an absolute directory path.");
        if (o.Pdisk.Backend == "lvm" && o.Pdisk.VolumeGroup.Length == 0)
            errors.Add("Pdisk:VolumeGroup is empty but Pdisk:Backend is lvm; accepted values: the name of an existing LVM volume group (see 'vgs').");
        EachMatches("Pdisk:VolumeGroup", o.Pdisk.VolumeGroup.Length == 0 ? [] : [o.Pdisk.VolumeGroup], "^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,126}$", "an LVM volume group name (letters, digits, '_', '.', '+', '-')");
        EachMatches("Pdisk:ThinPool", o.Pdisk.ThinPool.Length == 0 ? [] : [o.Pdisk.ThinPool], "^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,126}$", "empty (classic LVs), or a thin pool LV name in Pdisk:VolumeGroup");
        if (!System.Net.IPAddress.TryParse(o.Pdisk.Iscsi.PortalAddress, out _))
            errors.Add($"Pdisk:Iscsi:PortalAddress = '{o.Pdisk.Iscsi.PortalAddress}' is not accepted; accepted values: an IP address such as 127.0.0.1.");
        Range("Pdisk:Iscsi:Port", o.Pdisk.Iscsi.Port, 1, 65535);
        EachMatches("Pdisk:Iscsi:Initiators", o.Pdisk.Iscsi.Initiators, @"^(ALL|[0-9.]+(/[0-9]{1,2})?|[0-9A-Fa-f:]+)$", "initiator IP addresses (or networks like 10.0.0.0/24, or ALL)");
        Range("Pdisk:QuarantineMinutes", o.Pdisk.QuarantineMinutes, 0, 525_600);
        Range("Pdisk:MaxVolumeGiB", o.Pdisk.MaxVolumeGiB, 1, 1L << 20);
        Range("Pdisk:MaxUploadBytes", o.Pdisk.MaxUploadBytes, 1L << 20, 1L << 50);
        Range("Pdisk:MaxUrlDownloadBytes", o.Pdisk.MaxUrlDownloadBytes, 1L << 20, 1L << 50);
        Range("Pdisk:UrlDownloadTimeoutMinutes", o.Pdisk.UrlDownloadTimeoutMinutes, 1, 10_080);
    }
}
