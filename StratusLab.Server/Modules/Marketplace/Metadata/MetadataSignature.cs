using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using System.Text;
using System.Xml;
using StratusLab.Server.Modules.Marketplace.Contracts;

namespace StratusLab.Server.Modules.Marketplace.Metadata;

/// <summary>A verified signature: the certificate that made it and the algorithms used.</summary>
internal sealed record VerifiedSignature(X509Certificate2 Certificate, string SignatureMethod, string DigestMethod)
{
    public string Thumbprint => Certificate.GetCertHashString(HashAlgorithmName.SHA256).ToLowerInvariant();
}

/// <summary>
/// Enveloped XML signatures over a whole entry (Reference URI="", enveloped-signature transform), with the X.509
/// certificate in KeyInfo. Verification accepts only that shape, so no part of the entry can sit outside the signature.
/// </summary>
internal static class MetadataSignature
{
    const string RsaSha1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    const string RsaSha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    const string RsaSha384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
    const string RsaSha512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";

    static readonly HashSet<string> SignatureMethods = [RsaSha1, RsaSha256, RsaSha384, RsaSha512];
    static readonly HashSet<string> DigestMethods =
        [SignedXml.XmlDsigSHA1Url, SignedXml.XmlDsigSHA256Url, SignedXml.XmlDsigSHA384Url, SignedXml.XmlDsigSHA512Url];
    static readonly HashSet<string> Canonicalizations =
    [
        SignedXml.XmlDsigC14NTransformUrl, SignedXml.XmlDsigC14NWithCommentsTransformUrl,
        SignedXml.XmlDsigExcC14NTransformUrl, SignedXml.XmlDsigExcC14NWithCommentsTransformUrl,
    ];

    /// <summary>Checks the one enveloped signature of the document; throws <see cref="MetadataException"/> (422) when it does not hold.</summary>
    public static VerifiedSignature Verify(XmlDocument doc)
    {
        var root = doc.DocumentElement ?? throw MetadataException.Invalid("The document is empty.");
        var signatures = doc.GetElementsByTagName("Signature", MetadataNames.Dsig).OfType<XmlElement>().ToList();
        if (signatures.Count == 0)
            throw MetadataException.Invalid("The entry is not signed. Sign it with 'stratuslab sign-metadata FILE --p12 KEY.p12' (an enveloped XML signature with your X.509 certificate), then upload it.");
        if (signatures.Count > 1)
            throw MetadataException.Invalid($"The entry has {signatures.Count} signatures; it must have exactly one. Re-sign it with 'stratuslab sign-metadata', which removes old signatures.");
        var element = signatures[0];
        if (element.ParentNode != root)
            throw MetadataException.Invalid("The signature must be a direct child of rdf:RDF (an enveloped signature over the whole entry).");

        var signed = new SignedXml(doc);
        try { signed.LoadXml(element); }
        catch (CryptographicException e) { throw MetadataException.Invalid($"The signature element is malformed: {e.Message}"); }

        var info = signed.SignedInfo ?? throw MetadataException.Invalid("The signature has no SignedInfo.");
        if (!Canonicalizations.Contains(info.CanonicalizationMethod))
            throw MetadataException.Invalid($"Canonicalization '{info.CanonicalizationMethod}' is not accepted; use C14N or exclusive C14N.");
        if (info.SignatureMethod is null || !SignatureMethods.Contains(info.SignatureMethod))
            throw MetadataException.Invalid($"Signature method '{info.SignatureMethod}' is not accepted; use RSA with SHA-256 (or SHA-1 as the old client did).");
        if (info.References.Count != 1 || info.References[0] is not Reference reference || reference.Uri != "")
            throw MetadataException.Invalid("The signature must have exactly one Reference, with URI=\"\" (the whole entry).");
        if (reference.DigestMethod is null || !DigestMethods.Contains(reference.DigestMethod))
            throw MetadataException.Invalid($"Digest method '{reference.DigestMethod}' is not accepted; use SHA-256 or SHA-1.");
        var transforms = Enumerable.Range(0, reference.TransformChain.Count).Select(i => reference.TransformChain[i].Algorithm).ToList();
        if (!transforms.Contains(SignedXml.XmlDsigEnvelopedSignatureTransformUrl)
            || transforms.Any(t => t is null || (t != SignedXml.XmlDsigEnvelopedSignatureTransformUrl && !Canonicalizations.Contains(t))))
            throw MetadataException.Invalid("The signature's transforms must be the enveloped-signature transform (and optionally canonicalization), nothing else.");

        var certificate = signed.KeyInfo.OfType<KeyInfoX509Data>()
            .SelectMany(d => d.Certificates?.Cast<X509Certificate>() ?? [])
            .Select(c => X509CertificateLoader.LoadCertificate(c.GetRawCertData()))
            .FirstOrDefault()
            ?? throw MetadataException.Invalid("The signature carries no X.509 certificate in KeyInfo/X509Data; sign with a certificate (PKCS#12 or PEM), not a bare key.");
        using var rsa = certificate.GetRSAPublicKey()
            ?? throw MetadataException.Invalid("The signing certificate does not hold an RSA key; StratusLab entries are signed with RSA.");
        if (rsa.KeySize < 1024)
            throw MetadataException.Invalid($"The signing key has {rsa.KeySize} bits; at least 1024 (better 2048 or more) are required.");

        bool ok;
        try { ok = signed.CheckSignature(certificate, verifySignatureOnly: true); }
        catch (CryptographicException e) { throw MetadataException.Invalid($"The signature cannot be checked: {e.Message}"); }
        if (!ok)
            throw MetadataException.Invalid("The signature does not verify: the entry was changed after it was signed, or the signature was made with another key. Re-sign the entry with 'stratuslab sign-metadata'.");
        return new VerifiedSignature(certificate, info.SignatureMethod, reference.DigestMethod);
    }

