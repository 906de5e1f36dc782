namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>A user's named SSH public key. <paramref name="Origin"/>: imported (by the user) or generated (by the server).</summary>
public sealed record KeyPair(string Name, string PublicKey, string Fingerprint, string Origin, bool IsDefault, DateTimeOffset CreatedAt);

/// <summary>Users' stored key pairs, for other modules (Compute resolves a request's key name through it).</summary>
public interface IKeyPairs
{
    /// <summary>The user's key pair of that name (case-insensitive), or null.</summary>
    Task<KeyPair?> FindAsync(long userId, string name, CancellationToken ct = default);

    /// <summary>The user's default key pair (the first imported, unless another was made the default), or null when the user has none.</summary>
    Task<KeyPair?> DefaultOfAsync(long userId, CancellationToken ct = default);
}
