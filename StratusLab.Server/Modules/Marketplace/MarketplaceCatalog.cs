using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Modules.Marketplace.Mail;
using StratusLab.Server.Modules.Marketplace.Metadata;
using StratusLab.Server.Platform.Configuration;
using StratusLab.Server.Platform.Contracts;
using StratusLab.Server.Platform.Http;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Modules.Marketplace;

/// <summary>The outcome of an accepted upload: published at once, or waiting for the endorser's confirmation.</summary>
internal sealed record UploadResult(MetadataEntry Entry, bool Published, string? ConfirmationSentTo, string? MailError)
{
    public string Location => MarketplaceCatalog.EntryPath(Entry.Identifier, Entry.Endorser.Email, Entry.Created);
}

/// <summary>Accepts signed entries (verify, check, store, confirm endorsers), answers look-ups and signs the site's own images.</summary>
internal sealed class MarketplaceCatalog(
    MarketplaceStore store, SiteKey siteKey, IMailSender mail, ServerOptions options, MarketplaceOptions marketplace, TimeProvider clock, ILogger<MarketplaceCatalog> logger)
    : IMarketplaceCatalog
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) } };
    readonly SemaphoreSlim _siteRegistration = new(1, 1);

    public string SiteEndorserEmail => marketplace.SiteEndorserEmail;

    public Task<IReadOnlyList<MetadataEntry>> SearchAsync(string? text, int limit = 50, CancellationToken ct = default) =>
        QueryAsync(new EntryQuery(Text: string.IsNullOrWhiteSpace(text) ? null : text.Trim(), Limit: Math.Clamp(limit, 1, 500)));

    public static string EntryPath(string identifier, string email, DateTimeOffset created) =>
        $"/api/v1/marketplace/metadata/{identifier}/{Uri.EscapeDataString(email)}/{MetadataXml.Format(created)}";

    string Now() => MetadataXml.Format(clock.GetUtcNow());

    /// <summary>
    /// Verifies and stores an uploaded entry. <paramref name="identifier"/>, when given, must be the entry's (deprecation
    /// route); <paramref name="mustDeprecate"/> requires slterms:deprecated. <paramref name="baseUrl"/> makes confirmation links.
    /// </summary>
    public async Task<UploadResult> UploadAsync(byte[] xml, string? uploadedBy, string baseUrl, string? identifier = null, bool mustDeprecate = false,
        CancellationToken ct = default)
    {
        var doc = MetadataXml.Load(xml, marketplace.MaxEntryBytes);
        var signature = MetadataSignature.Verify(doc);
        var entry = MetadataXml.Parse(doc);
        MetadataSignature.CheckEndorser(entry.Endorser, signature.Certificate);
        var now = clock.GetUtcNow();
        if (entry.Created > now.AddMinutes(marketplace.MaxClockSkewMinutes))
            throw MetadataException.Invalid($"dcterms:created ({MetadataXml.Format(entry.Created)}) is in the future (server time {MetadataXml.Format(now)}); check the signing machine's clock and re-sign.");
        if (identifier is not null && entry.Identifier != identifier)
            throw MetadataException.Invalid($"The entry is for {entry.Identifier}, not {identifier}; deprecate the entry of the image named in the URL.");
        if (mustDeprecate && entry.Deprecated is null)
            throw MetadataException.Invalid("A deprecation must carry slterms:deprecated with the reason; use 'stratuslab deprecate-metadata ID --reason TEXT'.");

        var thumbprint = signature.Thumbprint;
        var whitelisted = await IsWhitelistedAsync(signature.Certificate, ct);
        var created = MetadataXml.Format(entry.Created);
        string? token = null;
        var (published, stored) = await store.Store.WriteAsync(async (c, tx) =>
        {
            var endorser = await store.FindEndorserAsync(c, tx, entry.Endorser.Email, thumbprint);
            long endorserId;
            var confirmed = whitelisted || endorser?.State == "confirmed";
            if (endorser is null)
                endorserId = await store.InsertEndorserAsync(c, tx, entry.Endorser.Email, thumbprint, entry.Endorser.Subject!, entry.Endorser.Issuer!,
                    Convert.ToBase64String(signature.Certificate.RawData), confirmed, whitelisted);
            else
            {
                endorserId = endorser.Id;
                if (whitelisted && endorser.State != "confirmed") await store.ConfirmEndorserAsync(c, tx, endorserId, whitelisted: true);
            }
            if (await store.EntryExistsAsync(c, tx, entry.Identifier, entry.Endorser.Email, created))
                throw new ConflictException($"An entry for {entry.Identifier} by {entry.Endorser.Email} created {created} is already stored; to change it, sign a new one (sign-metadata sets a new creation time).");
            var newest = await store.NewestCreatedAsync(c, tx, entry.Identifier, entry.Endorser.Email);
            if (newest is not null && string.CompareOrdinal(newest, created) > 0)
                throw new ConflictException($"This entry (created {created}) is older than the latest entry for {entry.Identifier} by {entry.Endorser.Email} (created {newest}); only newer entries are accepted. Re-sign it to give it a new creation time.");

            var stored = entry with { Status = confirmed ? StatusOf(entry, Now()) : EntryStatus.Pending };
            await store.InsertEntryAsync(c, tx, new EntryInsert(
                entry.Identifier, entry.Endorser.Email, created, endorserId, confirmed ? "published" : "pending",
                entry.Valid is { } v ? MetadataXml.Format(v) : null, entry.Deprecated, entry.Deprecated is null ? null : "endorser",
                entry.Deprecated is null ? null : now, entry.Sha1, string.Join(' ', entry.Checksums.Select(x => x.Value)),
                entry.Os, entry.OsArch, JsonSerializer.Serialize(entry, Json), xml, now, uploadedBy, entry.Tags, SearchText(entry)));
            if (confirmed)
                await store.RecomputeLatestAsync(c, tx, entry.Identifier, entry.Endorser.Email);
            else
            {
                token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
                await store.SetTokenAsync(c, tx, endorserId, TokenHash.Of(token));
            }
            return (confirmed, stored);
        }, ct);

        if (published)
        {
            logger.LogInformation("Marketplace entry {Identifier} by {Email} ({Created}) published", entry.Identifier, entry.Endorser.Email, created);
            return new UploadResult(stored, true, null, null);
        }
        var link = $"{baseUrl.TrimEnd('/')}/marketplace/confirm/{token}";
        try
        {
            await mail.SendAsync(entry.Endorser.Email, $"Confirm your entries in the {marketplace.Pages.Title}",
                $"""
                Hello,

                An entry for the image {entry.Identifier} ("{entry.Title}") was uploaded to the {marketplace.Pages.Title}
                at {baseUrl}, signed with a certificate for {entry.Endorser.Email}:
                  subject {entry.Endorser.Subject}
                  issuer  {entry.Endorser.Issuer}
                  SHA-256 fingerprint {thumbprint}

                It is not published until you confirm that this certificate is yours. To confirm, open:

                {link}

                If you did not upload it, ignore this mail: nothing is published without your confirmation.
                Only the link in the newest of these mails works.
                """.Replace("\r\n", "\n"), ct);
            return new UploadResult(stored, false, entry.Endorser.Email, null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Could not send the confirmation mail to {Email}", entry.Endorser.Email);
            return new UploadResult(stored, false, null, e.Message);
        }
    }

    async Task<bool> IsWhitelistedAsync(X509Certificate2 certificate, CancellationToken ct)
    {
        var sha256 = certificate.GetCertHashString(HashAlgorithmName.SHA256);
        var sha1 = certificate.GetCertHashString(HashAlgorithmName.SHA1);
        if (marketplace.WhitelistedCertificates.Any(w => w.Equals(sha256, StringComparison.OrdinalIgnoreCase) || w.Equals(sha1, StringComparison.OrdinalIgnoreCase)))
            return true;
        var site = await siteKey.GetAsync(ct);
        return site.RawData.AsSpan().SequenceEqual(certificate.RawData);
    }

    static string SearchText(MetadataEntry e) => string.Join(' ', new[]
    {
        e.Title, e.Description, e.Os, e.OsVersion, e.OsArch, e.Version, e.Creator, e.Publisher, e.Hypervisor, e.Format,
        e.Endorser.Email, e.Identifier, e.Type, e.Kind,
    }.Concat(e.Tags).Where(s => !string.IsNullOrEmpty(s)));

    /// <summary>Confirms the endorser certificate a mailed token belongs to and publishes its pending entries. Null for an unknown token.</summary>
    public async Task<(string Email, int Published)?> ConfirmAsync(string token, CancellationToken ct = default)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 200) return null;
        var hash = TokenHash.Of(token);
        return await store.Store.WriteAsync(async (c, tx) =>
        {
            var endorser = await store.FindEndorserByTokenAsync(c, tx, hash);
            if (endorser is null) return ((string, int)?)null;
            await store.ConfirmEndorserAsync(c, tx, endorser.Id, whitelisted: false);
            var pairs = await store.PublishPendingAsync(c, tx, endorser.Id);
            logger.LogInformation("Endorser {Email} confirmed; {Count} entr(ies) published", endorser.Email, pairs.Count);
            return (endorser.Email, pairs.Count);
        }, ct);
    }

    /// <summary>An administrator confirms every certificate of an endorser (when the mail cannot reach them).</summary>
    public async Task<int> ConfirmByAdminAsync(string email, CancellationToken ct = default)
    {
        return await store.Store.WriteAsync(async (c, tx) =>
        {
            var endorsers = await store.FindEndorsersByEmailAsync(c, tx, email);
            if (endorsers.Count == 0) throw new NotFoundException($"Endorser '{email}'");
            var published = 0;
            foreach (var endorser in endorsers)
            {
                await store.ConfirmEndorserAsync(c, tx, endorser.Id, whitelisted: false);
                published += (await store.PublishPendingAsync(c, tx, endorser.Id)).Count;
            }
            return published;
        }, ct);
    }

    public static EntryStatus StatusOf(MetadataEntry e, string now) =>
        e.Deprecated is not null ? EntryStatus.Deprecated
        : e.Valid is { } v && string.CompareOrdinal(MetadataXml.Format(v), now) <= 0 ? EntryStatus.Expired
        : EntryStatus.Valid;

    /// <summary>The entry a row holds, with its status now (and an admin's deprecation, if any).</summary>
    public MetadataEntry ToEntry(EntryRow row)
    {
        var entry = JsonSerializer.Deserialize<MetadataEntry>(row.EntryJson, Json)!;
        entry = entry with { Deprecated = row.Deprecated, DeprecatedBy = row.DeprecatedBy };
        return entry with { Status = row.State == "pending" ? EntryStatus.Pending : StatusOf(entry, Now()) };
    }

    public async Task<IReadOnlyList<MetadataEntry>> QueryAsync(EntryQuery query) =>
        (await store.QueryAsync(query, Now())).Select(ToEntry).ToList();

    public async Task<IReadOnlyList<EntryRow>> QueryRowsAsync(EntryQuery query) => await store.QueryAsync(query, Now());

    public async Task<MetadataEntry?> FindLatestValidAsync(string identifier, CancellationToken ct = default) =>
        (await FindEntriesAsync(identifier, ct)).FirstOrDefault(e => e.Status == EntryStatus.Valid);

    public async Task<IReadOnlyList<MetadataEntry>> FindEntriesAsync(string identifier, CancellationToken ct = default)
    {
        if (!ImageIdentifier.IsWellFormed(identifier)) return [];
        return (await store.LatestForIdentifierAsync(identifier)).Select(ToEntry).ToList();
    }

    public async Task<MetadataEntry> RegisterSiteImageAsync(string imagePath, SiteImageInfo info, CancellationToken ct = default)
    {
        var path = Path.GetFullPath(imagePath);
        var file = new FileInfo(path);
        if (!file.Exists) throw new FileNotFoundException($"the image file {path} does not exist", path);
        await _siteRegistration.WaitAsync(ct);
        try
        {
            var digest = await DigestAsync(file, ct);
            var email = SiteEndorserEmail;
            // A deprecated site entry stays deprecated: re-registering must not undo an administrator's decision.
            if (await store.LatestOfEndorserAsync(digest.Identifier, email) is { } row && ToEntry(row) is { Status: EntryStatus.Valid or EntryStatus.Deprecated } existing
                && (existing.Status == EntryStatus.Deprecated || SameRequirements(existing, info)))
                return existing;

            var now = clock.GetUtcNow();
            now = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
            var latest = await store.LatestOfEndorserAsync(digest.Identifier, email);
            if (latest is not null && string.CompareOrdinal(latest.Created, MetadataXml.Format(now)) >= 0)
                now = MetadataXml.ParseDate(latest.Created, "created").AddSeconds(1);
            var draft = MetadataDraft.From(digest) with
            {
                Title = info.Title,
                Description = info.Description,
                Format = info.Format,
                Os = info.Os,
                OsVersion = info.OsVersion,
                OsArch = info.OsArch,
                Version = info.Version,
                Hypervisor = info.Hypervisor,
                Tags = info.Tags,
                Locations = [info.Location ?? new Uri(path).AbsoluteUri],
                Publisher = marketplace.Pages.Title,
                Creator = email,
                MinMemoryMiB = info.MinMemoryMiB,
                MinCpu = info.MinCpu,
                MinDiskGiB = info.MinDiskGiB,
                DefaultUser = info.DefaultUser,
                ContextMethod = info.ContextMethod,
                Valid = now.Add(info.ValidFor ?? TimeSpan.FromDays(marketplace.SiteEntryValidDays)),
            };
            var doc = MetadataXml.Build(draft);
            MetadataSignature.Sign(doc, await siteKey.GetAsync(ct), email, now);
            var result = await UploadAsync(MetadataXml.ToBytes(doc), "site", options.PublicUrl, ct: ct);
            logger.LogInformation("Site image {Path} registered in the Marketplace as {Identifier}", path, digest.Identifier);
            return result.Entry;
        }
        finally { _siteRegistration.Release(); }
    }

    // Registering the same file with other requirements signs a new entry (the newest valid one wins).
    static bool SameRequirements(MetadataEntry e, SiteImageInfo i) =>
        e.MinMemoryMiB == i.MinMemoryMiB && e.MinCpu == i.MinCpu && e.MinDiskGiB == i.MinDiskGiB && e.DefaultUser == i.DefaultUser
        && e.ContextMethod == i.ContextMethod && (i.Os is null || e.Os == i.Os);

    async Task<ImageDigest> DigestAsync(FileInfo file, CancellationToken ct)
    {
        var mtime = file.LastWriteTimeUtc.ToString("O");
        if (await store.FindSiteFileAsync(file.FullName) is { } cached && cached.Length == file.Length && cached.Mtime == mtime)
            return new ImageDigest(cached.Length, cached.Sha1, cached.Sha256, cached.Md5);
        var digest = await ImageDigests.OfFileAsync(file.FullName, ct);
        await store.UpsertSiteFileAsync(new SiteFileRow(file.FullName, digest.Bytes, mtime, digest.Sha1, digest.Sha256, digest.Md5));
        return digest;
    }
}
