using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Marketplace.Contracts;
using StratusLab.Server.Platform.Contracts;

namespace StratusLab.Server.Cli;

/// <summary>The Marketplace (build, sign, validate, upload, deprecate, search metadata) and the site image policy.</summary>
public static class MarketplaceCommands
{
    const string KeyOptions = "(--p12 FILE | --cert FILE --private-key FILE) [--password P]";

    public static readonly IReadOnlyList<ClientCommand> All =
    [
        new("build-metadata", "IMAGE [-o OUT] [--title T] [--description D] [--type machine|disk] [--os OS] [--os-version V] [--os-arch A] [--version V] [--format F] [--compression C] [--location URL]... [--tag T]... [--valid-days N | --valid TIME] [--creator C] [--publisher P] [--hypervisor H] [--kind K] [--disks-bus B] [--inbound-port N]... [--outbound-port N]... " + RequirementUsage,
            "compute an image's bytes and checksums and write an unsigned metadata entry (default IMAGE.xml)", BuildMetadata) { Example = "stratuslab build-metadata debian.qcow2 --os debian --os-version 12 --location https://example.org/debian.qcow2" },
        new("sign-metadata", $"FILE {KeyOptions} [--email E] [--algorithm rsa-sha256|rsa-sha1] [-o OUT] [--os OS] {RequirementUsage}",
            "sign a metadata entry with your certificate (in place unless -o); STRATUSLAB_KEY_PASSWORD also gives the password", SignMetadata) { Example = "stratuslab sign-metadata debian.qcow2.xml --p12 me.p12 --email me@example.org" },
        new("validate-metadata", "FILE", "check a signed metadata entry locally: signature, endorser and constraints", ValidateMetadata) { Example = "stratuslab validate-metadata debian.qcow2.xml" },
        new("upload-metadata", "FILE", "upload a signed metadata entry to the Marketplace", UploadMetadata) { Example = "stratuslab upload-metadata debian.qcow2.xml" },
        new("deprecate-metadata", $"IDENTIFIER --reason TEXT [{KeyOptions}] [--email E]",
            "deprecate an image: re-signed by its endorser with a key, or (admins, no key) recorded as an administrator's override", DeprecateMetadata) { Example = "stratuslab deprecate-metadata GJ5vp8gIxhZ1w1MQF19R8IDMOcN --reason \"security fix in a newer version\" --p12 me.p12" },
        new("search-image", "[TEXT] [--os OS] [--arch A] [--tag T] [--email E] [--status valid|expired|deprecated|all] [--limit N]",
            "search the Marketplace (latest entry per image and endorser)", SearchImage) { Example = "stratuslab search-image --os debian" },
        new("list-images", "[--status valid|expired|deprecated|all] [--limit N] [--offset N]", "list the Marketplace's images", ListImages) { Example = "stratuslab list-images --status all --limit 20" },
        new("show-image", "IDENTIFIER [--email E] [--format json|xml]", "show an image's entries (or the signed XML)", ShowImage) { Example = "stratuslab show-image GJ5vp8gIxhZ1w1MQF19R8IDMOcN --format xml" },
        new("policy-image", "IDENTIFIER", "say whether the site policy lets an image run, and which rule decided (admin)", PolicyImage) { Example = "stratuslab policy-image GJ5vp8gIxhZ1w1MQF19R8IDMOcN" },
        new("policy-show", "", "show the site image policy: config lists, API lists and both together (admin)", PolicyShow) { Example = "stratuslab policy-show" },
        new("policy-set", "[--whitelist-endorser E]... [--blacklist-endorser E]... [--whitelist-image ID]... [--blacklist-image ID]... [--whitelist-checksum HEX]... [--blacklist-checksum HEX]...",
            "replace the policy lists set through the API (the config file's always apply; no option clears them) (admin)", PolicySet) { Example = "stratuslab policy-set --whitelist-endorser ops@example.org" },
        new("policy-audit", "[--image ID] [--user NAME] [--result accepted|refused] [--since TIME] [--limit N]", "list launch decisions of the site policy (admin)", PolicyAudit) { Example = "stratuslab policy-audit --result refused --limit 20" },
    ];

