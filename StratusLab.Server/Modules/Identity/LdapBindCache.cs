using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace StratusLab.Server.Modules.Identity;

/// <summary>
/// Successful LDAP binds remembered for Identity:Ldap:CacheSeconds, so a client that signs in often does not hit the
/// directory each time. Only a keyed hash of the password is kept (HMAC-SHA256 with a per-process random key); a
/// different password misses the cache and goes to the directory.
/// </summary>
internal sealed class LdapBindCache(IdentityOptions identity, TimeProvider clock)
{
    readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    readonly ConcurrentDictionary<string, (byte[] Hash, long UserId, DateTimeOffset Expires)> _entries = new(StringComparer.Ordinal);
    const int MaxEntries = 10_000;

    public long? Lookup(string user, string password)
    {
        if (!_entries.TryGetValue(user, out var e)) return null;
        if (e.Expires <= clock.GetUtcNow()) { _entries.TryRemove(user, out _); return null; }
        return CryptographicOperations.FixedTimeEquals(e.Hash, Hash(user, password)) ? e.UserId : null;
    }

    public void Forget(string user) => _entries.TryRemove(user, out _);

    public void Remember(string user, string password, long userId)
    {
        if (identity.Ldap.CacheSeconds <= 0) return;
        var now = clock.GetUtcNow();
        if (_entries.Count >= MaxEntries)
            foreach (var (name, old) in _entries)
                if (old.Expires <= now) _entries.TryRemove(name, out _);
        if (_entries.Count >= MaxEntries) return;
        _entries[user] = (Hash(user, password), userId, now.AddSeconds(identity.Ldap.CacheSeconds));
    }

    byte[] Hash(string user, string password) => HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(user + "\0" + password));
}
