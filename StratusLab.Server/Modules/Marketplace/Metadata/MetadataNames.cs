namespace StratusLab.Server.Modules.Marketplace.Metadata;

/// <summary>The namespaces and fixed values of StratusLab metadata.</summary>
internal static class MetadataNames
{
    public const string Rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
    public const string DcTerms = "http://purl.org/dc/terms/";
    public const string SlReq = "http://mp.stratuslab.eu/slreq#";
    public const string SlTerms = "http://mp.stratuslab.eu/slterms#";
    public const string Dsig = "http://www.w3.org/2000/09/xmldsig#";
    public const string Xml = "http://www.w3.org/XML/1998/namespace";
    /// <summary>Every StratusLab entry carries this xml:base.</summary>
    public const string Base = "http://mp.stratuslab.eu/";
}
