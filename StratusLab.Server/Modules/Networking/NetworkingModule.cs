using System.Globalization;
using Quartz;

using StratusLab.Server.Modules.Networking.Contracts;
using StratusLab.Server.Modules.Networking.Drivers;
using StratusLab.Server.Modules.Networking.Jobs;

namespace StratusLab.Server.Modules.Networking;

internal static class NetworkingModule
{
    public static IServiceCollection AddNetworkingModule(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddStoreSchema("networking", legacyUserVersions: [6]);
        // Validated here, not in Platform: the checks need this module's address ranges.
        var errors = new List<string>();
        Validate(configuration.GetSection("Networking").Get<Platform.Configuration.NetworkingOptions>() ?? new(), errors);
        if (errors.Count > 0)
            throw new Platform.Configuration.ConfigurationException("invalid configuration:\n  " + string.Join("\n  ", errors));
        services.AddSingleton<NetworkingStore>();
        services.AddKeyedSingleton<INetworkDriver, UserNetworkDriver>(NetworkDriverNames.User);
        services.AddKeyedSingleton<INetworkDriver, BridgeNetworkDriver>(NetworkDriverNames.Bridge);
        services.AddSingleton<InstanceNetworking>();
        services.AddSingleton<IInstanceNetworking>(sp => sp.GetRequiredService<InstanceNetworking>());
        services.AddSingleton<NetworkRequests>();
        services.AddSingleton<SecurityGroupRequests>();
        services.AddSingleton<NetworkingBootstrap>();
        services.AddSingleton<NetworkReconciler>();
        services.AddHostedService<NetworkingStartup>();
        return services;
    }

    public static Action<IQuartzBuilder> ConfigureJobs(Platform.Configuration.ServerOptions options) => q =>
        q.ScheduleJob<NetworkReconcileJob>(
            t => t.WithIdentity("network-reconcile", "networking").StartNow()
                .WithSchedule(SimpleScheduleBuilder.Create().WithInterval(TimeSpan.FromSeconds(options.Networking.ReconcileIntervalSeconds)).RepeatForever()),
            j => j.WithIdentity(NetworkReconcileJob.Key));

    internal static void Validate(Platform.Configuration.NetworkingOptions n, List<string> errors)
    {
        static bool IsAddress(string text) => Ranges.Ipv4.TryParse(text, out _);
        if (n.PatPortFirst is < 1024 or > 65535) errors.Add($"Networking:PatPortFirst = {n.PatPortFirst} is out of range; accepted values: 1024..65535.");
        if (n.PatPortLast is < 1024 or > 65535) errors.Add($"Networking:PatPortLast = {n.PatPortLast} is out of range; accepted values: 1024..65535.");
        if (n.PatPortLast < n.PatPortFirst)
            errors.Add($"Networking:PatPortLast = {n.PatPortLast} is below Networking:PatPortFirst = {n.PatPortFirst}; accepted values: a last port >= the first.");
        var ports = n.PatGuestPorts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (ports.Any(p => !int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v is < 1 or > 65535) || ports.Distinct().Count() != ports.Length)
            errors.Add($"Networking:PatGuestPorts = '{n.PatGuestPorts}' is not accepted; accepted values: distinct guest ports 1..65535 separated by commas, such as 22,80 (empty: none).");
        if (!IsAddress(n.PatAddress))
            errors.Add($"Networking:PatAddress = '{n.PatAddress}' is not accepted; accepted values: an IPv4 address of this host (127.0.0.1 keeps PAT ports local; 0.0.0.0 opens them on every address).");
        if (n.MaxRangeAddresses is < 1 or > (1 << 24)) errors.Add($"Networking:MaxRangeAddresses = {n.MaxRangeAddresses} is out of range; accepted values: 1..16777216.");
        if (n.MaxNicsPerInstance is < 1 or > 16) errors.Add($"Networking:MaxNicsPerInstance = {n.MaxNicsPerInstance} is out of range; accepted values: 1..16.");
        if (n.ReconcileIntervalSeconds is < 5 or > 86_400) errors.Add($"Networking:ReconcileIntervalSeconds = {n.ReconcileIntervalSeconds} is out of range; accepted values: 5..86400.");
        if (n.VlanUplink.Length > 0 && !System.Text.RegularExpressions.Regex.IsMatch(n.VlanUplink, "^[A-Za-z0-9_.-]{1,15}$"))
            errors.Add($"Networking:VlanUplink = '{n.VlanUplink}' is not accepted; accepted values: empty, or a network interface name such as eth1.");
        var d = n.DefaultNetwork;
        if (d.Driver is not ("user" or "bridge")) errors.Add($"Networking:DefaultNetwork:Driver = '{d.Driver}' is not accepted; accepted values: user, bridge.");
        try
        {
            var range = Ranges.AddressRange.FromNetworkMask(
                d.Cidr.Split('/')[0], d.Cidr.Contains('/') ? d.Cidr.Split('/')[1] : "", d.First.Length == 0 ? null : d.First);
            if (!range.Subnet.IsHostAddress((Ranges.Ipv4.TryParse(d.Gateway, out var gateway) ? gateway : 0)))
                errors.Add($"Networking:DefaultNetwork:Gateway = '{d.Gateway}' is not accepted; accepted values: an address inside Networking:DefaultNetwork:Cidr ({range.Subnet}).");
            foreach (var dns in d.Dns.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                if (!IsAddress(dns)) errors.Add($"Networking:DefaultNetwork:Dns = '{d.Dns}' is not accepted; accepted values: IPv4 addresses separated by commas.");
        }
        catch (Ranges.AddressRangeException e)
        {
            errors.Add($"Networking:DefaultNetwork:{(e.Field == "first" ? "First" : "Cidr")} is not accepted: {e.Message} Accepted values: Cidr a network such as 10.0.2.0/24, First an address inside it or empty.");
        }
    }
}