    static async Task<int> BuildMetadata(CliContext cx)
    {
        cx.Args.AllowOnly(["-o", "--output", "--title", "--description", "--type", "--os", "--os-version", "--os-arch", "--version", "--format",
            "--compression", "--location", "--tag", "--valid-days", "--valid", "--creator", "--publisher", "--hypervisor", "--kind", "--disks-bus",
            "--inbound-port", "--outbound-port", .. RequirementOptions]);
        var image = cx.Args.Positional(0, "the image file");
        if (!File.Exists(image)) throw new CliException($"{image} does not exist; give the path of the image file the entry describes.");
        var type = cx.Args.Option("--type") ?? "machine";
        if (type is not ("machine" or "disk")) throw new UsageException($"--type '{type}' is not accepted; use machine or disk.");
        var (format, compression) = GuessFormat(image);
        DateTimeOffset valid;
        if (cx.Args.Option("--valid") is { } validText)
            valid = DateTimeOffset.TryParse(validText, out var v) ? v.ToUniversalTime() : throw new UsageException($"--valid '{validText}' is not a time; use ISO-8601 such as 2030-01-01T00:00:00Z.");
        else
            valid = DateTimeOffset.UtcNow.AddDays(cx.Args.LongOption("--valid-days") is { } days and > 0 and < 36500 ? days : 180);
        int Port(string text) => int.TryParse(text, out var p) && p is >= 0 and <= 65535 ? p : throw new UsageException($"'{text}' is not a port number (0..65535).");

        var digest = await MetadataFiles.DigestAsync(image);
        var draft = MetadataDraft.From(digest) with
        {
            Type = type, Valid = valid, Title = cx.Args.Option("--title") ?? Path.GetFileName(image), Description = cx.Args.Option("--description"),
            Creator = cx.Args.Option("--creator"), Publisher = cx.Args.Option("--publisher"),
            Format = cx.Args.Option("--format") ?? format, Compression = cx.Args.Option("--compression") ?? compression,
            Tags = cx.Args.All("--tag"), Locations = cx.Args.All("--location"), Version = cx.Args.Option("--version"),
            Hypervisor = cx.Args.Option("--hypervisor"), Os = cx.Args.Option("--os"), OsVersion = cx.Args.Option("--os-version"),
            OsArch = cx.Args.Option("--os-arch"), Kind = cx.Args.Option("--kind"), DisksBus = cx.Args.Option("--disks-bus"),
            InboundPorts = cx.Args.All("--inbound-port").Select(Port).ToList(), OutboundPorts = cx.Args.All("--outbound-port").Select(Port).ToList(),
            MinMemoryMiB = cx.Args.LongOption("--min-memory"), MinCpu = (int?)cx.Args.LongOption("--min-cpu"), MinDiskGiB = cx.Args.LongOption("--min-disk"),
            DefaultUser = cx.Args.Option("--default-user"), ContextMethod = cx.Args.Option("--context-method"),
        };
        var output = cx.Args.Option("-o") ?? cx.Args.Option("--output") ?? image + ".xml";
        await File.WriteAllBytesAsync(output, Run(() => MetadataFiles.Build(draft)));
        return cx.Print(new JsonObject
        {
            ["file"] = Path.GetFullPath(output), ["identifier"] = digest.Identifier, ["bytes"] = digest.Bytes,
            ["sha1"] = digest.Sha1, ["sha256"] = digest.Sha256, ["md5"] = digest.Md5,
        }, n => cx.Out.WriteLine($"wrote {n["file"]}: identifier {n["identifier"]}, {n["bytes"]} bytes, SHA-1 {n["sha1"]}\nnext: stratuslab sign-metadata {output} --p12 YOUR-KEY.p12"));
    }

    static (string? Format, string? Compression) GuessFormat(string path)
    {
        var name = Path.GetFileName(path).ToLowerInvariant();
        string? compression = null;
        foreach (var (ext, c) in new[] { (".gz", "gz"), (".bz2", "bz2"), (".xz", "xz") })
            if (name.EndsWith(ext)) { compression = c; name = name[..^ext.Length]; }
        var format = Path.GetExtension(name) switch { ".qcow2" => "qcow2", ".img" or ".raw" => "raw", ".vmdk" => "vmdk", ".iso" => "iso", _ => null };
        return (format, compression);
    }

