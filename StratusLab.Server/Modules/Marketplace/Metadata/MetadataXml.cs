using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using StratusLab.Server.Modules.Marketplace.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Metadata;

/// <summary>
/// Reading and writing StratusLab metadata XML: a hardened parser (no DTD, no resolver, size caps), the constraint
/// checks of StratusLab's ValidateMetadataConstraints, and a writer in the layout the old client produced.
/// </summary>
internal static partial class MetadataXml
{
    public const long DefaultMaxBytes = 10 * 1024 * 1024;

    static readonly string[] DigestAlgorithms = ["MD5", "SHA-1", "SHA-224", "SHA-256", "SHA-384", "SHA-512"];

    /// <summary>
    /// Parses untrusted bytes into a DOM that keeps whitespace (signatures depend on it). DOCTYPE, DTDs and entities
    /// are refused outright, so XXE and entity-expansion attacks cannot happen.
    /// </summary>
    public static XmlDocument Load(ReadOnlySpan<byte> xml, long maxBytes = DefaultMaxBytes)
    {
        if (xml.Length > maxBytes)
            throw MetadataException.TooLarge($"The entry is {xml.Length} bytes, more than the {maxBytes} bytes accepted; metadata entries are small, check that you are sending the XML entry and not the image.");
        if (xml.Length == 0) throw MetadataException.Malformed("The entry is empty; send a signed StratusLab metadata entry (RDF/XML).");
        if (xml.IndexOf("<!DOCTYPE"u8) >= 0 || xml.IndexOf("<!ENTITY"u8) >= 0)
            throw MetadataException.Malformed("The entry contains a DOCTYPE or entity declaration; DTDs are refused (they allow XXE and entity-expansion attacks). Remove the <!DOCTYPE ...> and use no entities.");
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            MaxCharactersInDocument = maxBytes,
            MaxCharactersFromEntities = 1024,
            IgnoreProcessingInstructions = true,
        };
        var doc = new XmlDocument { PreserveWhitespace = true, XmlResolver = null };
        var bytes = xml.ToArray();
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            using var reader = XmlReader.Create(stream, settings);
            doc.Load(reader);
        }
        catch (XmlException) when (DeclaresDtd(bytes))
        {
            throw MetadataException.Malformed("The entry declares a DTD; DTDs are refused (they allow XXE and entity-expansion attacks). Remove the <!DOCTYPE ...>.");
        }
        catch (XmlException e)
        {
            throw MetadataException.Malformed($"The entry is not well-formed XML (line {e.LineNumber}, position {e.LinePosition}): {FirstSentence(e.Message)} Send the file exactly as 'stratuslab sign-metadata' wrote it.");
        }
        return doc;
    }

    // The byte scan above misses a DOCTYPE in another encoding (UTF-16); decoding as the reader did finds it.
    static bool DeclaresDtd(byte[] xml)
    {
        using var text = new StreamReader(new MemoryStream(xml, writable: false), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var decoded = text.ReadToEnd();
        return decoded.Contains("<!DOCTYPE", StringComparison.Ordinal) || decoded.Contains("<!ENTITY", StringComparison.Ordinal);
    }

    static string FirstSentence(string message)
    {
        var cut = message.IndexOf(". Line", StringComparison.Ordinal);
        return cut > 0 ? message[..(cut + 1)] : message;
    }

    /// <summary>Reads an entry and checks every constraint; throws <see cref="MetadataException"/> (422) naming the first violation.</summary>
    public static MetadataEntry Parse(XmlDocument doc)
    {
        var root = doc.DocumentElement ?? throw MetadataException.Invalid("The document has no root element; the root must be rdf:RDF.");
        if (root.LocalName != "RDF" || root.NamespaceURI != MetadataNames.Rdf)
            throw MetadataException.Invalid($"The root element is <{root.Name}>; a StratusLab entry's root is rdf:RDF (namespace {MetadataNames.Rdf}).");
        var xmlBase = root.GetAttribute("base", MetadataNames.Xml);
        if (xmlBase != MetadataNames.Base)
            throw MetadataException.Invalid($"rdf:RDF must carry xml:base=\"{MetadataNames.Base}\" (found '{Short(xmlBase)}').");
        var descriptions = Children(root).Where(e => !(e.LocalName == "Signature" && e.NamespaceURI == MetadataNames.Dsig)).ToList();
        if (descriptions.Count != 1 || descriptions[0].LocalName != "Description" || descriptions[0].NamespaceURI != MetadataNames.Rdf)
            throw MetadataException.Invalid("rdf:RDF must contain exactly one rdf:Description (and the signature); describe one image per entry.");
        var d = descriptions[0];
        var fields = new Fields(d);

        var identifier = fields.Single(MetadataNames.DcTerms, "identifier", required: true)!;
        if (!ImageIdentifier.IsWellFormed(identifier))
            throw MetadataException.Invalid($"dcterms:identifier '{Short(identifier)}' is not an image identifier: 27 characters of A-Z a-z 0-9 - _ encoding the SHA-1 of the image ('stratuslab build-metadata' computes it).");
        var about = d.GetAttribute("about", MetadataNames.Rdf);
        if (about != "#" + identifier)
            throw MetadataException.Invalid($"rdf:about ('{Short(about)}') must be '#{identifier}', the identifier with a leading '#'.");

        var bytesText = fields.Single(MetadataNames.SlReq, "bytes", required: true)!;
        if (!long.TryParse(bytesText, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes))
            throw MetadataException.Invalid($"slreq:bytes '{Short(bytesText)}' is not a non-negative whole number of bytes.");

        var checksums = new List<ImageChecksum>();
        foreach (var c in fields.All(MetadataNames.SlReq, "checksum"))
        {
            var cf = new Fields(c);
            var algorithm = cf.Single(MetadataNames.SlReq, "algorithm", required: true, where: "slreq:checksum")!;
            var value = cf.Single(MetadataNames.SlReq, "value", required: true, where: "slreq:checksum")!;
            var known = DigestAlgorithms.FirstOrDefault(a => a.Equals(algorithm, StringComparison.OrdinalIgnoreCase))
                ?? throw MetadataException.Invalid($"slreq:checksum algorithm '{Short(algorithm)}' is not known; use one of {string.Join(", ", DigestAlgorithms)}.");
            checksums.Add(new ImageChecksum(known, NormalizeChecksum(known, value)));
        }
        var sha1s = checksums.Where(c => c.Algorithm == "SHA-1").ToList();
        if (sha1s.Count != 1)
            throw MetadataException.Invalid($"The entry has {sha1s.Count} SHA-1 checksums; it needs exactly one slreq:checksum with algorithm SHA-1.");
        if (checksums.GroupBy(c => c.Algorithm).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw MetadataException.Invalid($"The entry has more than one {twice.Key} checksum; give each algorithm once.");
        var sha1 = sha1s[0].Value;
        var expected = ImageIdentifier.FromSha1Hex(sha1);
        if (expected != identifier)
            throw MetadataException.Invalid($"The identifier {identifier} does not match the SHA-1 checksum {sha1} (which gives {expected}); rebuild the entry with 'stratuslab build-metadata'.");

        var endorsements = fields.All(MetadataNames.SlReq, "endorsement");
        if (endorsements.Count != 1)
            throw MetadataException.Invalid($"The entry has {endorsements.Count} slreq:endorsement elements; it needs exactly one (sign it with 'stratuslab sign-metadata').");
        var ef = new Fields(endorsements[0]);
        var createdText = ef.Single(MetadataNames.DcTerms, "created", required: true, where: "slreq:endorsement")!;
        var created = ParseDate(createdText, "dcterms:created");
        var endorsers = ef.All(MetadataNames.SlReq, "endorser");
        if (endorsers.Count != 1)
            throw MetadataException.Invalid($"slreq:endorsement has {endorsers.Count} slreq:endorser elements; it needs exactly one.");
        var en = new Fields(endorsers[0]);
        var email = en.Single(MetadataNames.SlReq, "email", required: true, where: "slreq:endorser")!;
        if (!EmailPattern().IsMatch(email))
            throw MetadataException.Invalid($"slreq:email '{Short(email)}' is not an e-mail address.");
        en.Single(MetadataNames.SlReq, "full-name", where: "slreq:endorser");
        var endorser = new Endorser(email, en.Single(MetadataNames.SlReq, "subject", where: "slreq:endorser"), en.Single(MetadataNames.SlReq, "issuer", where: "slreq:endorser"));

        var type = fields.Single(MetadataNames.DcTerms, "type", required: true)!;
        if (type is not ("machine" or "disk"))
            throw MetadataException.Invalid($"dcterms:type '{Short(type)}' is not accepted; accepted values: machine, disk.");
        DateTimeOffset? valid = fields.Single(MetadataNames.DcTerms, "valid") is { } v ? ParseDate(v, "dcterms:valid") : null;
        if (valid <= created)
            throw MetadataException.Invalid($"dcterms:valid ({Format(valid!.Value)}) is not after dcterms:created ({Format(created)}); an entry must be valid for some time after it is endorsed.");

        int Port(string text, string name) =>
            int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535
                ? port : throw MetadataException.Invalid($"slterms:{name} '{Short(text)}' is not a port number (0..65535).");
        foreach (var icmp in fields.AllText(MetadataNames.SlTerms, "icmp"))
            if (!int.TryParse(icmp, NumberStyles.None, CultureInfo.InvariantCulture, out var t) || t > 255)
                throw MetadataException.Invalid($"slterms:icmp '{Short(icmp)}' is not an ICMP type (0..255).");
        if (fields.Single(MetadataNames.SlTerms, "serial-number") is { } serial && !ulong.TryParse(serial, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            throw MetadataException.Invalid($"slterms:serial-number '{Short(serial)}' is not a non-negative whole number.");

        return new MetadataEntry
        {
            Identifier = identifier,
            Sha1 = sha1,
            Bytes = bytes,
            Checksums = checksums,
            Endorser = endorser,
            Created = created,
            Valid = valid,
            Type = type,
            Title = fields.Single(MetadataNames.DcTerms, "title"),
            Description = fields.Single(MetadataNames.DcTerms, "description"),
            Creator = fields.Single(MetadataNames.DcTerms, "creator"),
            Publisher = fields.Single(MetadataNames.DcTerms, "publisher"),
            Format = fields.Single(MetadataNames.DcTerms, "format"),
            Compression = fields.Single(MetadataNames.DcTerms, "compression"),
            IsReplacedBy = fields.Single(MetadataNames.DcTerms, "isReplacedBy"),
            Replaces = fields.Single(MetadataNames.DcTerms, "replaces"),
            Tags = fields.AllText(MetadataNames.DcTerms, "alternative"),
            Locations = fields.AllText(MetadataNames.SlTerms, "location"),
            Version = fields.Single(MetadataNames.SlTerms, "version"),
            Hypervisor = fields.Single(MetadataNames.SlTerms, "hypervisor"),
            Os = fields.Single(MetadataNames.SlTerms, "os"),
            OsVersion = fields.Single(MetadataNames.SlTerms, "os-version"),
            OsArch = fields.Single(MetadataNames.SlTerms, "os-arch"),
            Kind = fields.Single(MetadataNames.SlTerms, "kind"),
            DisksBus = fields.Single(MetadataNames.SlTerms, "disks-bus"),
            InboundPorts = fields.AllText(MetadataNames.SlTerms, "inbound-port").Select(p => Port(p, "inbound-port")).ToList(),
            OutboundPorts = fields.AllText(MetadataNames.SlTerms, "outbound-port").Select(p => Port(p, "outbound-port")).ToList(),
            MinMemoryMiB = Positive(fields.Single(MetadataNames.SlTerms, "min-memory"), "min-memory", 4L * 1024 * 1024),
            MinCpu = (int?)Positive(fields.Single(MetadataNames.SlTerms, "min-cpu"), "min-cpu", 256),
            MinDiskGiB = Positive(fields.Single(MetadataNames.SlTerms, "min-disk"), "min-disk", 1024 * 1024),
            DefaultUser = LoginUser(fields.Single(MetadataNames.SlTerms, "default-user")),
            ContextMethod = ContextMethodOf(fields.Single(MetadataNames.SlTerms, "context-method")),
            Deprecated = fields.Single(MetadataNames.SlTerms, "deprecated"),
            DeprecatedBy = fields.Single(MetadataNames.SlTerms, "deprecated") is null ? null : "endorser",
            Status = EntryStatus.Valid,
        };
    }

    static long? Positive(string? text, string name, long max)
    {
        if (text is null) return null;
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= max
            ? n : throw MetadataException.Invalid($"slterms:{name} '{Short(text)}' is not a whole number from 1 to {max}.");
    }

    static string? LoginUser(string? text) =>
        text is null || UserPattern().IsMatch(text) ? text
            : throw MetadataException.Invalid($"slterms:default-user '{Short(text)}' is not a login name (a-z, 0-9, '_', '-', starting with a letter or '_', at most 32 characters).");

    static string? ContextMethodOf(string? text) =>
        text is null || ImageRequirements.ContextMethods.Contains(text) ? text
            : throw MetadataException.Invalid($"slterms:context-method '{Short(text)}' is not accepted; accepted values: {string.Join(", ", ImageRequirements.ContextMethods)}.");

    [GeneratedRegex("^[a-z_][a-z0-9_-]{0,31}$")]
    private static partial Regex UserPattern();

    public static string NormalizeChecksum(string algorithm, string value)
    {
        var v = value.Trim();
        if (v.Length == 0 || !v.All(Uri.IsHexDigit))
            throw MetadataException.Invalid($"The {algorithm} checksum '{Short(value)}' is not hexadecimal.");
        if (algorithm == "SHA-1")
        {
            try { return ImageIdentifier.NormalizeSha1Hex(v); }
            catch (FormatException e) { throw MetadataException.Invalid(e.Message); }
        }
        var digits = algorithm switch { "MD5" => 32, "SHA-224" => 56, "SHA-256" => 64, "SHA-384" => 96, _ => 128 };
        if (v.Length != digits)
            throw MetadataException.Invalid($"The {algorithm} checksum has {v.Length} hex digits; {algorithm} has {digits}.");
        return v.ToLowerInvariant();
    }

    /// <summary>StratusLab dates: yyyy-MM-ddTHH:mm:ssZ (UTC), fractions of a second tolerated.</summary>
    public static DateTimeOffset ParseDate(string text, string field)
    {
        if (!DatePattern().IsMatch(text) || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value))
            throw MetadataException.Invalid($"{field} '{Short(text)}' is not a date; write it as yyyy-MM-ddTHH:mm:ssZ in UTC, e.g. 2011-01-24T09:59:42Z.");
        return value;
    }

    public static string Format(DateTimeOffset value) => value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    static string Short(string? value) => value is null ? "" : Platform.Http.Validate.Trim(value);

    static IEnumerable<XmlElement> Children(XmlElement parent) => parent.ChildNodes.OfType<XmlElement>();

    /// <summary>The child elements of one RDF node, with the single-valued and text-only checks.</summary>
    sealed class Fields(XmlElement parent)
    {
        readonly List<XmlElement> _children = Children(parent).ToList();

        public List<XmlElement> All(string ns, string name) => _children.Where(e => e.LocalName == name && e.NamespaceURI == ns).ToList();

        public List<string> AllText(string ns, string name) => All(ns, name).Select(e => Text(e, name)).ToList();

        public string? Single(string ns, string name, bool required = false, string? where = null)
        {
            var found = All(ns, name);
            var label = Prefix(ns) + ":" + name;
            if (found.Count > 1)
                throw MetadataException.Invalid($"{(where is null ? "The entry" : where)} has {found.Count} {label} elements; at most one is allowed.");
            if (found.Count == 0)
                return required ? throw MetadataException.Invalid($"{(where is null ? "The entry" : where)} has no {label}; it is required.") : null;
            return Text(found[0], label);
        }

        static string Text(XmlElement e, string label)
        {
            if (e.ChildNodes.OfType<XmlElement>().Any())
                throw MetadataException.Invalid($"{label} must hold text, not elements.");
            return e.InnerText.Trim();
        }

        static string Prefix(string ns) => ns switch
        {
            MetadataNames.DcTerms => "dcterms",
            MetadataNames.SlReq => "slreq",
            MetadataNames.SlTerms => "slterms",
            _ => "rdf",
        };
    }

    /// <summary>An unsigned entry in the old client's layout, with an empty slreq:endorsement that signing fills.</summary>
    public static XmlDocument Build(MetadataDraft draft)
    {
        var sb = new StringBuilder();
        var settings = new XmlWriterSettings { Indent = true, IndentChars = "  ", Encoding = new UTF8Encoding(false), OmitXmlDeclaration = false };
        using (var w = XmlWriter.Create(sb, settings))
        {
            w.WriteStartDocument();
            w.WriteStartElement("rdf", "RDF", MetadataNames.Rdf);
            w.WriteAttributeString("xmlns", "dcterms", null, MetadataNames.DcTerms);
            w.WriteAttributeString("xmlns", "slreq", null, MetadataNames.SlReq);
            w.WriteAttributeString("xmlns", "slterms", null, MetadataNames.SlTerms);
            w.WriteAttributeString("xml", "base", MetadataNames.Xml, MetadataNames.Base);
            w.WriteStartElement("rdf", "Description", MetadataNames.Rdf);
            w.WriteAttributeString("rdf", "about", MetadataNames.Rdf, "#" + draft.Identifier);

            void Text(string prefix, string ns, string name, string? value)
            {
                if (!string.IsNullOrEmpty(value)) w.WriteElementString(prefix, name, ns, value);
            }

            Text("dcterms", MetadataNames.DcTerms, "identifier", draft.Identifier);
            Text("slreq", MetadataNames.SlReq, "bytes", draft.Bytes.ToString(CultureInfo.InvariantCulture));
            foreach (var c in draft.Checksums)
            {
                w.WriteStartElement("slreq", "checksum", MetadataNames.SlReq);
                w.WriteAttributeString("rdf", "parseType", MetadataNames.Rdf, "Resource");
                Text("slreq", MetadataNames.SlReq, "algorithm", c.Algorithm);
                Text("slreq", MetadataNames.SlReq, "value", c.Value);
                w.WriteEndElement();
            }
            w.WriteStartElement("slreq", "endorsement", MetadataNames.SlReq);
            w.WriteAttributeString("rdf", "parseType", MetadataNames.Rdf, "Resource");
            w.WriteEndElement();
            Text("dcterms", MetadataNames.DcTerms, "type", draft.Type);
            if (draft.Valid is { } valid) Text("dcterms", MetadataNames.DcTerms, "valid", Format(valid));
            Text("dcterms", MetadataNames.DcTerms, "title", draft.Title);
            Text("dcterms", MetadataNames.DcTerms, "description", draft.Description);
            Text("dcterms", MetadataNames.DcTerms, "creator", draft.Creator);
            Text("dcterms", MetadataNames.DcTerms, "publisher", draft.Publisher);
            Text("dcterms", MetadataNames.DcTerms, "format", draft.Format);
            Text("dcterms", MetadataNames.DcTerms, "compression", draft.Compression);
            foreach (var tag in draft.Tags) Text("dcterms", MetadataNames.DcTerms, "alternative", tag);
            Text("dcterms", MetadataNames.DcTerms, "isReplacedBy", draft.IsReplacedBy);
            Text("dcterms", MetadataNames.DcTerms, "replaces", draft.Replaces);
            foreach (var location in draft.Locations) Text("slterms", MetadataNames.SlTerms, "location", location);
            Text("slterms", MetadataNames.SlTerms, "version", draft.Version);
            Text("slterms", MetadataNames.SlTerms, "hypervisor", draft.Hypervisor);
            Text("slterms", MetadataNames.SlTerms, "os", draft.Os);
            Text("slterms", MetadataNames.SlTerms, "os-version", draft.OsVersion);
            Text("slterms", MetadataNames.SlTerms, "os-arch", draft.OsArch);
            Text("slterms", MetadataNames.SlTerms, "kind", draft.Kind);
            Text("slterms", MetadataNames.SlTerms, "disks-bus", draft.DisksBus);
            foreach (var p in draft.InboundPorts) Text("slterms", MetadataNames.SlTerms, "inbound-port", p.ToString(CultureInfo.InvariantCulture));
            foreach (var p in draft.OutboundPorts) Text("slterms", MetadataNames.SlTerms, "outbound-port", p.ToString(CultureInfo.InvariantCulture));
            Text("slterms", MetadataNames.SlTerms, "min-memory", draft.MinMemoryMiB?.ToString(CultureInfo.InvariantCulture));
            Text("slterms", MetadataNames.SlTerms, "min-cpu", draft.MinCpu?.ToString(CultureInfo.InvariantCulture));
            Text("slterms", MetadataNames.SlTerms, "min-disk", draft.MinDiskGiB?.ToString(CultureInfo.InvariantCulture));
            Text("slterms", MetadataNames.SlTerms, "default-user", draft.DefaultUser);
            Text("slterms", MetadataNames.SlTerms, "context-method", draft.ContextMethod);
            Text("slterms", MetadataNames.SlTerms, "deprecated", draft.Deprecated);
            w.WriteEndElement();
            w.WriteEndElement();
            w.WriteEndDocument();
        }
        // XmlWriter on a StringBuilder declares utf-16; the bytes we hand out are UTF-8.
        var text = sb.ToString().Replace("encoding=\"utf-16\"", "encoding=\"UTF-8\"");
        return Load(Encoding.UTF8.GetBytes(text + "\n"));
    }

    /// <summary>Sets (or replaces) slterms:deprecated, the way deprecate-metadata marks an entry before re-signing it.</summary>
    public static void SetDeprecated(XmlDocument doc, string reason)
    {
        var description = doc.DocumentElement?.ChildNodes.OfType<XmlElement>().FirstOrDefault(e => e.LocalName == "Description" && e.NamespaceURI == MetadataNames.Rdf)
            ?? throw MetadataException.Invalid("The entry has no rdf:Description to deprecate.");
        foreach (var old in description.ChildNodes.OfType<XmlElement>().Where(e => e.LocalName == "deprecated" && e.NamespaceURI == MetadataNames.SlTerms).ToList())
            description.RemoveChild(old);
        var element = doc.CreateElement("slterms", "deprecated", MetadataNames.SlTerms);
        element.InnerText = reason;
        description.AppendChild(doc.CreateWhitespace("  "));
        description.AppendChild(element);
        description.AppendChild(doc.CreateWhitespace("\n  "));
    }

    /// <summary>Sets (or replaces) one slterms field of an unsigned entry (sign-metadata's requirement options).</summary>
    public static void SetTerm(XmlDocument doc, string name, string value)
    {
        var description = doc.DocumentElement?.ChildNodes.OfType<XmlElement>().FirstOrDefault(e => e.LocalName == "Description" && e.NamespaceURI == MetadataNames.Rdf)
            ?? throw MetadataException.Invalid($"The entry has no rdf:Description to put slterms:{name} in.");
        foreach (var old in description.ChildNodes.OfType<XmlElement>().Where(e => e.LocalName == name && e.NamespaceURI == MetadataNames.SlTerms).ToList())
            description.RemoveChild(old);
        var element = doc.CreateElement("slterms", name, MetadataNames.SlTerms);
        element.InnerText = value;
        description.AppendChild(doc.CreateWhitespace("  "));
        description.AppendChild(element);
        description.AppendChild(doc.CreateWhitespace("\n  "));
    }

    /// <summary>The document as UTF-8 bytes, exactly as signed (no re-indentation).</summary>
    public static byte[] ToBytes(XmlDocument doc)
    {
        using var stream = new MemoryStream();
        var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = false };
        using (var w = XmlWriter.Create(stream, settings)) doc.Save(w);
        return stream.ToArray();
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")]
    private static partial Regex DatePattern();

    [GeneratedRegex(@"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$")]
    public static partial Regex EmailPattern();
}
