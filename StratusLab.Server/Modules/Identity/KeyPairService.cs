using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;

namespace StratusLab.Server.Modules.Identity;

/// <summary>Key pairs (see <see cref="IKeyPairs"/>): validation and ownership once, for REST and EC2 alike.</summary>
internal sealed class KeyPairService(KeyPairStore store) : IKeyPairs
{
    public Task<KeyPair?> FindAsync(long userId, string name, CancellationToken ct = default) => store.FindAsync(userId, name, ct);

    public Task<KeyPair?> DefaultOfAsync(long userId, CancellationToken ct = default) => store.DefaultOfAsync(userId, ct);

    public Task<IReadOnlyList<KeyPair>> ListAsync(Caller caller, CancellationToken ct = default) => store.ListAsync(caller.UserId);

    public async Task<KeyPair> ImportAsync(Caller caller, string name, string publicKey, bool makeDefault = false, CancellationToken ct = default)
    {
        Validate.Name(name, "name");
        if (string.IsNullOrWhiteSpace(publicKey))
            throw new InvalidInputException("publicKey", "'publicKey' is missing; give the contents of a .pub file (ssh-keygen -t ed25519 makes one).");
        if (publicKey.Length > 16 * 1024)
            throw new InvalidInputException("publicKey", "'publicKey' is longer than 16 KiB; give one OpenSSH public key line.");
        var parsed = SshPublicKeys.Parse(publicKey, out var error)
            ?? throw new InvalidInputException("publicKey", $"'publicKey' is not an OpenSSH public key: {error}.");
        return await InsertAsync(caller, name, parsed.Line, parsed.Fingerprint, "imported", makeDefault);
    }

    public async Task<GeneratedKeyPair> GenerateAsync(Caller caller, string name, CancellationToken ct = default)
    {
        Validate.Name(name, "name");
        using var rsa = RSA.Create(2048);
        var line = $"ssh-rsa {Convert.ToBase64String(SshRsaBlob(rsa.ExportParameters(false)))} {name}";
        var parsed = SshPublicKeys.Parse(line, out var error) ?? throw new InvalidOperationException($"generated an invalid key: {error}");
        var key = await InsertAsync(caller, name, parsed.Line, parsed.Fingerprint, "generated", makeDefault: false);
        return new GeneratedKeyPair(key, rsa.ExportRSAPrivateKeyPem());
    }

    public async Task<KeyPair> MakeDefaultAsync(Caller caller, string name, CancellationToken ct = default)
    {
        if (!await store.SetDefaultAsync(caller.UserId, name)) throw Missing(name);
        return (await store.FindAsync(caller.UserId, name, ct))!;
    }

    public async Task DeleteAsync(Caller caller, string name, CancellationToken ct = default)
    {
        if (!await store.DeleteAsync(caller.UserId, name)) throw Missing(name);
    }

    async Task<KeyPair> InsertAsync(Caller caller, string name, string line, string fingerprint, string origin, bool makeDefault)
    {
        if (!await store.InsertAsync(caller.UserId, name, line, fingerprint, origin, makeDefault))
            throw new ConflictException($"You already have a key named '{name}'; delete it first (DELETE /api/v1/keys/{name}) or choose another name.");
        return (await store.FindAsync(caller.UserId, name))!;
    }

    public static NotFoundException Missing(string name) =>
        new($"Key '{Validate.Trim(name)}' (list yours with GET /api/v1/keys or 'stratuslab describe-keys')");

    /// <summary>The OpenSSH wire form of an RSA public key: string "ssh-rsa", mpint e, mpint n.</summary>
    static byte[] SshRsaBlob(RSAParameters p)
    {
        using var blob = new MemoryStream();
        void Write(byte[] data)
        {
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(length, (uint)data.Length);
            blob.Write(length);
            blob.Write(data);
        }
        byte[] MpInt(byte[] magnitude) => magnitude[0] >= 0x80 ? [0, .. magnitude] : magnitude;
        Write(Encoding.ASCII.GetBytes("ssh-rsa"));
        Write(MpInt(p.Exponent!));
        Write(MpInt(p.Modulus!));
        return blob.ToArray();
    }
}
