namespace StratusLab.Server.Modules.Identity.Contracts;

/// <summary>A user's named SSH public key. <paramref name="Origin"/>: imported (by the user) or generated (by the server).</summary>
public sealed record KeyPair(string Name, string PublicKey, string Fingerprint, string Origin, bool IsDefault, DateTimeOffset CreatedAt);

/// <summary>A key pair the server generated: the private key (PEM) is returned once and never stored.</summary>
public sealed record GeneratedKeyPair(KeyPair Key, string PrivateKeyPem);

/// <summary>
/// Users' stored key pairs: the application service every front door uses (REST /api/v1/keys, EC2 key pair actions),
/// and the look-ups Compute resolves a request's key name with. A user sees and changes only their own keys.
/// </summary>
public interface IKeyPairs
{
    Task<IReadOnlyList<KeyPair>> ListAsync(Caller caller, CancellationToken ct = default);

    /// <summary>Stores an OpenSSH public key under a name (400 when it is not one, 409 when the name is taken).</summary>
    Task<KeyPair> ImportAsync(Caller caller, string name, string publicKey, bool makeDefault = false, CancellationToken ct = default);

    /// <summary>Generates an RSA 2048 key pair, stores its public half under the name and returns the private key once.</summary>
    Task<GeneratedKeyPair> GenerateAsync(Caller caller, string name, CancellationToken ct = default);

    /// <summary>Makes the key the one requests get when they name none (404 when there is no such key).</summary>
    Task<KeyPair> MakeDefaultAsync(Caller caller, string name, CancellationToken ct = default);

    /// <summary>Deletes the key (404 when there is no such key).</summary>
    Task DeleteAsync(Caller caller, string name, CancellationToken ct = default);

    /// <summary>The user's key pair of that name (case-insensitive), or null.</summary>
    Task<KeyPair?> FindAsync(long userId, string name, CancellationToken ct = default);

    /// <summary>The user's default key pair (the first imported, unless another was made the default), or null when the user has none.</summary>
    Task<KeyPair?> DefaultOfAsync(long userId, CancellationToken ct = default);
}

/// <summary>Body of POST /api/v1/keys: import a public key under a name; <c>default</c> makes it the key requests get when they name none.</summary>
public sealed record ImportKeyRequest(string Name, string PublicKey, bool Default = false);
