using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using StratusLab.Server.Modules.Pdisk;
using StratusLab.Server.Modules.Pdisk.Drivers;
using StratusLab.Server.Modules.Pdisk.Sharing;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Tests.Modules.Pdisk;

/// <summary>Volume backends and sharings are keyed services under their configuration names.</summary>
public class PdiskServicesTests
{
    static IServiceCollection Registrations() => new ServiceCollection().AddPdiskModule(new ConfigurationBuilder().Build());

    [Test]
    public void Every_backend_and_sharing_name_has_exactly_one_keyed_registration()
    {
        var services = Registrations();
        foreach (var name in PdiskModule.Backends)
            Assert.That(services.Count(d => d.IsKeyedService && d.ServiceType == typeof(IVolumeDriver) && Equals(d.ServiceKey, name)), Is.EqualTo(1), name);
        foreach (var name in PdiskModule.Sharings)
            Assert.That(services.Count(d => d.IsKeyedService && d.ServiceType == typeof(IVolumeSharing) && Equals(d.ServiceKey, name)), Is.EqualTo(1), name);
    }

    [Test]
    public void An_unknown_name_is_refused_with_the_accepted_values()
    {
        var services = new ServiceCollection();
        services.AddKeyedSingleton<IVolumeSharing, LocalSharing>("local");
        using var provider = services.BuildServiceProvider();
        Assert.That(provider.VolumeSharing("local"), Is.InstanceOf<LocalSharing>());
        var sharing = Assert.Throws<InvalidInputException>(() => provider.VolumeSharing("nbd"));
        Assert.That((sharing!.Field, sharing.Message), Is.EqualTo(("sharing", "'sharing' = 'nbd' is not accepted; accepted values: local, iscsi.")));
        var driver = Assert.Throws<InvalidOperationException>(() => provider.VolumeDriver("nfs"));
        Assert.That(driver!.Message, Is.EqualTo("no volume driver named 'nfs'; accepted values: file, lvm"));
    }
}