    /// <summary>What an image needs, as build-metadata and sign-metadata take it; each option is its slterms field's name.</summary>
    static readonly string[] RequirementOptions = ["--min-memory", "--min-cpu", "--min-disk", "--default-user", "--context-method"];
    const string RequirementUsage = "[--min-memory MiB] [--min-cpu N] [--min-disk GiB] [--default-user USER] [--context-method opennebula|nocloud]";

    static async Task<int> SignMetadata(CliContext cx)
    {
        cx.Args.AllowOnly(["--p12", "--cert", "--private-key", "--password", "--email", "--algorithm", "-o", "--output", "--os", .. RequirementOptions]);
        var file = cx.Args.Positional(0, "the metadata file");
        var algorithm = (cx.Args.Option("--algorithm") ?? "rsa-sha256").ToLowerInvariant() switch
        {
            "rsa-sha256" => SignatureAlgorithm.RsaSha256,
            "rsa-sha1" => SignatureAlgorithm.RsaSha1,
            var a => throw new UsageException($"--algorithm '{a}' is not accepted; use rsa-sha256 (default) or rsa-sha1 (what the old client made)."),
        };
        using var certificate = LoadKey(cx) ?? throw new UsageException("give your key: --p12 FILE, or --cert FILE --private-key FILE.");
        var terms = new Dictionary<string, string>();
        foreach (var option in RequirementOptions.Append("--os"))
            if (cx.Args.Option(option) is { } value) terms[option[2..]] = value;
        var signed = Run(() => MetadataFiles.Sign(ReadFile(file), certificate, cx.Args.Option("--email"), DateTimeOffset.UtcNow, algorithm, terms));
        var entry = signed.Entry;
        var output = cx.Args.Option("-o") ?? cx.Args.Option("--output") ?? file;
        await File.WriteAllBytesAsync(output, signed.Xml);
        return cx.Print(new JsonObject
        {
            ["file"] = Path.GetFullPath(output), ["identifier"] = entry.Identifier, ["email"] = entry.Endorser.Email,
            ["created"] = MetadataFiles.FormatTime(entry.Created), ["algorithm"] = algorithm == SignatureAlgorithm.RsaSha1 ? "rsa-sha1" : "rsa-sha256",
        }, n => cx.Out.WriteLine($"signed {n["file"]} as {n["email"]} ({n["algorithm"]}, created {n["created"]})\nnext: stratuslab upload-metadata {output}"));
    }

    static X509Certificate2? LoadKey(CliContext cx)
    {
        var password = cx.Args.Option("--password") ?? (Environment.GetEnvironmentVariable("STRATUSLAB_KEY_PASSWORD") is { Length: > 0 } p ? p : null);
        if (cx.Args.Option("--p12") is { } p12)
        {
            if (cx.Args.Option("--cert") is not null || cx.Args.Option("--private-key") is not null) throw new UsageException("give either --p12, or --cert with --private-key, not both.");
            return Run(() => MetadataFiles.LoadPkcs12(p12, password));
        }
        var cert = cx.Args.Option("--cert");
        var key = cx.Args.Option("--private-key");
        if (cert is null && key is null) return null;
        if (cert is null || key is null) throw new UsageException("--cert and --private-key go together (PEM certificate and PEM private key).");
        return Run(() => MetadataFiles.LoadPem(cert, key, password));
    }

    static Task<int> ValidateMetadata(CliContext cx)
    {
        cx.Args.AllowOnly();
        var file = cx.Args.Positional(0, "the metadata file");
        var (entry, signatureMethod, certificateSha256) = Run(() => MetadataFiles.Verify(ReadFile(file)));
        var expired = entry.Valid is { } v && v <= DateTimeOffset.UtcNow;
        return Task.FromResult(cx.Print(new JsonObject
        {
            ["valid"] = true, ["identifier"] = entry.Identifier, ["email"] = entry.Endorser.Email, ["subject"] = entry.Endorser.Subject,
            ["created"] = MetadataFiles.FormatTime(entry.Created), ["expires"] = entry.Valid is { } x ? MetadataFiles.FormatTime(x) : null,
            ["expired"] = expired, ["deprecated"] = entry.Deprecated, ["signatureMethod"] = signatureMethod,
            ["certificateSha256"] = certificateSha256,
        }, n => cx.Out.WriteLine(
            $"valid: {entry.Identifier} endorsed by {entry.Endorser.Email} on {n["created"]}, signature verified ({signatureMethod[(signatureMethod.LastIndexOf('#') + 1)..]})" +
            (expired ? $"\nwarning: the entry expired on {n["expires"]}" : "") +
            (entry.Deprecated is not null ? $"\nwarning: the entry is deprecated: {entry.Deprecated}" : ""))));
    }

