// Types that break the module boundaries on purpose, so the architecture test can show it catches them.
// They live in the test assembly only; the server never loads them.
#pragma warning disable CS0169, CS0649

namespace StratusLab.Server.Modules.Compute
{
    /// <summary>A Compute class taking other modules' internals through their short namespaces.</summary>
    internal sealed class ArchitectureProbe
    {
        readonly Images.ImageCache? _cache;
        readonly Pdisk.VolumeLifecycle? _volumes;
        readonly Networking.NetworkingStore? _networks;
    }

    /// <summary>A Compute class using another module's Contracts only: allowed.</summary>
    internal sealed class ContractsOnlyProbe
    {
        readonly Images.Contracts.IImageCache? _cache;
    }
}

namespace StratusLab.Server.Platform
{
    /// <summary>Platform using a module.</summary>
    internal sealed class ArchitectureProbe
    {
        readonly Modules.Identity.Contracts.Caller? _caller;
    }
}

namespace StratusLab.Server.Cli
{
    /// <summary>The CLI reaching into a module instead of calling the server.</summary>
    internal sealed class ArchitectureProbe
    {
        readonly Modules.Identity.IdentityStore? _store;
    }
}
