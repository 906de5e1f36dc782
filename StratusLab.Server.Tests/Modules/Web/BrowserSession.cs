using System.Net;
using System.Text.RegularExpressions;
using StratusLab.Server.Tests.Support;

namespace StratusLab.Server.Tests.Modules.Web;

/// <summary>What a browser does with the dashboard, over plain HTTP: a cookie jar, no automatic redirects, forms with their CSRF field.</summary>
public sealed partial class BrowserSession : IDisposable
{
    public CookieContainer Cookies { get; } = new();
    public HttpClient Http { get; }
    readonly Uri _base;

    public BrowserSession(TestServer server)
    {
        _base = server.BaseAddress;
        Http = new HttpClient(new HttpClientHandler { CookieContainer = Cookies, AllowAutoRedirect = false, UseCookies = true })
        {
            BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60),
        };
    }

    public async Task<(HttpResponseMessage Response, string Html)> GetAsync(string path)
    {
        var response = await Http.GetAsync(path);
        return (response, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The CSRF token of a page's forms (from its meta tag).</summary>
    public static string CsrfOf(string html) =>
        CsrfMeta().Match(html) is { Success: true } m ? WebUtility.HtmlDecode(m.Groups[1].Value) : throw new AssertionException("the page has no CSRF token:\n" + html);

    /// <summary>Posts a form as the page at <paramref name="fromPage"/> would (with its CSRF token), or forged without one.</summary>
    public async Task<(HttpResponseMessage Response, string Html)> PostFormAsync(string path, IEnumerable<KeyValuePair<string, string>> fields, string? fromPage = "/ui/instances")
    {
        var all = fields.ToList();
        if (fromPage is not null)
        {
            var (_, html) = await GetAsync(fromPage);
            all.Add(new("__csrf", CsrfOf(html)));
        }
        var response = await Http.PostAsync(path, new FormUrlEncodedContent(all));
        return (response, await response.Content.ReadAsStringAsync());
    }

    public async Task<HttpResponseMessage> SignInAsync(string user, string password)
    {
        var (_, form) = await GetAsync("/ui/signin");
        var response = await Http.PostAsync("/ui/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["user"] = user, ["password"] = password, ["returnUrl"] = "/ui/instances", ["__csrf"] = CsrfOf(form),
        }));
        return response;
    }

    public Cookie? Session => Cookies.GetCookies(_base).FirstOrDefault(c => c.Name == "stratuslab.session");

    public void Dispose() => Http.Dispose();

    [GeneratedRegex("<meta name=\"csrf-token\" content=\"([^\"]*)\"")]
    private static partial Regex CsrfMeta();
}