    static async Task<int> UploadMetadata(CliContext cx)
    {
        cx.Args.AllowOnly();
        var file = cx.Args.Positional(0, "the metadata file");
        var (status, body) = await SendAsync(cx, HttpMethod.Post, "api/v1/marketplace/metadata", ReadFile(file), "application/xml", "application/json");
        var node = JsonNode.Parse(body);
        return cx.Print(node, n =>
        {
            if (status == 202) cx.Out.WriteLine($"pending: {n["detail"]}");
            else cx.Out.WriteLine($"published {n["identifier"]} by {n["endorser"]?["email"]} ({n["title"]}), status {n["status"]}");
        });
    }

    static async Task<int> DeprecateMetadata(CliContext cx)
    {
        cx.Args.AllowOnly("--reason", "--p12", "--cert", "--private-key", "--password", "--email");
        var identifier = cx.Args.Positional(0, "the image identifier");
        var reason = cx.Args.Option("--reason") is { Length: > 0 } r ? r : throw new UsageException("--reason TEXT is required: say why the image must no longer be used.");
        using var certificate = LoadKey(cx);
        if (certificate is null)
        {
            var result = await cx.Api.PostAsync($"api/v1/marketplace/metadata/{Uri.EscapeDataString(identifier)}/deprecate",
                new { reason, email = cx.Args.Option("--email") });
            return cx.Print(result, n => cx.Out.WriteLine($"deprecated {identifier} ({n["entries"]!.AsArray().Count} entr(ies)), recorded as an override by {n["deprecatedBy"]}"));
        }
        var email = MetadataFiles.CertificateEmail(certificate) ?? cx.Args.Option("--email")
            ?? throw new UsageException("the certificate holds no e-mail address; give the endorser's with --email.");
        var (_, xml) = await SendAsync(cx, HttpMethod.Get, $"api/v1/marketplace/metadata/{Uri.EscapeDataString(identifier)}/{Uri.EscapeDataString(email)}", null, null, "application/xml");
        // Entries are named by their creation second: Deprecate signs strictly after the entry it replaces.
        var deprecated = Run(() => MetadataFiles.Deprecate(Encoding.UTF8.GetBytes(xml), reason, certificate, email, DateTimeOffset.UtcNow));
        var (_, body) = await SendAsync(cx, HttpMethod.Post, $"api/v1/marketplace/metadata/{Uri.EscapeDataString(identifier)}/deprecate",
            deprecated, "application/xml", "application/json");
        return cx.Print(JsonNode.Parse(body), n => cx.Out.WriteLine($"deprecated {identifier}: a new entry signed by {email} says '{reason}'"));
    }

    static async Task<int> SearchImage(CliContext cx)
    {
        cx.Args.AllowOnly("--os", "--arch", "--tag", "--email", "--status", "--limit", "--offset");
        var query = Query(("q", cx.Args.Positionals.Count > 0 ? string.Join(' ', cx.Args.Positionals) : null), ("os", cx.Args.Option("--os")),
            ("arch", cx.Args.Option("--arch")), ("tag", cx.Args.Option("--tag")), ("email", cx.Args.Option("--email")),
            ("status", cx.Args.Option("--status")), ("limit", cx.Args.Option("--limit")), ("offset", cx.Args.Option("--offset")));
        return PrintEntries(cx, await cx.Api.GetAsync("api/v1/marketplace/metadata" + query));
    }

    static async Task<int> ListImages(CliContext cx)
    {
        cx.Args.AllowOnly("--status", "--limit", "--offset");
        var query = Query(("status", cx.Args.Option("--status")), ("limit", cx.Args.Option("--limit")), ("offset", cx.Args.Option("--offset")));
        return PrintEntries(cx, await cx.Api.GetAsync("api/v1/marketplace/metadata" + query));
    }

