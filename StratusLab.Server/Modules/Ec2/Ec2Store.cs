using System.Data;
using System.Security.Cryptography;
using Dapper;
using StratusLab.Server.Platform.Data;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>The kinds of resource that get an AWS-shaped id, with their prefixes.</summary>
internal enum Ec2Kind { Instance, Volume, Snapshot, Image, SecurityGroup, Vpc, Subnet }

internal sealed record Ec2Id(string AwsId, Ec2Kind Kind, string NativeId);

/// <summary>A RunInstances ClientToken to keep with its launch (the reservation and the request's fingerprint).</summary>
internal sealed record ClientTokenRecord(long OwnerId, string Token, string ReservationId, string RequestHash);

internal sealed record ClientTokenRow(string ReservationId, IReadOnlyList<string> InstanceIds, string RequestHash);

/// <summary>The EC2 door's SQL (tables ec2_*): stored ids, tags and client tokens.</summary>
internal sealed class Ec2Store(Store store)
{
    /// <summary>Above this many ids a lookup reads the whole table once instead of binding the ids.</summary>
    const int ScanAbove = 200;

    public static string Prefix(Ec2Kind kind) => kind switch
    {
        Ec2Kind.Instance => "i-",
        Ec2Kind.Volume => "vol-",
        Ec2Kind.Snapshot => "snap-",
        Ec2Kind.Image => "ami-",
        Ec2Kind.Vpc => "vpc-",
        Ec2Kind.Subnet => "subnet-",
        _ => "sg-",
    };

    public static string KindName(Ec2Kind kind) => kind switch
    {
        Ec2Kind.Instance => "instance",
        Ec2Kind.Volume => "volume",
        Ec2Kind.Snapshot => "snapshot",
        Ec2Kind.Image => "image",
        Ec2Kind.Vpc => "vpc",
        Ec2Kind.Subnet => "subnet",
        _ => "security-group",
    };

    static Ec2Kind ParseKind(string text) => text switch
    {
        "instance" => Ec2Kind.Instance,
        "volume" => Ec2Kind.Volume,
        "snapshot" => Ec2Kind.Snapshot,
        "image" => Ec2Kind.Image,
        "vpc" => Ec2Kind.Vpc,
        "subnet" => Ec2Kind.Subnet,
        _ => Ec2Kind.SecurityGroup,
    };

    /// <summary>The kind an AWS id's prefix names, or null.</summary>
    public static Ec2Kind? KindOf(string awsId) =>
        Enum.GetValues<Ec2Kind>().Cast<Ec2Kind?>().FirstOrDefault(k => awsId.StartsWith(Prefix(k!.Value), StringComparison.Ordinal)
            && awsId.Length == Prefix(k.Value).Length + 17 && awsId[Prefix(k.Value).Length..].All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f'));

    /// <summary>The stored ids of these native ids, allocating (once, for good) those that have none yet.</summary>
    public async Task<IReadOnlyDictionary<string, string>> IdsForAsync(Ec2Kind kind, IReadOnlyCollection<string> nativeIds)
    {
        if (nativeIds.Count == 0) return new Dictionary<string, string>();
        var kindName = KindName(kind);
        var found = await ReadAsync(kind, nativeIds);
        var missing = nativeIds.Where(n => !found.ContainsKey(n)).Distinct().ToList();
        if (missing.Count == 0) return found;
        await store.WriteAsync(async (c, tx) =>
        {
            foreach (var native in missing)
            {
                var awsId = Prefix(kind) + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(9))[..17];
                await c.ExecuteAsync("""
                    INSERT INTO ec2_ids (aws_id, kind, native_id, created_at) VALUES (@awsId, @kindName, @native, @now)
                    ON CONFLICT (kind, native_id) DO NOTHING
                    """, new { awsId, kindName, native, now = DateTimeOffset.UtcNow }, tx);
            }
        });
        return await ReadAsync(kind, nativeIds);
    }

