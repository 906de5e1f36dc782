using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace StratusLab.Server.Modules.Occi;

/// <summary>A Category as GFD.185 renders it: a kind, mixin or action, identified by scheme + term.</summary>
internal sealed record OcciCategory(
    string Term, string Scheme, string Class, string? Title = null, string? Rel = null, string? Location = null,
    IReadOnlyList<string>? Attributes = null, IReadOnlyList<string>? Actions = null)
{
    public string Id => Scheme + Term;
}

/// <summary>An attribute value: a quoted string, or a bare number or boolean.</summary>
internal sealed record OcciValue(string Text, bool IsString)
{
    public static OcciValue Str(string s) => new(s, true);
    public static OcciValue Num(double n) => new(n.ToString("0.###", CultureInfo.InvariantCulture), false);
    public static OcciValue Num(long n) => new(n.ToString(CultureInfo.InvariantCulture), false);
    public static OcciValue Bool(bool b) => new(b ? "true" : "false", false);
}

/// <summary>A Link header: a target, its rel, the link's own location (self), its kind and attributes.</summary>
internal sealed record OcciLink(string Target, string? Rel, string? Self, string? Category, IReadOnlyList<KeyValuePair<string, OcciValue>> Attributes);

/// <summary>What a request rendered: categories, links, attributes and locations, in whichever rendering it came.</summary>
internal sealed class OcciInput
{
    public List<OcciCategory> Categories { get; } = [];
    public List<OcciLink> Links { get; } = [];
    public Dictionary<string, OcciValue> Attributes { get; } = new(StringComparer.Ordinal);
    public List<string> Locations { get; } = [];
    public bool IsEmpty => Categories.Count == 0 && Links.Count == 0 && Attributes.Count == 0 && Locations.Count == 0;
}

/// <summary>A malformed rendering: 400, naming the header at fault and what is wrong with it.</summary>
internal sealed class OcciRenderingException(string header, string detail) : Exception($"{header}: {detail}")
{
    public string Header { get; } = header;
}

/// <summary>GFD.185's text renderings: a strict parser for Category, Link, X-OCCI-Attribute and X-OCCI-Location, and the writer.</summary>
internal static partial class OcciRendering
{
    public const int MaxHeaderChars = 8192;
    public const int MaxElements = 2000;
    public static readonly string[] Headers = ["Category", "Link", "X-OCCI-Attribute", "X-OCCI-Location"];

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    private static partial Regex TermPattern();

    [GeneratedRegex(@"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")]
    private static partial Regex AttributeNamePattern();

    [GeneratedRegex(@"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")]
    private static partial Regex NumberPattern();

    /// <summary>Parses the text/occi rendering: the four headers of the request, each a comma-separated list.</summary>
    public static OcciInput FromHeaders(IHeaderDictionary headers)
    {
        var input = new OcciInput();
        foreach (var name in Headers)
            foreach (var value in headers[name])
                Add(input, name, value ?? "");
        return input;
    }

    /// <summary>Parses the text/plain rendering: one "Name: value" per line (blank lines ignored).</summary>
    public static OcciInput FromPlainText(string body)
    {
        var input = new OcciInput();
        var lineNumber = 0;
        foreach (var raw in body.Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            var colon = line.IndexOf(':');
            var name = colon > 0 ? line[..colon].Trim() : "";
            var header = Headers.FirstOrDefault(h => h.Equals(name, StringComparison.OrdinalIgnoreCase));
            if (header is null)
                throw new OcciRenderingException($"line {lineNumber}",
                    $"'{Clip(line)}' is not a rendering line; text/plain takes lines 'Category: ...', 'Link: ...', 'X-OCCI-Attribute: ...' or 'X-OCCI-Location: ...'.");
            Add(input, header, line[(colon + 1)..]);
        }
        return input;
    }