    /// <summary>The entry's endorser must be the certificate's owner: e-mail, subject and issuer must match it.</summary>
    public static void CheckEndorser(Endorser endorser, X509Certificate2 certificate)
    {
        var certEmail = CertificateEmail(certificate);
        if (certEmail is not null && !string.Equals(certEmail, endorser.Email, StringComparison.OrdinalIgnoreCase))
            throw MetadataException.Invalid($"The endorser e-mail {endorser.Email} does not match the signing certificate's {certEmail}; re-sign with your own certificate.");
        if (endorser.Subject is null || !DistinguishedNames.Match(endorser.Subject, certificate.SubjectName))
            throw MetadataException.Invalid($"The endorser subject '{endorser.Subject}' does not match the signing certificate's subject '{DistinguishedNames.Format(certificate.SubjectName)}'; re-sign the entry with 'stratuslab sign-metadata', which fills it in.");
        if (endorser.Issuer is null || !DistinguishedNames.Match(endorser.Issuer, certificate.IssuerName))
            throw MetadataException.Invalid($"The endorser issuer '{endorser.Issuer}' does not match the signing certificate's issuer '{DistinguishedNames.Format(certificate.IssuerName)}'; re-sign the entry with 'stratuslab sign-metadata'.");
    }

    public static string? CertificateEmail(X509Certificate2 certificate) =>
        certificate.GetNameInfo(X509NameType.EmailName, forIssuer: false) is { Length: > 0 } email ? email : null;

    /// <summary>
    /// Signs in place: removes old signatures, fills slreq:endorsement (created = <paramref name="now"/>, e-mail, subject,
    /// issuer from the certificate) and appends the enveloped signature. The e-mail is the certificate's, or
    /// <paramref name="email"/> when the certificate has none.
    /// </summary>
    public static void Sign(XmlDocument doc, X509Certificate2 certificate, string? email, DateTimeOffset now, SignatureAlgorithm algorithm = SignatureAlgorithm.RsaSha256)
    {
        using var key = certificate.GetRSAPrivateKey()
            ?? throw MetadataException.Invalid("The certificate has no RSA private key; give the PKCS#12 file or the PEM key that belongs to it.");
        var certEmail = CertificateEmail(certificate);
        if (certEmail is not null && email is not null && !string.Equals(certEmail, email, StringComparison.OrdinalIgnoreCase))
            throw MetadataException.Invalid($"--email {email} differs from the certificate's e-mail {certEmail}; the endorser must be the certificate's owner.");
        var address = certEmail ?? email
            ?? throw MetadataException.Invalid("The certificate holds no e-mail address; give the endorser's address with --email.");
        if (!MetadataXml.EmailPattern().IsMatch(address))
            throw MetadataException.Invalid($"'{address}' is not an e-mail address.");

        var root = doc.DocumentElement ?? throw MetadataException.Invalid("The document is empty.");
        foreach (var old in doc.GetElementsByTagName("Signature", MetadataNames.Dsig).OfType<XmlElement>().ToList())
            old.ParentNode!.RemoveChild(old);
        FillEndorsement(doc, address, DistinguishedNames.Format(certificate.SubjectName), DistinguishedNames.Format(certificate.IssuerName), now);

        var signed = new SignedXml(doc) { SigningKey = key };
        signed.SignedInfo!.CanonicalizationMethod = algorithm == SignatureAlgorithm.RsaSha1
            ? SignedXml.XmlDsigC14NWithCommentsTransformUrl
            : SignedXml.XmlDsigC14NTransformUrl;
        signed.SignedInfo.SignatureMethod = algorithm == SignatureAlgorithm.RsaSha1 ? RsaSha1 : RsaSha256;
        var reference = new Reference("") { DigestMethod = algorithm == SignatureAlgorithm.RsaSha1 ? SignedXml.XmlDsigSHA1Url : SignedXml.XmlDsigSHA256Url };
        reference.AddTransform(new XmlDsigEnvelopedSignatureTransform());
        signed.AddReference(reference);
        var keyInfo = new KeyInfo();
        keyInfo.AddClause(new KeyInfoX509Data(certificate));
        signed.KeyInfo = keyInfo;
        signed.ComputeSignature();
        root.AppendChild(doc.ImportNode(signed.GetXml(), deep: true));
    }