    static int PrintEntries(CliContext cx, JsonNode? list) => cx.Print(list, l =>
    {
        if (l.AsArray().Count == 0) { cx.Out.WriteLine("no image matches"); return; }
        cx.Table(l.AsArray(), ("identifier", e => e["identifier"]?.ToString()), ("title", e => e["title"]?.ToString()),
            ("os", e => string.Join(' ', new[] { e["os"]?.ToString(), e["osVersion"]?.ToString() }.Where(s => s is not null))),
            ("arch", e => e["osArch"]?.ToString()), ("endorser", e => e["endorser"]?["email"]?.ToString()),
            ("created", e => e["created"]?.ToString()), ("status", e => e["status"]?.ToString()));
    });

    static async Task<int> ShowImage(CliContext cx)
    {
        cx.Args.AllowOnly("--email", "--format");
        var identifier = cx.Args.Positional(0, "the image identifier");
        var path = $"api/v1/marketplace/metadata/{Uri.EscapeDataString(identifier)}" + (cx.Args.Option("--email") is { } email ? "/" + Uri.EscapeDataString(email) : "");
        var format = cx.Args.Option("--format") ?? "json";
        if (format == "xml")
        {
            var (_, xml) = await SendAsync(cx, HttpMethod.Get, path, null, null, "application/xml");
            cx.Out.Write(xml);
            return 0;
        }
        if (format != "json") throw new UsageException($"--format '{format}' is not accepted; use json or xml.");
        var node = await cx.Api.GetAsync(path);
        return cx.Print(node, n =>
        {
            foreach (var e in n is JsonArray a ? a.Select(x => x!) : [n])
            {
                cx.Out.WriteLine($"{e["identifier"]}  {e["title"]}  [{e["status"]}]");
                void Row(string name, JsonNode? value) { if (value is not null && value.ToString().Length > 0) cx.Out.WriteLine($"  {name,-12} {value}"); }
                Row("endorser", e["endorser"]?["email"]);
                Row("created", e["created"]);
                Row("valid", e["valid"]);
                Row("deprecated", e["deprecated"]);
                Row("os", $"{e["os"]} {e["osVersion"]} {e["osArch"]}".Trim());
                Row("format", e["format"]);
                Row("bytes", e["bytes"]);
                Row("sha1", e["sha1"]);
                foreach (var l in e["locations"]?.AsArray() ?? []) Row("location", l);
                Row("tags", string.Join(", ", e["tags"]?.AsArray().Select(t => t!.ToString()) ?? []));
                Row("description", e["description"]);
            }
        });
    }

    static async Task<int> PolicyImage(CliContext cx)
    {
        cx.Args.AllowOnly();
        var identifier = cx.Args.Positional(0, "the image identifier");
        var decision = await cx.Api.PostAsync("api/v1/policy/check", new { identifier });
        cx.Print(decision, d =>
        {
            cx.Out.WriteLine($"{(d["accepted"]!.GetValue<bool>() ? "ACCEPTED" : "REFUSED")} by rule {d["rule"]} ({d["source"]}): {d["reason"]}");
            foreach (var c in d["candidates"]?.AsArray() ?? [])
                cx.Out.WriteLine($"  {c!["endorser"]} {c["created"]} [{c["status"]}]: {(c["accepted"]!.GetValue<bool>() ? "accepted" : "refused")} by {c["rule"]}");
        });
        return decision?["accepted"]?.GetValue<bool>() == true ? 0 : 1;
    }

    static async Task<int> PolicyShow(CliContext cx)
    {
        cx.Args.AllowOnly();
        return PrintPolicy(cx, await cx.Api.GetAsync("api/v1/policy"));
    }

    static async Task<int> PolicySet(CliContext cx)
    {
        cx.Args.AllowOnly("--whitelist-endorser", "--blacklist-endorser", "--whitelist-image", "--blacklist-image", "--whitelist-checksum", "--blacklist-checksum");
        var policy = await cx.Api.PutAsync("api/v1/policy", new
        {
            whitelistEndorsers = cx.Args.All("--whitelist-endorser"), blacklistEndorsers = cx.Args.All("--blacklist-endorser"),
            whitelistImages = cx.Args.All("--whitelist-image"), blacklistImages = cx.Args.All("--blacklist-image"),
            whitelistChecksums = cx.Args.All("--whitelist-checksum"), blacklistChecksums = cx.Args.All("--blacklist-checksum"),
        });
        return PrintPolicy(cx, policy);
    }