    /// <summary>Parses text/uri-list: one location per line, '#' lines are comments.</summary>
    public static OcciInput FromUriList(string body)
    {
        var input = new OcciInput();
        foreach (var raw in body.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            input.Locations.Add(ParseLocation(line));
        }
        return input;
    }

    static void Add(OcciInput input, string header, string value)
    {
        if (value.Length > MaxHeaderChars)
            throw new OcciRenderingException(header, $"the value is {value.Length} characters long; at most {MaxHeaderChars} are accepted per header. Send fewer elements per request.");
        foreach (var element in SplitOutsideQuotes(header, value, ','))
        {
            if (input.Categories.Count + input.Links.Count + input.Attributes.Count + input.Locations.Count >= MaxElements)
                throw new OcciRenderingException(header, $"the request renders more than {MaxElements} elements; send fewer.");
            var text = element.Trim();
            if (text.Length == 0)
                throw new OcciRenderingException(header, "an empty element (two commas in a row, or a trailing comma).");
            switch (header)
            {
                case "Category": input.Categories.Add(ParseCategory(text)); break;
                case "Link": input.Links.Add(ParseLink(text)); break;
                case "X-OCCI-Location": input.Locations.Add(ParseLocation(text)); break;
                default:
                    var (name, attrValue) = ParseAttribute(text);
                    if (!input.Attributes.TryAdd(name, attrValue))
                        throw new OcciRenderingException("X-OCCI-Attribute", $"'{name}' is given twice; give each attribute once.");
                    break;
            }
        }
    }

