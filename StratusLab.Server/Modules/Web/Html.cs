using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace StratusLab.Server.Modules.Web;

/// <summary>
/// HTML that is safe to write as is. Only <see cref="Html.H"/> (whose holes are all encoded unless they are
/// themselves <see cref="Markup"/>) and the fixed helpers below make it, so a page cannot forget to escape a value.
/// </summary>
internal readonly record struct Markup(string Value)
{
    public static readonly Markup Empty = new("");
    public override string ToString() => Value;
    public static Markup Join(IEnumerable<Markup> parts) => new(string.Concat(parts.Select(p => p.Value)));
}

/// <summary>An interpolated-string handler that HTML-encodes every hole (text and attribute contexts alike).</summary>
[InterpolatedStringHandler]
internal ref struct HtmlHandler
{
    readonly StringBuilder _sb;

    public HtmlHandler(int literalLength, int formattedCount) => _sb = new StringBuilder(literalLength + formattedCount * 16);

    public void AppendLiteral(string s) => _sb.Append(s);

    public void AppendFormatted(Markup m) => _sb.Append(m.Value);

    public void AppendFormatted<T>(T value)
    {
        var text = value switch
        {
            null => "",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
        _sb.Append(Html.Encoder.Encode(text));
    }

    public override string ToString() => _sb.ToString();
}

internal static class Html
{
    public static readonly HtmlEncoder Encoder = HtmlEncoder.Default;

    /// <summary>Markup from an interpolated string whose every hole is encoded.</summary>
    public static Markup H(HtmlHandler html) => new(html.ToString());

    /// <summary>Markup of each item, concatenated.</summary>
    public static Markup Each<T>(IEnumerable<T> items, Func<T, Markup> render) => Markup.Join(items.Select(render));

    /// <summary>A path segment or query value for an href (then encoded again as an attribute by the handler).</summary>
    public static string U(string value) => Uri.EscapeDataString(value);

    public static Markup If(bool condition, Markup markup) => condition ? markup : Markup.Empty;
}