    static int PrintPolicy(CliContext cx, JsonNode? policy) => cx.Print(policy, p =>
    {
        foreach (var list in new[] { "whitelistEndorsers", "blacklistEndorsers", "whitelistImages", "blacklistImages", "whitelistChecksums", "blacklistChecksums" })
        {
            var config = p["config"]![list]!.AsArray().Select(v => v!.ToString()).ToList();
            var site = p["site"]![list]!.AsArray().Select(v => v!.ToString()).ToList();
            cx.Out.WriteLine($"{list}: {(config.Count + site.Count == 0 ? "-" : string.Join(", ", config.Select(v => v + " (config)").Concat(site.Select(v => v + " (site)"))))}");
        }
    });

    static async Task<int> PolicyAudit(CliContext cx)
    {
        cx.Args.AllowOnly("--image", "--user", "--result", "--since", "--limit", "--offset");
        var accepted = cx.Args.Option("--result") switch
        {
            null => null,
            "accepted" => "true",
            "refused" => "false",
            var x => throw new UsageException($"--result '{x}' is not accepted; use accepted or refused."),
        };
        var query = Query(("identifier", cx.Args.Option("--image")), ("user", cx.Args.Option("--user")), ("accepted", accepted),
            ("since", cx.Args.Option("--since")), ("limit", cx.Args.Option("--limit")), ("offset", cx.Args.Option("--offset")));
        var list = await cx.Api.GetAsync("api/v1/policy/audit" + query);
        return cx.Print(list, l => cx.Table(l.AsArray(), ("at", r => r["at"]?.ToString()), ("user", r => r["userName"]?.ToString()),
            ("identifier", r => r["identifier"]?.ToString()), ("endorser", r => r["endorser"]?.ToString()),
            ("result", r => r["accepted"]!.GetValue<bool>() ? "accepted" : "refused"), ("rule", r => r["rule"]?.ToString())));
    }

    static string Query(params (string Key, string? Value)[] parts)
    {
        var present = parts.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value!)}").ToList();
        return present.Count == 0 ? "" : "?" + string.Join("&", present);
    }

    static byte[] ReadFile(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"cannot read {path}: {e.Message}"); }
    }

    /// <summary>Runs local metadata work, turning its refusals into one-line CLI errors.</summary>
    static T Run<T>(Func<T> work)
    {
        try { return work(); }
        catch (DomainException e) { throw new CliException(e.Detail); }
    }

    /// <summary>XML in or out, which the JSON ApiClient does not do; errors become one line as there.</summary>
    static async Task<(int Status, string Body)> SendAsync(CliContext cx, HttpMethod method, string path, byte[]? body, string? contentType, string accept)
    {
        var settings = ClientSettings.Resolve(cx.Args);
        using var http = ApiClient.CreateRaw(settings, TimeSpan.FromMinutes(2));
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Accept.ParseAdd(accept);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType ?? "application/xml");
        }
        HttpResponseMessage response;
        try { response = await http.SendAsync(request); }
        catch (HttpRequestException e) when (e.InnerException is SocketException || e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            throw new CliException($"cannot reach the StratusLab server at {settings.Endpoint}: is 'stratuslab serve' running? (set --endpoint or STRATUSLAB_ENDPOINT)");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            if (response.IsSuccessStatusCode) return ((int)response.StatusCode, text);
            string? detail = null;
            try { detail = JsonNode.Parse(text)?["detail"]?.GetValue<string>(); }
            catch (JsonException) { }
            if (response.StatusCode == HttpStatusCode.Unauthorized && settings.Token is null)
                throw new CliException("no token: pass --token, set STRATUSLAB_TOKEN, or put {\"token\": \"...\"} in ~/.config/stratuslab/client.json.");
            throw new CliException(detail ?? text.Trim()) { Status = (int)response.StatusCode };
        }
    }
}