    static void FillEndorsement(XmlDocument doc, string email, string subject, string issuer, DateTimeOffset now)
    {
        var endorsements = doc.GetElementsByTagName("endorsement", MetadataNames.SlReq).OfType<XmlElement>().ToList();
        if (endorsements.Count != 1)
            throw MetadataException.Invalid($"The entry has {endorsements.Count} slreq:endorsement elements; it needs exactly one (build it with 'stratuslab build-metadata').");
        var endorsement = endorsements[0];
        endorsement.RemoveAll();
        endorsement.SetAttribute("parseType", MetadataNames.Rdf, "Resource");
        var rdfPrefix = doc.DocumentElement!.GetPrefixOfNamespace(MetadataNames.Rdf);
        if (endorsement.GetAttributeNode("parseType", MetadataNames.Rdf) is { } attr && rdfPrefix.Length > 0) attr.Prefix = rdfPrefix;

        XmlElement Element(string prefix, string ns, string name, string? text = null)
        {
            var e = doc.CreateElement(doc.DocumentElement!.GetPrefixOfNamespace(ns) is { Length: > 0 } p ? p : prefix, name, ns);
            if (text is not null) e.InnerText = text;
            return e;
        }

        endorsement.AppendChild(Element("dcterms", MetadataNames.DcTerms, "created", MetadataXml.Format(now)));
        var endorser = Element("slreq", MetadataNames.SlReq, "endorser");
        var parseType = doc.CreateAttribute(rdfPrefix.Length > 0 ? rdfPrefix : "rdf", "parseType", MetadataNames.Rdf);
        parseType.Value = "Resource";
        endorser.Attributes.Append(parseType);
        endorser.AppendChild(Element("slreq", MetadataNames.SlReq, "email", email));
        endorser.AppendChild(Element("slreq", MetadataNames.SlReq, "subject", subject));
        endorser.AppendChild(Element("slreq", MetadataNames.SlReq, "issuer", issuer));
        endorsement.AppendChild(endorser);
    }
}

/// <summary>Distinguished names written as the Java client wrote them (RFC 2253: most specific first, ',' between RDNs) and compared by meaning.</summary>
internal static class DistinguishedNames
{
    static readonly Dictionary<string, string> ShortNames = new()
    {
        ["2.5.4.3"] = "CN", ["2.5.4.11"] = "OU", ["2.5.4.10"] = "O", ["2.5.4.6"] = "C", ["2.5.4.7"] = "L",
        ["2.5.4.8"] = "ST", ["2.5.4.9"] = "STREET", ["0.9.2342.19200300.100.1.25"] = "DC", ["0.9.2342.19200300.100.1.1"] = "UID",
        ["1.2.840.113549.1.9.1"] = "EMAILADDRESS", ["2.5.4.5"] = "SERIALNUMBER",
    };

    public static string Format(X500DistinguishedName name)
    {
        var parts = new List<string>();
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.HasMultipleElements)
                return name.Decode(X500DistinguishedNameFlags.UseCommas);
            var oid = rdn.GetSingleElementType().Value ?? "";
            parts.Add($"{(ShortNames.TryGetValue(oid, out var s) ? s : oid)}={Escape(rdn.GetSingleElementValue() ?? "")}");
        }
        return string.Join(",", parts);
    }

    /// <summary>True when <paramref name="text"/> (from an entry) names the same entity as <paramref name="name"/> (from a certificate).</summary>
    public static bool Match(string text, X500DistinguishedName name)
    {
        if (Canonical(text) == Canonical(Format(name))) return true;
        try
        {
            var parsed = new X500DistinguishedName(text);
            var a = parsed.EnumerateRelativeDistinguishedNames().ToList();
            var b = name.EnumerateRelativeDistinguishedNames().ToList();
            return a.Count == b.Count && a.Zip(b).All(p =>
                !p.First.HasMultipleElements && !p.Second.HasMultipleElements
                && p.First.GetSingleElementType().Value == p.Second.GetSingleElementType().Value
                && p.First.GetSingleElementValue() == p.Second.GetSingleElementValue());
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    static string Escape(string value)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' or '=' || (i == 0 && c is '#' or ' ') || (i == value.Length - 1 && c == ' '))
                sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }

    static string Canonical(string dn)
    {
        var parts = new List<string>();
        var current = new StringBuilder();
        for (var i = 0; i < dn.Length; i++)
        {
            if (dn[i] == '\\' && i + 1 < dn.Length) { current.Append(dn[i]).Append(dn[++i]); continue; }
            if (dn[i] is ',' or ';') { parts.Add(current.ToString()); current.Clear(); continue; }
            current.Append(dn[i]);
        }
        parts.Add(current.ToString());
        return string.Join(",", parts.Select(p =>
        {
            var eq = p.IndexOf('=');
            if (eq < 0) return p.Trim();
            var type = p[..eq].Trim().ToUpperInvariant() switch { "E" or "EMAIL" => "EMAILADDRESS", "S" => "ST", var t => t };
            return type + "=" + p[(eq + 1)..].Trim();
        }));
    }
}
