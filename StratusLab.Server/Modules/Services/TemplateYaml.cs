using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using StratusLab.Server.Modules.Services.Contracts;
using StratusLab.Server.Platform.Contracts;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace StratusLab.Server.Modules.Services;

/// <summary>
/// A service template written in YAML: read into the same <see cref="ServiceTemplate"/> as the JSON body (so the same validation applies),
/// remembering where each field sits, so that a rejection can name the field's line and column. snake_case keys (depends_on,
/// ready_gate, cooldown_seconds) are read as their camelCase JSON names.
/// </summary>
internal sealed class TemplateYaml
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowReadingFromString,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    readonly Dictionary<string, Mark> _positions = new(StringComparer.OrdinalIgnoreCase);

    TemplateYaml() { }

    public required ServiceTemplate Template { get; init; }

    /// <summary>Parses <paramref name="text"/>; a syntax error, a wrong type or an unknown field is an InvalidInputException naming the line and column.</summary>
    public static TemplateYaml Parse(string text)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            throw new InvalidInputException("template", $"The YAML does not parse at line {e.Start.Line}, column {e.Start.Column}: {Reason(e)} Fix the YAML (or send JSON).");
        }
        if (stream.Documents.Count != 1)
            throw new InvalidInputException("template", $"The YAML holds {stream.Documents.Count} documents; send exactly one service template.");
        var positions = new Dictionary<string, Mark>(StringComparer.OrdinalIgnoreCase);
        var root = stream.Documents[0].RootNode;
        var json = ToJson(root, "", positions);
        if (json is not JsonObject)
            throw new InvalidInputException("template", $"The YAML at line {root.Start.Line}, column {root.Start.Column} is not a mapping; a service template is a mapping with 'name' and 'roles'.");
        ServiceTemplate? template;
        try { template = json.Deserialize<ServiceTemplate>(Json); }
        catch (JsonException e)
        {
            var field = FieldOf(e.Path);
            var where = field is not null && Find(positions, field) is { } m ? $" at line {m.Line}, column {m.Column}" : "";
            var reason = e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? "unknown field (check the spelling against the JSON template's fields)"
                : "wrong type (a list, a mapping or a single value is expected there)";
            throw new InvalidInputException(field ?? "template", $"Field '{field ?? "(the template)"}'{where}: {reason}.");
        }
        var yaml = new TemplateYaml { Template = template ?? new ServiceTemplate() };
        foreach (var (k, v) in positions) yaml._positions[k] = v;
        return yaml;
    }

    /// <summary>The same rejection with the field's position in the YAML (the nearest enclosing field's when the field itself is absent).</summary>
    public InvalidInputException WithPosition(InvalidInputException e)
    {
        if (e.Field is not { } field || Find(_positions, field) is not { } m) return e;
        var detail = e.Message.TrimEnd();
        return new InvalidInputException(field, $"{detail} (YAML line {m.Line}, column {m.Column}, {field})", e.Kind == Rejection.Unprocessable);
    }

    /// <summary>Where a field (roles[1].elasticity[0].expression) is, or its nearest ancestor that is written.</summary>
    static Mark? Find(IReadOnlyDictionary<string, Mark> positions, string field)
    {
        for (var f = field; f.Length > 0;)
        {
            if (positions.TryGetValue(f, out var m)) return m;
            var cut = Math.Max(f.LastIndexOf('.'), f.LastIndexOf('['));
            if (cut <= 0) break;
            f = f[..cut];
        }
        return null;
    }

    static string Reason(YamlException e)
    {
        var message = e.InnerException?.Message ?? e.Message;
        var cut = message.IndexOf("): ", StringComparison.Ordinal);
        return (cut > 0 ? message[(cut + 3)..] : message).TrimEnd('.') + ".";
    }

    /// <summary>$.roles[1].cardinality.min → roles[1].cardinality.min.</summary>
    static string? FieldOf(string? path) => path is null or "$" ? null : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');

    static JsonNode? ToJson(YamlNode node, string path, Dictionary<string, Mark> positions)
    {
        if (path.Length > 0) positions[path] = node.Start;
        switch (node)
        {
            case YamlMappingNode map:
            {
                var o = new JsonObject();
                foreach (var (keyNode, value) in map.Children)
                {
                    var raw = (keyNode as YamlScalarNode)?.Value
                        ?? throw new InvalidInputException(path.Length == 0 ? "template" : path, $"The key at line {keyNode.Start.Line}, column {keyNode.Start.Column} is not a plain name.");
                    // Context keys are the guest's variable names: kept as written.
                    var key = path.EndsWith("context", StringComparison.OrdinalIgnoreCase) ? raw : Camel(raw);
                    if (o.ContainsKey(key))
                        throw new InvalidInputException(Join(path, key), $"'{raw}' is given twice (line {keyNode.Start.Line}, column {keyNode.Start.Column}); give it once.");
                    o[key] = ToJson(value, Join(path, key), positions);
                    positions[Join(path, key)] = keyNode.Start;
                }
                return o;
            }
            case YamlSequenceNode seq:
            {
                var a = new JsonArray();
                var i = 0;
                foreach (var item in seq.Children) a.Add(ToJson(item, $"{path}[{i++.ToString(CultureInfo.InvariantCulture)}]", positions));
                return a;
            }
            case YamlScalarNode scalar:
                // Plain ~, null and empty are null; every other scalar is text (numbers are read from text where a number is expected).
                if (scalar.Style == YamlDotNet.Core.ScalarStyle.Plain && scalar.Value is null or "" or "~" or "null" or "Null" or "NULL") return null;
                return JsonValue.Create(scalar.Value);
            default:
                throw new InvalidInputException(path.Length == 0 ? "template" : path, $"The node at line {node.Start.Line}, column {node.Start.Column} is an alias; write the value out.");
        }
    }

    static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    static string Camel(string key)
    {
        if (!key.Contains('_')) return key;
        var parts = key.Split('_', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 0 ? key : parts[0] + string.Concat(parts.Skip(1).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
    }
}
