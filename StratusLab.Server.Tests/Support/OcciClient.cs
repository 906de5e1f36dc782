using System.Diagnostics;
using System.Net.Http.Headers;

namespace StratusLab.Server.Tests.Support;

/// <summary>How a test sends an OCCI rendering: in the body (text/plain) or as headers (text/occi).</summary>
public enum OcciRenderingKind { Plain, Occi }

/// <summary>An OCCI answer, whichever rendering it came in, as (header, value) lines.</summary>
public sealed record OcciAnswer(int Status, string Body, IReadOnlyList<(string Header, string Value)> Lines, HttpResponseMessage Response)
{
    public IEnumerable<string> Values(string header) => Lines.Where(l => l.Header.Equals(header, StringComparison.OrdinalIgnoreCase)).Select(l => l.Value);
    public IEnumerable<string> Categories => Values("Category");
    public IEnumerable<string> Links => Values("Link");
    public IEnumerable<string> Locations => Values("X-OCCI-Location");

    /// <summary>An attribute's rendered value (quotes kept), or null.</summary>
    public string? Attribute(string name) =>
        Values("X-OCCI-Attribute").Select(a => a.Split('=', 2)).Where(p => p[0].Trim() == name).Select(p => p[1].Trim()).FirstOrDefault();

    public string? Location => Response.Headers.Location?.ToString();
}

/// <summary>A small OCCI client for API and host tests: renders requests as text/plain or text/occi and parses answers.</summary>
public sealed class OcciClient(HttpClient http, OcciRenderingKind kind)
{
    public HttpClient Http => http;
    public OcciRenderingKind Kind => kind;

    public Task<OcciAnswer> GetAsync(string path, params string[] lines) => SendAsync(HttpMethod.Get, path, lines);
    public Task<OcciAnswer> PostAsync(string path, params string[] lines) => SendAsync(HttpMethod.Post, path, lines);
    public Task<OcciAnswer> PutAsync(string path, params string[] lines) => SendAsync(HttpMethod.Put, path, lines);
    public Task<OcciAnswer> DeleteAsync(string path, params string[] lines) => SendAsync(HttpMethod.Delete, path, lines);

    /// <summary>Sends "Header: value" lines in this client's rendering, asking for the same rendering back.</summary>
    public async Task<OcciAnswer> SendAsync(HttpMethod method, string path, IReadOnlyList<string> lines, string? accept = null)
    {
        using var request = new HttpRequestMessage(method, path);
        var mediaType = kind == OcciRenderingKind.Plain ? "text/plain" : "text/occi";
        request.Headers.TryAddWithoutValidation("Accept", accept ?? mediaType);
        if (kind == OcciRenderingKind.Plain)
        {
            if (lines.Count > 0)
                request.Content = new StringContent(string.Join("\n", lines) + "\n", System.Text.Encoding.UTF8, "text/plain");
        }
        else
        {
            foreach (var group in lines.Select(l => l.Split(':', 2)).GroupBy(p => p[0].Trim()))
                request.Headers.TryAddWithoutValidation(group.Key, string.Join(", ", group.Select(p => p[1].Trim())));
            request.Content = new ByteArrayContent([]);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("text/occi");
        }
        var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        return new OcciAnswer((int)response.StatusCode, body, Parse(response, body), response);
    }

    static readonly string[] Headers = ["Category", "Link", "X-OCCI-Attribute", "X-OCCI-Location"];

    /// <summary>The answer's lines: from the body for text/plain, from the headers (split on commas outside quotes) for text/occi.</summary>
    public static List<(string, string)> Parse(HttpResponseMessage response, string body)
    {
        var lines = new List<(string, string)>();
        var type = response.Content.Headers.ContentType?.MediaType;
        if (type == "text/occi")
        {
            foreach (var header in Headers)
                if (response.Headers.TryGetValues(header, out var values))
                    foreach (var value in values)
                        lines.AddRange(SplitOutsideQuotes(value).Select(v => (header, v.Trim())));
        }
        else if (type == "text/uri-list")
            lines.AddRange(body.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => ("X-OCCI-Location", l)));
        else
        {
            foreach (var line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = line.IndexOf(':');
                if (colon > 0 && Headers.Contains(line[..colon], StringComparer.OrdinalIgnoreCase)) lines.Add((line[..colon], line[(colon + 1)..].Trim()));
            }
        }
        return lines;
    }

    static IEnumerable<string> SplitOutsideQuotes(string text)
    {
        var start = 0;
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            if (quoted && text[i] == '\\') { i++; continue; }
            if (text[i] == '"') quoted = !quoted;
            else if (text[i] == ',' && !quoted)
            {
                yield return text[start..i];
                start = i + 1;
            }
        }
        yield return text[start..];
    }

    /// <summary>The path of a Location or X-OCCI-Location URL.</summary>
    public static string PathOf(string location) => new Uri(location).AbsolutePath;

    /// <summary>Polls a compute until its occi.compute.state is the given one (or the timeout passes).</summary>
    public async Task<OcciAnswer> WaitStateAsync(string path, string state, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var answer = await GetAsync(path);
            if (answer.Status == 200 && answer.Attribute("occi.compute.state") == $"\"{state}\"") return answer;
            if (sw.Elapsed > timeout)
                Assert.Fail($"{path} did not become {state} within {timeout.TotalSeconds} s; last answer {answer.Status}: {answer.Body} " +
                            string.Join("; ", answer.Lines.Select(l => l.Header + ": " + l.Value)));
            await Task.Delay(200);
        }
    }

    /// <summary>Polls until GET answers 404 (a deleted compute).</summary>
    public async Task WaitGoneAsync(string path, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while ((await GetAsync(path)).Status != 404)
        {
            if (sw.Elapsed > timeout) Assert.Fail($"{path} was still there after {timeout.TotalSeconds} s");
            await Task.Delay(200);
        }
    }
}