    /// <summary>term; scheme="..."; class="kind|mixin|action"[; title="..."][; rel="..."][; location="..."][; attributes="..."][; actions="..."]</summary>
    public static OcciCategory ParseCategory(string text)
    {
        var parts = SplitOutsideQuotes("Category", text, ';');
        var term = parts[0].Trim();
        if (!TermPattern().IsMatch(term))
            throw new OcciRenderingException("Category",
                $"'{Clip(term)}' is not a term: a term is letters, digits, '-' and '_', starting with a letter or digit (e.g. 'compute; scheme=\"http://schemas.ogf.org/occi/infrastructure#\"; class=\"kind\"').");
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in parts.Skip(1))
        {
            var (key, value) = Parameter("Category", part);
            if (key is not ("scheme" or "class" or "title" or "rel" or "location" or "attributes" or "actions"))
                throw new OcciRenderingException("Category", $"'{key}' is not a Category parameter; use scheme, class, title, rel, location, attributes or actions.");
            if (!value.IsString)
                throw new OcciRenderingException("Category", $"the value of '{key}' must be a quoted string, as in {key}=\"...\".");
            if (!values.TryAdd(key, value.Text))
                throw new OcciRenderingException("Category", $"'{key}' is given twice in the category '{term}'.");
        }
        if (!values.TryGetValue("scheme", out var scheme))
            throw new OcciRenderingException("Category", $"the category '{term}' has no scheme; add scheme=\"...#\".");
        if (!Uri.TryCreate(scheme, UriKind.Absolute, out var schemeUri) || schemeUri.Scheme is not ("http" or "https") || !scheme.EndsWith('#'))
            throw new OcciRenderingException("Category", $"the scheme '{Clip(scheme)}' of '{term}' is not an http(s) URI ending with '#'.");
        if (!values.TryGetValue("class", out var cls))
            throw new OcciRenderingException("Category", $"the category '{term}' has no class; add class=\"kind\", \"mixin\" or \"action\".");
        if (cls is not ("kind" or "mixin" or "action"))
            throw new OcciRenderingException("Category", $"class=\"{Clip(cls)}\" of '{term}' is not kind, mixin or action.");
        return new OcciCategory(term, scheme, cls, values.GetValueOrDefault("title"), values.GetValueOrDefault("rel"), values.GetValueOrDefault("location"),
            values.TryGetValue("attributes", out var a) ? a.Split(' ', StringSplitOptions.RemoveEmptyEntries) : null,
            values.TryGetValue("actions", out var x) ? x.Split(' ', StringSplitOptions.RemoveEmptyEntries) : null);
    }

    /// <summary>&lt;target&gt;; rel="..."[; self="..."][; category="..."][; attribute=value]...</summary>
    public static OcciLink ParseLink(string text)
    {
        var parts = SplitOutsideQuotes("Link", text, ';');
        var target = parts[0].Trim();
        if (target.Length < 3 || target[0] != '<' || target[^1] != '>')
            throw new OcciRenderingException("Link", $"'{Clip(target)}' is not a link target; write it in angle brackets, as in </network/1>.");
        var location = ParseLocation(target[1..^1], "Link");
        string? rel = null, self = null, category = null;
        var attributes = new List<KeyValuePair<string, OcciValue>>();
        foreach (var part in parts.Skip(1))
        {
            var (key, value) = Parameter("Link", part);
            switch (key)
            {
                case "rel" or "self" or "category" when !value.IsString:
                    throw new OcciRenderingException("Link", $"the value of '{key}' must be a quoted string.");
                case "rel": rel = value.Text; break;
                case "self": self = value.Text; break;
                case "category": category = value.Text; break;
                default:
                    if (!AttributeNamePattern().IsMatch(key))
                        throw new OcciRenderingException("Link", $"'{Clip(key)}' is not a link parameter or attribute name.");
                    attributes.Add(new(key, value));
                    break;
            }
        }
        return new OcciLink(location, rel, self, category, attributes);
    }

    /// <summary>name=value where value is "a quoted string", a number or true/false.</summary>
    public static (string Name, OcciValue Value) ParseAttribute(string text)
    {
        var eq = text.IndexOf('=');
        if (eq < 0)
            throw new OcciRenderingException("X-OCCI-Attribute", $"'{Clip(text)}' has no value; write name=value, e.g. occi.core.title=\"my vm\".");
        var name = text[..eq].Trim();
        if (!AttributeNamePattern().IsMatch(name))
            throw new OcciRenderingException("X-OCCI-Attribute", $"'{Clip(name)}' is not an attribute name (lower-case dotted words, e.g. occi.compute.cores).");
        var value = Value("X-OCCI-Attribute", name, text[(eq + 1)..].Trim());
        return (name, value);
    }

    static (string Key, OcciValue Value) Parameter(string header, string part)
    {
        var eq = part.IndexOf('=');
        if (eq < 0)
            throw new OcciRenderingException(header, $"'{Clip(part.Trim())}' has no value; parameters are written key=\"value\".");
        var key = part[..eq].Trim();
        return (key, Value(header, key, part[(eq + 1)..].Trim()));
    }

    static OcciValue Value(string header, string name, string raw)
    {
        if (raw.Length == 0)
            throw new OcciRenderingException(header, $"'{Clip(name)}' has an empty value; give a quoted string, a number or true/false.");
        if (raw[0] == '"')
        {
            var sb = new StringBuilder();
            var i = 1;
            for (; i < raw.Length; i++)
            {
                var c = raw[i];
                if (c == '\\' && i + 1 < raw.Length) { sb.Append(raw[++i]); continue; }
                if (c == '"') break;
                sb.Append(c);
            }
            if (i >= raw.Length)
                throw new OcciRenderingException(header, $"the quoted value of '{Clip(name)}' is not closed; end it with a double quote.");
            if (i != raw.Length - 1)
                throw new OcciRenderingException(header, $"the value of '{Clip(name)}' has text after its closing quote: '{Clip(raw[(i + 1)..])}'.");
            return OcciValue.Str(sb.ToString());
        }
        if (raw is "true" or "false" || NumberPattern().IsMatch(raw)) return new OcciValue(raw, false);
        throw new OcciRenderingException(header, $"the value of '{Clip(name)}' ({Clip(raw)}) is neither a quoted string nor a number nor true/false; put strings in double quotes.");
    }

    /// <summary>A location as a path on this server: an absolute path, or an http(s) URL whose path is taken.</summary>
    public static string ParseLocation(string text, string header = "X-OCCI-Location")
    {
        text = text.Trim();
        if (text.StartsWith('/') && Uri.TryCreate("http://localhost" + text, UriKind.Absolute, out var rel) && rel.AbsolutePath == text.Split('?')[0])
            return text;
        if (Uri.TryCreate(text, UriKind.Absolute, out var abs) && abs.Scheme is "http" or "https")
            return abs.PathAndQuery;
        throw new OcciRenderingException(header, $"'{Clip(text)}' is not a location; give a path such as /compute/1 or an http(s) URL.");
    }

    /// <summary>Splits on a separator that is not inside a double-quoted string (with backslash escapes).</summary>
    static List<string> SplitOutsideQuotes(string header, string text, char separator)
    {
        var parts = new List<string>();
        var start = 0;
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted && c == '\\') { i++; continue; }
            if (c == '"') quoted = !quoted;
            else if (c == separator && !quoted)
            {
                parts.Add(text[start..i]);
                start = i + 1;
            }
        }
        if (quoted)
            throw new OcciRenderingException(header, $"a quoted string is not closed in '{Clip(text)}'; end it with a double quote.");
        parts.Add(text[start..]);
        return parts;
    }

    static string Clip(string s)
    {
        s = new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return s.Length > 60 ? s[..60] + "..." : s;
    }

    // ---- writing ----

    public static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\r", " ").Replace("\n", " ") + "\"";

    public static string Render(OcciCategory c)
    {
        var sb = new StringBuilder(c.Term).Append("; scheme=").Append(Quote(c.Scheme)).Append("; class=").Append(Quote(c.Class));
        if (c.Title is not null) sb.Append("; title=").Append(Quote(c.Title));
        if (c.Rel is not null) sb.Append("; rel=").Append(Quote(c.Rel));
        if (c.Location is not null) sb.Append("; location=").Append(Quote(c.Location));
        if (c.Attributes is { Count: > 0 }) sb.Append("; attributes=").Append(Quote(string.Join(' ', c.Attributes)));
        if (c.Actions is { Count: > 0 }) sb.Append("; actions=").Append(Quote(string.Join(' ', c.Actions)));
        return sb.ToString();
    }

    public static string Render(string name, OcciValue value) => name + "=" + (value.IsString ? Quote(value.Text) : value.Text);

    public static string Render(OcciLink link)
    {
        var sb = new StringBuilder("<").Append(link.Target).Append('>');
        if (link.Rel is not null) sb.Append("; rel=").Append(Quote(link.Rel));
        if (link.Self is not null) sb.Append("; self=").Append(Quote(link.Self));
        if (link.Category is not null) sb.Append("; category=").Append(Quote(link.Category));
        foreach (var (k, v) in link.Attributes) sb.Append("; ").Append(Render(k, v));
        return sb.ToString();
    }
}

/// <summary>What a response renders, written as text/plain, text/occi or text/uri-list.</summary>
internal sealed class OcciOutput
{
    public List<OcciCategory> Categories { get; } = [];
    public List<OcciLink> Links { get; } = [];
    public List<KeyValuePair<string, OcciValue>> Attributes { get; } = [];
    public List<string> Locations { get; } = [];

    public void Attr(string name, OcciValue? value)
    {
        if (value is not null) Attributes.Add(new(name, value));
    }

    /// <summary>The rendering's lines as (header, value), in GFD.185's order.</summary>
    public IEnumerable<(string Header, string Value)> Lines(string baseUrl) =>
        Categories.Select(c => ("Category", OcciRendering.Render(c)))
            .Concat(Links.Select(l => ("Link", OcciRendering.Render(l))))
            .Concat(Attributes.Select(a => ("X-OCCI-Attribute", OcciRendering.Render(a.Key, a.Value))))
            .Concat(Locations.Select(l => ("X-OCCI-Location", baseUrl + l)));
}
