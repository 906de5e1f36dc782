using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Platform.Http;

/// <summary>How to reach an EC2 peer: its endpoint URL, the access key and the region its signatures are scoped to.</summary>
public sealed record Ec2PeerEndpoint(Uri Url, string AccessKeyId, string SecretAccessKey, string Region);

/// <summary>
/// EC2 Query calls to a peer cloud (POST, form-encoded), signed with AWS Signature Version 4 (service ec2) by the same
/// primitives the server's own EC2 API verifies with, through the peer client's HttpClient. Refusals carry the EC2 error
/// code; silence and 5xx are <see cref="PeerUnreachableException"/>, as for <see cref="PeerClient"/>.
/// </summary>
public sealed class Ec2PeerClient(IHttpClientFactory factory)
{
    const string ApiVersion = "2016-11-15";
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    /// <summary>Calls <paramref name="action"/> with its parameters; the answer's XML.</summary>
    public async Task<XDocument> CallAsync(Ec2PeerEndpoint peer, string action, IEnumerable<KeyValuePair<string, string>> parameters, CancellationToken ct)
    {
        var form = new List<KeyValuePair<string, string>> { new("Action", action), new("Version", ApiVersion) };
        form.AddRange(parameters);
        var bytes = Encoding.UTF8.GetBytes(FormBody(form));
        var amzDate = DateTimeOffset.UtcNow.ToString(SignatureV4.DateFormat, CultureInfo.InvariantCulture);
        var host = peer.Url.IsDefaultPort ? peer.Url.Host : $"{peer.Url.Host}:{peer.Url.Port.ToString(CultureInfo.InvariantCulture)}";
        var scope = new CredentialScope(peer.AccessKeyId, amzDate[..8], peer.Region, "ec2");
        var path = Uri.UnescapeDataString(peer.Url.AbsolutePath);
        var authorization = SignatureV4.AuthorizationHeader(peer.SecretAccessKey, scope, amzDate, "POST", path.Length == 0 ? "/" : path, [],
            new Dictionary<string, string> { ["host"] = host, ["x-amz-date"] = amzDate }, SignatureV4.PayloadHash(bytes));

        using var request = new HttpRequestMessage(HttpMethod.Post, peer.Url);
        request.Content = new ByteArrayContent(bytes);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded") { CharSet = "utf-8" };
        request.Headers.Host = host;
        request.Headers.Add("X-Amz-Date", amzDate);
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(Timeout);
        HttpResponseMessage response;
        try { response = await factory.CreateClient(PeerClient.ClientName).SendAsync(request, limit.Token); }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new PeerUnreachableException($"{peer.Url} did not answer {action} within {Timeout.TotalSeconds:0} s", e);
        }
        catch (HttpRequestException e) { throw new PeerUnreachableException($"{peer.Url} cannot be reached: {e.Message}", e); }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
            XDocument? xml = null;
            try { xml = XDocument.Parse(text); }
            catch (XmlException) { }
            var status = (int)response.StatusCode;
            if (status >= 500) throw new PeerUnreachableException($"{peer.Url} answered {status} to {action}");
            if (!response.IsSuccessStatusCode)
            {
                var code = Text(xml?.Root, "Code");
                var message = Text(xml?.Root, "Message");
                throw new PeerRefusedException(status, code is null ? (text.Length > 300 ? text[..300] : text) : $"{code}: {message}", code);
            }
            return xml ?? throw new PeerUnreachableException($"{peer.Url} answered {action} with something that is not XML; is it an EC2 endpoint?");
        }
    }

    /// <summary>The text of the first element named <paramref name="name"/> (any namespace) under <paramref name="parent"/>.</summary>
    public static string? Text(XContainer? parent, string name) =>
        parent?.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    /// <summary>The items of the set named <paramref name="set"/> (imagesSet, instancesSet, ...) anywhere in the answer.</summary>
    public static IEnumerable<XElement> Items(XContainer answer, string set) =>
        answer.Descendants().Where(e => e.Name.LocalName == set).SelectMany(e => e.Elements().Where(i => i.Name.LocalName == "item"));

    /// <summary>A direct child's text (no descent into nested sets).</summary>
    public static string? Child(XElement item, string name) =>
        item.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    static string FormBody(IEnumerable<KeyValuePair<string, string>> form) =>
        string.Join('&', form.Select(kv => SignatureV4.UriEncode(kv.Key) + "=" + SignatureV4.UriEncode(kv.Value)));
}
