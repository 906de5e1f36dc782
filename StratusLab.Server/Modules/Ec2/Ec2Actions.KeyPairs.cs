using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using StratusLab.Server.Modules.Identity.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>Key pairs: the same stored keys as REST /api/v1/keys (Identity's <see cref="IKeyPairs"/>).</summary>
internal sealed partial class Ec2Actions
{
    void RegisterKeyPairActions()
    {
        Register("CreateKeyPair", CreateKeyPair);
        Register("ImportKeyPair", ImportKeyPair);
        Register("DescribeKeyPairs", DescribeKeyPairs);
        Register("DeleteKeyPair", DeleteKeyPair);
    }

    /// <summary>A stable key-… id: derived from the owner, the name and the creation time, which never change.</summary>
    static string KeyPairIdOf(long userId, KeyPair key) =>
        "key-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{userId}:{key.Name}:{key.CreatedAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}")))[..17];

    async Task<IEnumerable<XElement>> CreateKeyPair(Ec2Request request, CancellationToken ct)
    {
        var name = request.Require("KeyName");
        if (request.Get("KeyType") is { } type && type != "rsa")
            throw Ec2Exception.InvalidParameterValue("KeyType", type, "This server generates rsa key pairs; import an ed25519 key with ImportKeyPair.");
        if (request.Get("KeyFormat") is { } format && format != "pem")
            throw Ec2Exception.InvalidParameterValue("KeyFormat", format, "This server returns private keys as pem.");
        var generated = await KeyCallAsync(name, () => _keyPairs.GenerateAsync(request.Caller, name, ct));
        var tags = Ec2NetworkingShapes.TagSpecifications(request, "key-pair");
        return
        [
            E("keyName", generated.Key.Name), E("keyFingerprint", generated.Key.Fingerprint), E("keyMaterial", generated.PrivateKeyPem),
            E("keyPairId", KeyPairIdOf(request.Caller.UserId, generated.Key)), Ec2NetworkingShapes.TagSet(Ns, tags),
        ];
    }

    async Task<IEnumerable<XElement>> ImportKeyPair(Ec2Request request, CancellationToken ct)
    {
        var name = request.Require("KeyName");
        var material = request.Require("PublicKeyMaterial");
        string line;
        try { line = Encoding.UTF8.GetString(Convert.FromBase64String(material)); }
        catch (FormatException) { throw new Ec2Exception("InvalidKey.Format", "Key is not in valid OpenSSH public key format: PublicKeyMaterial is not base64."); }
        KeyPair key;
        try { key = await KeyCallAsync(name, () => _keyPairs.ImportAsync(request.Caller, name, line, false, ct)); }
        catch (InvalidInputException e) when (e.Field == "publicKey")
        {
            throw new Ec2Exception("InvalidKey.Format", $"Key is not in valid OpenSSH public key format: {e.Message}");
        }
        return [E("keyName", key.Name), E("keyFingerprint", key.Fingerprint), E("keyPairId", KeyPairIdOf(request.Caller.UserId, key))];
    }

    async Task<IEnumerable<XElement>> DescribeKeyPairs(Ec2Request request, CancellationToken ct)
    {
        var keys = await _keyPairs.ListAsync(request.Caller, ct);
        var names = request.List("KeyName");
        var ids = request.List("KeyPairId");
        string IdOf(KeyPair k) => KeyPairIdOf(request.Caller.UserId, k);
        if (names.FirstOrDefault(n => keys.All(k => !string.Equals(k.Name, n, StringComparison.OrdinalIgnoreCase))) is { } missing)
            throw new Ec2Exception("InvalidKeyPair.NotFound", $"The key pair '{missing}' does not exist");
        if (ids.FirstOrDefault(i => keys.All(k => IdOf(k) != i)) is { } missingId)
            throw new Ec2Exception("InvalidKeyPair.NotFound", $"The key pair '{missingId}' does not exist");
        var filters = request.Filters();
        var selected = keys
            .Where(k => names.Count == 0 || names.Contains(k.Name, StringComparer.OrdinalIgnoreCase))
            .Where(k => ids.Count == 0 || ids.Contains(IdOf(k)))
            .Where(k => filters.All(f => Ec2NetworkingShapes.Matches(f, null, name => name switch
            {
                "key-name" => [k.Name],
                "fingerprint" => [k.Fingerprint],
                "key-pair-id" => [IdOf(k)],
                _ => null,
            }))).ToList();
        return
        [
            Set("keySet", selected.Select(k => Item(
                E("keyPairId", IdOf(k)), E("keyName", k.Name), E("keyFingerprint", k.Fingerprint),
                E("keyType", k.PublicKey.StartsWith("ssh-ed25519", StringComparison.Ordinal) ? "ed25519" : "rsa"),
                E("createTime", k.CreatedAt), E("publicKey", k.PublicKey), Ec2NetworkingShapes.TagSet(Ns, [])))),
        ];
    }

    async Task<IEnumerable<XElement>> DeleteKeyPair(Ec2Request request, CancellationToken ct)
    {
        var name = request.Get("KeyName");
        if (name is null && request.Get("KeyPairId") is { } id)
            name = (await _keyPairs.ListAsync(request.Caller, ct)).FirstOrDefault(k => KeyPairIdOf(request.Caller.UserId, k) == id)?.Name;
        if (name is null && request.Get("KeyPairId") is null) throw Ec2Exception.MissingParameter("KeyName");
        // As AWS: deleting a key pair that does not exist succeeds.
        if (name is not null)
        {
            try { await _keyPairs.DeleteAsync(request.Caller, name, ct); }
            catch (NotFoundException) { }
        }
        return [E("return", true)];
    }

    static async Task<T> KeyCallAsync<T>(string name, Func<Task<T>> call)
    {
        try { return await call(); }
        catch (ConflictException) { throw new Ec2Exception("InvalidKeyPair.Duplicate", $"The keypair '{name}' already exists."); }
        catch (InvalidInputException e) when (e.Field == "name")
        {
            throw Ec2Exception.InvalidParameterValue("KeyName", name, e.Message);
        }
    }
}
