using System.Security.Cryptography;
using System.Text;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Platform.Security;

/// <summary>
/// Encrypts secrets the server must be able to read back (an EC2 secret key: SigV4 needs it to verify a signature)
/// with AES-256-GCM under a server key kept in &lt;data-dir&gt;/server.key (mode 0600, made on first use). A copy
/// of the store without that file reveals none of them.
/// </summary>
public sealed class SecretBox(ServerOptions options)
{
    const string Version = "v1:";
    readonly Lazy<byte[]> _key = new(() => LoadOrCreateKey(Path.Combine(options.DataDir, "server.key")));

    public string Seal(string plaintext)
    {
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var data = Encoding.UTF8.GetBytes(plaintext);
        var sealedBytes = new byte[nonce.Length + AesGcm.TagByteSizes.MaxSize + data.Length];
        using var aes = new AesGcm(_key.Value, AesGcm.TagByteSizes.MaxSize);
        aes.Encrypt(nonce, data, sealedBytes.AsSpan(nonce.Length + AesGcm.TagByteSizes.MaxSize), sealedBytes.AsSpan(nonce.Length, AesGcm.TagByteSizes.MaxSize));
        nonce.CopyTo(sealedBytes, 0);
        return Version + Convert.ToBase64String(sealedBytes);
    }

    /// <summary>The plaintext, or throws <see cref="CryptographicException"/> if the value was not sealed with this server's key.</summary>
    public string Open(string sealedText)
    {
        if (!sealedText.StartsWith(Version, StringComparison.Ordinal))
            throw new CryptographicException("the value was not sealed by this server");
        var bytes = Convert.FromBase64String(sealedText[Version.Length..]);
        int nonceSize = AesGcm.NonceByteSizes.MaxSize, tagSize = AesGcm.TagByteSizes.MaxSize;
        if (bytes.Length < nonceSize + tagSize) throw new CryptographicException("the sealed value is truncated");
        var plain = new byte[bytes.Length - nonceSize - tagSize];
        using var aes = new AesGcm(_key.Value, tagSize);
        aes.Decrypt(bytes.AsSpan(0, nonceSize), bytes.AsSpan(nonceSize + tagSize), bytes.AsSpan(nonceSize, tagSize), plain);
        return Encoding.UTF8.GetString(plain);
    }

    static byte[] LoadOrCreateKey(string path)
    {
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            if (existing.Length != 32) throw new CryptographicException($"{path} is not a 32-byte server key; restore it from a backup (secrets sealed with it can't be read without it).");
            return existing;
        }
        var key = RandomNumberGenerator.GetBytes(32);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            stream.Write(key);
            stream.Flush(flushToDisk: true);
        }
        try { File.Move(temp, path, overwrite: false); }
        catch (IOException) when (File.Exists(path)) { File.Delete(temp); return LoadOrCreateKey(path); }
        return key;
    }
}