    /// <summary>
    /// Records a RunInstances launch inside the launch's own transaction (<paramref name="tx"/>): an i- id for each new
    /// instance, the TagSpecifications' tags on each, and the client token, in a few multi-row statements. New
    /// instances have no id yet (instance ids are never reused), so nothing is read back.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, string>> RecordLaunchAsync(IDbTransaction tx, IReadOnlyList<long> instanceIds,
        IReadOnlyList<KeyValuePair<string, string>> tags, ClientTokenRecord? token)
    {
        var c = tx.Connection!;
        var now = DateTimeOffset.UtcNow;
        var ids = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var id in instanceIds)
            ids[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Prefix(Ec2Kind.Instance) + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(9))[..17];
        // SQLite binds at most 32,766 parameters per statement: 4 per id row, 3 per tag row, 200 rows at a time.
        foreach (var chunk in ids.Chunk(200))
        {
            var parameters = new DynamicParameters(new { kind = KindName(Ec2Kind.Instance), now });
            var values = new List<string>(chunk.Length);
            for (var n = 0; n < chunk.Length; n++)
            {
                parameters.Add("a" + n, chunk[n].Value);
                parameters.Add("n" + n, chunk[n].Key);
                values.Add($"(@a{n}, @kind, @n{n}, @now)");
            }
            await c.ExecuteAsync($"INSERT INTO ec2_ids (aws_id, kind, native_id, created_at) VALUES {string.Join(", ", values)}", parameters, tx);
        }
        var tagRows = ids.Values.SelectMany(awsId => tags.Select(t => (awsId, t.Key, t.Value))).ToList();
        foreach (var chunk in tagRows.Chunk(200))
        {
            var parameters = new DynamicParameters();
            var values = new List<string>(chunk.Length);
            for (var n = 0; n < chunk.Length; n++)
            {
                parameters.Add("i" + n, chunk[n].awsId);
                parameters.Add("k" + n, chunk[n].Key);
                parameters.Add("v" + n, chunk[n].Value);
                values.Add($"(@i{n}, @k{n}, @v{n})");
            }
            await c.ExecuteAsync($"INSERT INTO ec2_tags (aws_id, key, value) VALUES {string.Join(", ", values)} ON CONFLICT (aws_id, key) DO UPDATE SET value = excluded.value",
                parameters, tx);
        }
        if (token is not null)
            await c.ExecuteAsync("""
                INSERT INTO ec2_client_tokens (owner_id, token, reservation_id, instance_ids, request_hash, created_at)
                VALUES (@OwnerId, @Token, @ReservationId, @ids, @RequestHash, @now)
                """, new { token.OwnerId, token.Token, token.ReservationId, ids = string.Join(',', ids.Values), token.RequestHash, now }, tx);
        return ids;
    }

    /// <summary>The stored ids of those native ids that have one (allocating none).</summary>
    public async Task<IReadOnlyDictionary<string, string>> KnownIdsAsync(Ec2Kind kind, IReadOnlyCollection<string> nativeIds) =>
        nativeIds.Count == 0 ? new Dictionary<string, string>() : await ReadAsync(kind, nativeIds);

    public async Task<IReadOnlyDictionary<string, string>> DescriptionsOfAsync(IReadOnlyCollection<string> awsIds)
    {
        if (awsIds.Count == 0) return new Dictionary<string, string>();
        await using var connection = await store.OpenAsync();
        var rows = await connection.QueryAsync<(string AwsId, string Description)>(
            "SELECT aws_id, description FROM ec2_descriptions WHERE aws_id IN @awsIds", new { awsIds });
        return rows.ToDictionary(r => r.AwsId, r => r.Description, StringComparer.Ordinal);
    }

    public Task SetDescriptionAsync(string awsId, string description) =>
        store.WriteAsync((c, tx) => c.ExecuteAsync("""
            INSERT INTO ec2_descriptions (aws_id, description) VALUES (@awsId, @description)
            ON CONFLICT (aws_id) DO UPDATE SET description = excluded.description
            """, new { awsId, description }, tx));

    public async Task<string> IdForAsync(Ec2Kind kind, string nativeId) => (await IdsForAsync(kind, [nativeId]))[nativeId];

    async Task<Dictionary<string, string>> ReadAsync(Ec2Kind kind, IReadOnlyCollection<string> nativeIds)
    {
        await using var connection = await store.OpenAsync();
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (nativeIds.Count > ScanAbove)
        {
            // Listings of thousands: one scan of the kind beats thousands of bound parameters.
            var wanted = nativeIds as IReadOnlySet<string> ?? nativeIds.ToHashSet(StringComparer.Ordinal);
            foreach (var (awsId, native) in await connection.QueryAsync<(string, string)>(
                         "SELECT aws_id, native_id FROM ec2_ids WHERE kind = @kind", new { kind = KindName(kind) }))
                if (wanted.Contains(native)) result[native] = awsId;
            return result;
        }
        foreach (var chunk in nativeIds.Distinct().Chunk(500))
            foreach (var (awsId, native) in await connection.QueryAsync<(string, string)>(
                         "SELECT aws_id, native_id FROM ec2_ids WHERE kind = @kind AND native_id IN @chunk", new { kind = KindName(kind), chunk }))
                result[native] = awsId;
        return result;
    }

    /// <summary>The native ids behind AWS ids (unknown ones are left out).</summary>
    public async Task<IReadOnlyList<Ec2Id>> ResolveAsync(IReadOnlyCollection<string> awsIds)
    {
        if (awsIds.Count == 0) return [];
        await using var connection = await store.OpenAsync();
        var rows = await connection.QueryAsync<(string AwsId, string Kind, string Native)>(
            "SELECT aws_id, kind, native_id FROM ec2_ids WHERE aws_id IN @awsIds", new { awsIds });
        return rows.Select(r => new Ec2Id(r.AwsId, ParseKind(r.Kind), r.Native)).ToList();
    }

    public async Task<IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>> TagsOfAsync(IReadOnlyCollection<string> awsIds)
    {
        var result = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        if (awsIds.Count == 0) return result;
        await using var connection = await store.OpenAsync();
        if (awsIds.Count > ScanAbove)
        {
            var wanted = awsIds as IReadOnlySet<string> ?? awsIds.ToHashSet(StringComparer.Ordinal);
            var all = await connection.QueryAsync<(string AwsId, string Key, string Value)>("SELECT aws_id, key, value FROM ec2_tags ORDER BY key");
            foreach (var group in all.Where(t => wanted.Contains(t.AwsId)).GroupBy(t => t.AwsId))
                result[group.Key] = group.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
            return result;
        }
        foreach (var chunk in awsIds.Chunk(500))
            foreach (var group in (await connection.QueryAsync<(string AwsId, string Key, string Value)>(
                         "SELECT aws_id, key, value FROM ec2_tags WHERE aws_id IN @chunk ORDER BY key", new { chunk })).GroupBy(t => t.AwsId))
                result[group.Key] = group.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
        return result;
    }

    public Task SetTagsAsync(IReadOnlyCollection<string> awsIds, IReadOnlyList<KeyValuePair<string, string>> tags) =>
        store.WriteAsync(async (c, tx) =>
        {
            foreach (var id in awsIds)
                foreach (var (key, value) in tags)
                    await c.ExecuteAsync("""
                        INSERT INTO ec2_tags (aws_id, key, value) VALUES (@id, @key, @value)
                        ON CONFLICT (aws_id, key) DO UPDATE SET value = excluded.value
                        """, new { id, key, value }, tx);
        });

    /// <summary>Deletes tags by key; a tag given with a value is deleted only when its value matches.</summary>
    public Task DeleteTagsAsync(IReadOnlyCollection<string> awsIds, IReadOnlyList<KeyValuePair<string, string?>> tags) =>
        store.WriteAsync(async (c, tx) =>
        {
            foreach (var id in awsIds)
            {
                if (tags.Count == 0)
                    await c.ExecuteAsync("DELETE FROM ec2_tags WHERE aws_id = @id", new { id }, tx);
                foreach (var (key, value) in tags)
                    await c.ExecuteAsync("DELETE FROM ec2_tags WHERE aws_id = @id AND key = @key AND (@value IS NULL OR value = @value)",
                        new { id, key, value }, tx);
            }
        });

    /// <summary>Whether a text is a security group rule id: sgr- and 17 hex digits.</summary>
    public static bool IsRuleId(string awsId) =>
        awsId.StartsWith("sgr-", StringComparison.Ordinal) && awsId.Length == 21 && awsId[4..].All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    /// <summary>The sgr- ids of these rule ids, allocating (once, for good) those that have none yet.</summary>
    public async Task<IReadOnlyDictionary<long, string>> RuleIdsForAsync(IReadOnlyCollection<long> ruleIds)
    {
        if (ruleIds.Count == 0) return new Dictionary<long, string>();
        var found = await ReadRuleIdsAsync(ruleIds);
        var missing = ruleIds.Where(r => !found.ContainsKey(r)).Distinct().ToList();
        if (missing.Count == 0) return found;
        await store.WriteAsync(async (c, tx) =>
        {
            foreach (var ruleId in missing)
                await c.ExecuteAsync("""
                    INSERT INTO ec2_rule_ids (aws_id, rule_id, created_at) VALUES (@awsId, @ruleId, @now) ON CONFLICT (rule_id) DO NOTHING
                    """, new { awsId = "sgr-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(9))[..17], ruleId, now = DateTimeOffset.UtcNow }, tx);
        });
        return await ReadRuleIdsAsync(ruleIds);
    }

    async Task<Dictionary<long, string>> ReadRuleIdsAsync(IReadOnlyCollection<long> ruleIds)
    {
        await using var connection = await store.OpenAsync();
        var result = new Dictionary<long, string>();
        foreach (var chunk in ruleIds.Distinct().Chunk(500))
            foreach (var (awsId, ruleId) in await connection.QueryAsync<(string, long)>(
                         "SELECT aws_id, rule_id FROM ec2_rule_ids WHERE rule_id IN @chunk", new { chunk }))
                result[ruleId] = awsId;
        return result;
    }

    /// <summary>The rule ids behind sgr- ids (unknown ones are left out).</summary>
    public async Task<IReadOnlyDictionary<string, long>> ResolveRuleIdsAsync(IReadOnlyCollection<string> awsIds)
    {
        if (awsIds.Count == 0) return new Dictionary<string, long>();
        await using var connection = await store.OpenAsync();
        var rows = await connection.QueryAsync<(string AwsId, long RuleId)>("SELECT aws_id, rule_id FROM ec2_rule_ids WHERE aws_id IN @awsIds", new { awsIds });
        return rows.ToDictionary(r => r.AwsId, r => r.RuleId, StringComparer.Ordinal);
    }

    public Task SetSnapshotSourceAsync(string snapshotId, string volumeId) =>
        store.WriteAsync((c, tx) => c.ExecuteAsync("""
            INSERT INTO ec2_snapshot_sources (snapshot_id, volume_id) VALUES (@snapshotId, @volumeId)
            ON CONFLICT (snapshot_id) DO UPDATE SET volume_id = excluded.volume_id
            """, new { snapshotId, volumeId }, tx));

    /// <summary>The source volume ids of snapshots that are copies (snap- → vol-).</summary>
    public async Task<IReadOnlyDictionary<string, string>> SnapshotSourcesAsync(IReadOnlyCollection<string> snapshotIds)
    {
        if (snapshotIds.Count == 0) return new Dictionary<string, string>();
        await using var connection = await store.OpenAsync();
        var rows = await connection.QueryAsync<(string Snapshot, string Volume)>(
            "SELECT snapshot_id, volume_id FROM ec2_snapshot_sources WHERE snapshot_id IN @snapshotIds", new { snapshotIds });
        return rows.ToDictionary(r => r.Snapshot, r => r.Volume, StringComparer.Ordinal);
    }

    public async Task<ClientTokenRow?> FindClientTokenAsync(long ownerId, string token)
    {
        await using var connection = await store.OpenAsync();
        var row = await connection.QuerySingleOrDefaultAsync<(string Reservation, string Ids, string Hash)?>(
            "SELECT reservation_id, instance_ids, request_hash FROM ec2_client_tokens WHERE owner_id = @ownerId AND token = @token", new { ownerId, token });
        return row is { } r ? new ClientTokenRow(r.Reservation, r.Ids.Split(',', StringSplitOptions.RemoveEmptyEntries), r.Hash) : null;
    }
}
